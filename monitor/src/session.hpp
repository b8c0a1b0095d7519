// Private: one connection to the console's listener, and what it can be —
// a console session (console.cpp) or one HTTP request (http_endpoints.cpp).
#pragma once

#include <loupe/monitor/console.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace loupe::monitor::detail {

/// A connection and its deadline. Lives on the console's thread only.
struct connection_state : std::enable_shared_from_this<connection_state> {
  explicit connection_state(boost::asio::ip::tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}

  boost::asio::ip::tcp::socket socket;
  boost::asio::steady_timer timer;
  std::uint64_t generation = 0;
  bool expired = false;  ///< the last deadline passed (and cancelled what was pending)

  /// Once `d` has passed, cancels the socket's pending operations and sets
  /// `expired` — unless re-armed or disarmed first.
  void arm(std::chrono::steady_clock::duration d) {
    const std::uint64_t g = ++generation;
    expired = false;
    timer.expires_after(d);
    timer.async_wait([w = weak_from_this(), g](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (!self || ec || self->generation != g) return;
      self->expired = true;
      boost::system::error_code ignored;
      self->socket.cancel(ignored);
    });
  }
  void disarm() {
    ++generation;
    timer.cancel();
  }
  void close() {
    boost::system::error_code ignored;
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    timer.cancel();
  }
};

/// True when the connection's first bytes, within `window`, are an HTTP
/// request line ("GET /..."); false when they are something else, or when
/// nothing arrived (a telnet user waits for the banner). Consumes nothing.
awaitable<bool> starts_with_http(connection_state& c, std::chrono::milliseconds window);

/// Reads one HTTP request from `c`, answers it from `endpoints` (loopback
/// peers naming a loopback host, not on behalf of another site; 403
/// otherwise, and for an endpoint that changes state when `read_only`; 404
/// for an unknown path) and closes.
awaitable<void> serve_http(std::shared_ptr<connection_state> c, const std::vector<http_endpoint>& endpoints,
                           bool read_only);

}  // namespace loupe::monitor::detail
