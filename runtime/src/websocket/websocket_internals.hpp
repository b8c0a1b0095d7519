// Private: the Beast stream behind loupe::websocket (shared with the server).
#pragma once

#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/websocket.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

namespace loupe {

struct websocket::impl {
  explicit impl(boost::beast::tcp_stream s)
      : stream(std::move(s)), idle_timer(stream.get_executor()),
        ping_done(stream.get_executor(), loupe::clock::time_point::max()) {}
  ~impl() { *alive = false; }
  void configure(bool server, const websocket_options& o);

  // The idle timeout on loupe::clock (Beast's own runs on the steady clock,
  // which virtual time does not move): a peer heard from nothing for half of
  // idle_timeout is pinged; for all of it, dropped (the socket is closed, a
  // pending receive() ends with 1006).
  void heard() { last_heard = loupe::clock::now(); }
  void start_idle_watch();
  void idle_tick();
  // The handshake's deadline (handshake_timeout), armed around it.
  awaitable<boost::system::error_code> timed_handshake(std::function<awaitable<boost::system::error_code>()> step);

  boost::beast::websocket::stream<boost::beast::tcp_stream> stream;
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
