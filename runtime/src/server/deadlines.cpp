// Connection deadlines: one sweeper timer per server closes each connection
// whose current phase (header, body, write, keep-alive idle) ran out of time.
#include "server/server_internals.hpp"

#include <algorithm>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace loupe {

// The tick of the sweeper that enforces connection deadlines: a tenth of the
// shortest timeout, between 10 ms and 1 s. One timer per server instead of a
// timer armed and cancelled around every read and write (which cost about a
// tenth of the request path).
std::chrono::milliseconds detail::sweep_tick(const server_options& o) {
  const auto shortest = std::min({o.header_timeout, o.keepalive_timeout, o.body_timeout, o.write_timeout});
  return std::clamp(shortest / 10, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

namespace {

// Before closing a connection that ran out of time: if the peer has left
// part of what was sent unread (a slow reader), the close resets the
// connection, so the kernel drops the unsent bytes instead of going on
// trickling them out of a send buffer of up to 4 MB for as long as the peer
// keeps its window open (nginx: reset_timedout_connection).
void abort_if_unread(tcp::socket& s) {
  int unsent = 0;
  if (::ioctl(s.native_handle(), SIOCOUTQ, &unsent) != 0 || unsent == 0) return;
  const ::linger reset{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
}


}  // namespace

void server::impl::cancel_tick() {
  if (watching_only) watcher.cancel();
  else sweeper.cancel();
}

void server::impl::start_sweeping(bool only_watch) {
  if (sweeping) cancel_tick();  // the watcher's tick, replaced by the sweeper's
  sweeping = true;
  watching_only = only_watch;
  // A wait cancelled (or replaced) before its handler ran must not stop the
  // sweeper that replaced it: handlers carry their generation.
  const std::uint64_t gen = ++sweep_gen;
  // The server's own callback: not a task's (it would count as the
  // connection's that happened to arm it).
  detail::task_scope outside(nullptr);
  auto on_tick = [w = weak_from_this(), gen](error_code ec) {
    if (auto self = w.lock()) self->sweep(ec, gen);
  };
  if (only_watch) {
    watcher.expires_after(tick);
    watcher.async_wait(std::move(on_tick));
  } else {
    sweeper.expires_after(tick);
    sweeper.async_wait(std::move(on_tick));
  }
}

void server::impl::stop_sweeping() {
  if (!sweeping) return;
  sweeping = false;
  ++sweep_gen;
  cancel_tick();
}

void server::impl::sweep(error_code ec, std::uint64_t gen) {
  if (gen != sweep_gen) return;  // stopped or replaced meanwhile
  sweeping = false;
  if (ec) return;
  const std::int64_t now = detail::clock_ns();
  bool deadlines_left = false;
  for (auto* c : conns) {
    if (c->deadline_ns == 0) continue;
    if (now < c->deadline_ns) {
      deadlines_left = true;
    } else {
      // As tcp_stream does on its timeout: the pending operation fails and
      // the connection's task ends.
      c->deadline_ns = 0;
      abort_if_unread(c->stream.socket());
      error_code ignored;
      c->stream.socket().close(ignored);
    }
  }
  check_clients();
  if (!conns.empty()) start_sweeping(!deadlines_left);
}

}  // namespace loupe
