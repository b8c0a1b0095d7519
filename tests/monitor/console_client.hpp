// A console client for tests, on the test's loop: reads up to each prompt.
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace loupe::test_support {

class console_client {
 public:
  template <class Executor>
  explicit console_client(Executor ex) : socket_(ex) {}

  awaitable<std::string> connect(unsigned short port) {
    co_await socket_.async_connect({boost::asio::ip::make_address("127.0.0.1"), port}, boost::asio::use_awaitable);
    co_return co_await until_prompt();  // the banner
  }
  awaitable<void> send_raw(std::string bytes) {
    co_await boost::asio::async_write(socket_, boost::asio::buffer(bytes), boost::asio::use_awaitable);
  }
  awaitable<std::string> command(std::string line) {
    co_await send_raw(line + "\r\n");
    co_return co_await until_prompt();
  }
  /// The reply to a command already sent (up to the next prompt).
  awaitable<std::string> command_reply() { return until_prompt(); }
  /// Everything until the console closes the connection.
  awaitable<std::string> until_closed() {
    boost::system::error_code ec;
    co_await boost::asio::async_read(socket_, boost::asio::dynamic_buffer(buf_),
                                     boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    co_return std::exchange(buf_, {});
  }
  /// Up to the first prompt (a session's banner), or everything until the
  /// console closes the connection (a refusal).
  awaitable<std::string> until_closed_or_prompt() {
    boost::system::error_code ec;
    const auto n = co_await boost::asio::async_read_until(socket_, boost::asio::dynamic_buffer(buf_), "loupe> ",
                                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec) co_return std::exchange(buf_, {});
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    co_return out;
  }
  /// Bytes that have arrived and not been read yet.
  std::size_t pending() const { return buf_.size() + socket_.available(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  awaitable<std::string> until_prompt() {
    const auto n = co_await boost::asio::async_read_until(socket_, boost::asio::dynamic_buffer(buf_), "loupe> ",
                                                          boost::asio::use_awaitable);
    std::string out = buf_.substr(0, n - 7);
    buf_.erase(0, n);
    co_return out;
  }
  boost::asio::ip::tcp::socket socket_;
  std::string buf_;
};

}  // namespace loupe::test_support
