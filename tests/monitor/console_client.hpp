// What the console's tests share: a console client on the test's loop that
// reads up to each prompt, the `Console` fixture (a console on port 0,
// stopped at the end) and tasks that wait for an hour.
//
//   LOUPE_TEST_F(Console, Something) {
//     console.start();
//     loupe::spawn(loop, "napper", nap());
//     console_client c(loop.get_executor());
//     co_await c.connect(console.port());
//     EXPECT_NE((co_await c.command("ps napper")).find("napper"), std::string::npos);
//   }
#pragma once

#include <loupe/monitor/console.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/test.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
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

/// A task that waits for an hour: suspended in `async_wait on deadline_timer`
/// at this file's line.
inline awaitable<void> nap() { co_await loupe::sleep_for(std::chrono::hours(1)); }

/// A task that spawns a napper ("napper-child") and awaits it.
inline awaitable<void> parent_of_nappers(loupe::loop& l) {
  co_await loupe::spawn(l, "napper-child", nap(), boost::asio::use_awaitable);
}

}  // namespace loupe::test_support

/// A console on a port the kernel picks, stopped before the test's loop ends.
class Console : public loupe::testkit::test {
 protected:
  void TearDown() override {
    console.stop();
    test::TearDown();
  }
  loupe::monitor::console console{{.port = 0}};
};
