// loupe/runtime/detail/socket_deadline.hpp — a deadline on loupe::clock that closes a socket.
//
//   detail::socket_deadline deadline(stream.socket());
//   deadline.arm_after(std::chrono::seconds(5));      // before the operations it bounds
//   auto [ec, n] = co_await stream.async_read_some(buf, nothrow);
//   ec = deadline.timed(ec);                          // boost::beast::error::timeout if it cut it off
//
// What Beast's stream timeouts do (their timers run on the steady clock,
// which a test's virtual time does not move): when the deadline passes, the
// socket is closed, so the pending operations on it fail, and expired() says
// why. Arm it before starting the operations, so that a task's wait shows
// the read or write, not this timer. Used by the client, the server's error
// pages and the testkit's raw_client.
#pragma once

#include <loupe/runtime/timer.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>

#include <memory>

namespace loupe::detail {

class socket_deadline {
 public:
  explicit socket_deadline(boost::asio::ip::tcp::socket& s)
      : timer_(s.get_executor()), state_(std::make_shared<state>(&s)) {}
  ~socket_deadline() {
    state_->socket = nullptr;  // a handler still queued finds nothing to close
    timer_.cancel();
  }
  socket_deadline(const socket_deadline&) = delete;
  socket_deadline& operator=(const socket_deadline&) = delete;

  void arm_at(clock::time_point at) {
    state_->expired = false;
    timer_.expires_at(at);
    timer_.async_wait([st = state_](const boost::system::error_code& ec) {
      if (ec || !st->socket) return;
      st->expired = true;
      boost::system::error_code ignored;
      st->socket->close(ignored);
    });
  }
  void arm_after(clock::duration d) { arm_at(clock::now() + d); }
  /// Whether the deadline passed (and closed the socket).
  bool expired() const noexcept { return state_->expired; }
  /// An operation's error as Beast's own timeouts report it: a failure the
  /// deadline caused reads as beast::error::timeout.
  boost::system::error_code timed(boost::system::error_code ec) const noexcept {
    return ec && expired() ? boost::system::error_code(boost::beast::error::timeout) : ec;
  }

 private:
  struct state {
    explicit state(boost::asio::ip::tcp::socket* s) : socket(s) {}
    boost::asio::ip::tcp::socket* socket;
    bool expired = false;
  };
  loupe::timer timer_;
  std::shared_ptr<state> state_;
};

}  // namespace loupe::detail
