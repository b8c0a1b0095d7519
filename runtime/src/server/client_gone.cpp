// A client that gives up: while a handler runs, the server's sweeper asks
// each such connection's socket whether its client has closed it or reset it
// (a peek, no read), as nginx does before answering 499 "client closed
// request". The request is then the client's: recorded with status 499, shown
// as "client gone" in the console, no response written, and its handler
// cancelled if server_options::cancel_on_client_gone. request::client_gone()
// asks the same question at once.
//
// A connection with bytes pending (the client has sent its next request, or
// more body) cannot be told from a live one by a peek: it counts as there.
#include "server/server_internals.hpp"
#include "core/task_record.hpp"

#include <cerrno>
#include <sys/socket.h>

namespace loupe {

namespace detail {

peer_state peek_peer(int fd) noexcept {
  if (fd < 0) return peer_state::unknown;
  char byte;
  const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return peer_state::gone;  // the client's FIN, nothing before it
  if (n > 0) return peer_state::unknown;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return peer_state::there;
  return peer_state::gone;  // reset, or the socket is no longer usable
}

}  // namespace detail

bool request::client_gone() const noexcept {
  if (!gone_) return false;
  if (!*gone_ && detail::peek_peer(socket_) == detail::peer_state::gone) *gone_ = true;
  return *gone_;
}

void server::impl::check_clients() {
  for (auto* c : conns) {
    if (!c->in_handler || !c->watch_client || c->client_gone) continue;
    if (detail::peek_peer(c->stream.socket().native_handle()) != detail::peer_state::gone) continue;
    client_left(*c);
  }
}

void server::impl::client_left(connection& c) {
  c.client_gone = true;
  if (c.request_task == 0) return;
  detail::mark_client_gone(lp, c.request_task);
  if (opts.cancel_on_client_gone) lp.cancel(c.request_task, cancel_source::client);
}

}  // namespace loupe
