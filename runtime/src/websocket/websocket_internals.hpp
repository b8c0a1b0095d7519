// Private: the Beast stream behind loupe::websocket (shared with the server):
// over TCP, or over TLS (wss).
#pragma once

#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/websocket.hpp>

#include "tls/tls_internals.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <optional>

namespace loupe {

namespace detail {
struct client_conn;
}

struct websocket::impl {
  using plain_stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;
  /// Over TLS: the TLS stream is the server connection's (which outlives the
  /// session) or the client's own connection's (`owned`).
  using tls_ws_stream = boost::beast::websocket::stream<detail::tls_stream&>;

  explicit impl(boost::beast::tcp_stream s);
  explicit impl(detail::tls_stream& s);  // over a server connection's TLS
  impl(detail::tls_stream& s, std::unique_ptr<detail::client_conn> owner);
  ~impl();
  void configure(bool server, const websocket_options& o);

  /// Calls `f` with the WebSocket stream, plain or over TLS (both calls
  /// return one type).
  template <class F>
  decltype(auto) with(F&& f) {
    if (secure) return f(*secure);
    return f(*plain);
  }
  /// The TCP (or in-memory) socket underneath: what the idle timeout and
  /// shutdown close or cancel.
  boost::asio::ip::tcp::socket& socket();

  // The idle timeout on loupe::clock (Beast's own runs on the steady clock,
  // which virtual time does not move): a peer heard from nothing for half of
  // idle_timeout is pinged; for all of it, dropped (the socket is closed, a
  // pending receive() ends with 1006).
  void heard() { last_heard = loupe::clock::now(); }
  void start_idle_watch();
  void idle_tick();
  // The handshake's deadline (handshake_timeout), armed around it.
  awaitable<boost::system::error_code> timed_handshake(std::function<awaitable<boost::system::error_code>()> step);

  std::unique_ptr<detail::client_conn> owned;  // a wss client's TCP and TLS
  std::optional<plain_stream> plain;
  std::optional<tls_ws_stream> secure;
  boost::beast::flat_buffer buffer;
  std::uint16_t code = 0;
  std::string reason;
  std::size_t pongs = 0;
  loupe::timer idle_timer;
  loupe::clock::duration idle{0};
  loupe::clock::duration handshake{0};
  loupe::clock::time_point last_heard = loupe::clock::now();
  loupe::clock::time_point pinged_for{};  // the last_heard a keep-alive ping was sent for
  bool ping_out = false;                  // a keep-alive ping is being written
  loupe::timer ping_done;                 // never due: cancelled when that ping is written
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

}  // namespace loupe
