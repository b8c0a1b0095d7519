// The listener: listen, the accept loop, connections refused past the
// limits (max_connections, the descriptor limit), and graceful shutdown.
#include "server/server_internals.hpp"
#include "websocket/websocket_internals.hpp"

#include <algorithm>
#include <sys/resource.h>
#include <sys/socket.h>

namespace loupe {

namespace {
// A system_error whose what() is "what: reason", as a person reads it:
// Boost's appends " [system:98 at .../reactive_socket_service.hpp:161:5 in
// function ...]", which start-up printed.
class plain_system_error : public boost::system::system_error {
 public:
  plain_system_error(const boost::system::error_code& ec, const std::string& what)
      : boost::system::system_error(ec), text_(what + ": " + ec.message()) {}
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};
}  // namespace

using detail::nothrow;
using detail::process_connections;
using detail::process_refusing;
using detail::refused;

namespace detail {

std::atomic<std::size_t> process_connections{0};
std::atomic<std::size_t> process_refusing{0};

descriptor_room read_descriptor_room() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return {};
  descriptor_room r;
  r.limit = static_cast<std::size_t>(rl.rlim_cur);
  r.reserve = std::clamp<std::size_t>(r.limit / 8, 32, 256);
  r.connections = r.limit > 2 * r.reserve ? r.limit - r.reserve : std::max<std::size_t>(r.limit / 2, 1);
  return r;
}

}  // namespace detail

server::server(loop& l, application& app, server_options opts) : impl_(std::make_shared<impl>(l, app, std::move(opts))) {}

server::~server() {
  // Without a shutdown: stop accepting and close what is open; the tasks end
  // the next time the loop runs (or are destroyed with it).
  error_code ec;
  for (auto& a : impl_->acceptors) a->close(ec);
  for (auto& m : impl_->memory_listeners) m->close();
  impl_->stopping = true;
  for (auto* c : impl_->conns) {
    if (c->in_handler && c->request_task) impl_->lp.cancel(c->request_task, cancel_source::shutdown);
    if (c->body_wait) c->body_wait->cancel();
    c->stream.socket().close(ec);
  }
}

tcp::endpoint server::listen(std::string_view host, unsigned short port) {
  impl_->app.freeze();
  error_code ec;
  tcp::endpoint ep;
  const auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, port);
  } else {
    tcp::resolver resolver(impl_->lp.context());
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) throw plain_system_error(ec, "cannot resolve host '" + std::string(host) + "'");
    ep = results.begin()->endpoint();
  }
  const std::string where = ep.address().to_string() + ":" + std::to_string(port);
  auto acc = std::make_unique<tcp::acceptor>(impl_->lp.context());
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && impl_->opts.reuse_port) {
    const int on = 1;
    if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
      ec = error_code(errno, boost::system::system_category());
  }
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw plain_system_error(ec, "cannot listen on " + where);
  const auto bound = acc->local_endpoint();
  const auto& room = impl_->room;
  static std::atomic<bool> said_capped{false};
  if (impl_->opts.max_connections > room.connections && !said_capped.exchange(true))
    log::runtime().warn(
        "serving at most {} connections at once: the descriptor limit (RLIMIT_NOFILE) is {} and {} are kept for "
        "files, the console, the log and refusals; max_connections is {} (raise it with ulimit -n)",
        room.connections, room.limit, room.reserve, impl_->opts.max_connections);
  auto& ref = *acc;
  impl_->acceptors.push_back(std::move(acc));
  spawn(impl_->lp, "http.accept", impl_->accept_loop(impl_, ref));
  return bound;
}

memory_endpoint server::listen_memory(std::string name) {
  impl_->app.freeze();
  impl_->memory_listeners.push_back(std::make_unique<memory_acceptor>(impl_->lp.get_executor(), std::move(name)));
  auto& a = *impl_->memory_listeners.back();
  spawn(impl_->lp, "http.accept", impl_->memory_accept_loop(impl_, a));
  return a.endpoint();
}

std::vector<memory_endpoint> server::memory_endpoints() const {
  std::vector<memory_endpoint> out;
  for (auto& l : impl_->memory_listeners)
    if (l->is_open()) out.push_back({l->name()});
  return out;
}

std::vector<tcp::endpoint> server::endpoints() const {
  std::vector<tcp::endpoint> out;
  error_code ec;
  for (auto& a : impl_->acceptors)
    if (a->is_open()) out.push_back(a->local_endpoint(ec));
  return out;
}

std::size_t server::connection_count() const noexcept { return impl_->open; }

std::vector<server::connection_info> server::connections() const {
  std::vector<connection_info> out;
  for (const auto* c : impl_->conns)
    out.push_back({peer_endpoint(c->stream.socket(), c->memory), c->idle, c->in_handler, c->ws != nullptr, c->memory});
  return out;
}
std::size_t server::requests_in_flight() const noexcept { return impl_->in_flight; }
std::size_t server::body_bytes_in_flight() noexcept { return detail::body_budget::process().used(); }
std::uint64_t server::requests_served() const noexcept { return impl_->served.load(std::memory_order_relaxed); }


awaitable<void> server::shutdown(std::chrono::milliseconds grace) {
  auto self = impl_;
  self->stopping = true;
  error_code ec;
  for (auto& a : self->acceptors) a->close(ec);
  for (auto& m : self->memory_listeners) m->close();
  // Idle keep-alive connections close now; busy ones after their response.
  for (auto* c : self->conns) {
    if (c->idle) c->stream.socket().cancel(ec);
    // A WebSocket handler's pending receive() ends; the session then closes with 1001.
    if (c->ws) detail::access::of(*c->ws).socket().cancel(ec);
  }
  if (self->open == 0) co_return;

  loupe::timer timer(self->lp.context());
  self->drain_waiter = &timer;
  struct reset {
    impl& s;
    ~reset() { s.drain_waiter = nullptr; }
  } guard{*self};
  timer.expires_after(grace);
  auto [wait_ec] = co_await timer.async_wait(nothrow);
  if (self->open == 0) co_return;

  log::runtime().warn("shutdown: grace period of {} ms is over; cancelling {} request(s) and closing {} connection(s)",
                      grace.count(), self->in_flight, self->open);
  for (auto* c : self->conns) {
    if (c->in_handler && c->request_task) self->lp.cancel(c->request_task, cancel_source::shutdown);
    else c->stream.socket().close(ec);
    if (c->body_wait) c->body_wait->cancel();
  }
  // Cancelled requests answer 503 and close; give them a moment, then close the rest.
  timer.expires_after(std::chrono::seconds(1));
  std::tie(wait_ec) = co_await timer.async_wait(nothrow);
  if (self->open == 0) co_return;
  for (auto* c : self->conns) c->stream.socket().close(ec);
  timer.expires_after(std::chrono::seconds(1));
  std::tie(wait_ec) = co_await timer.async_wait(nothrow);
  if (self->open != 0)
    log::runtime().error("shutdown: {} connection(s) with {} request(s) still running ignored cancellation; "
                         "going on without them",
                         self->open, self->in_flight);
}


awaitable<void> server::impl::accept_loop(std::shared_ptr<impl> self, tcp::acceptor& a) {
  set_cancel_policy({"it is the server's accept loop: cancelled, its port would stay open and never be served; "
                     "stop the server instead (SIGTERM, or server::shutdown)",
                     {}});
  for (;;) {
    auto [ec, sock] = co_await a.async_accept(nothrow);
    if (stopping || is_cancellation(ec) || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      accept_warning("accept failed: " + ec.message());
      // Out of descriptors or memory: back off instead of spinning.
      loupe::timer t(lp.context(), std::chrono::milliseconds(50));
      co_await t.async_wait(nothrow);
      continue;
    }
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    admit(self, std::move(sock), false);
  }
}

awaitable<void> server::impl::memory_accept_loop(std::shared_ptr<impl> self, memory_acceptor& a) {
  set_cancel_policy({"it is the server's accept loop on the in-memory network '" + a.name() +
                         "': cancelled, the name would stay taken and never be served; stop the server instead",
                     {}});
  for (;;) {
    auto [ec, sock] = co_await a.accept();
    if (stopping || ec) co_return;
    admit(self, std::move(sock), true);
  }
}

void server::impl::admit(const std::shared_ptr<impl>& self, tcp::socket sock, bool memory) {
  error_code ignored;
  ++open;
  const std::size_t in_process = process_connections.fetch_add(1, std::memory_order_relaxed) + 1;
  LOUPE_HTTP_METRIC(open_gauge.Increment());
  LOUPE_HTTP_METRIC(accepted_counter.Increment());
  if (open > opts.max_connections || in_process > room.connections) {
    // Refused with a 503; but when even the refusals would eat the
    // descriptors kept in reserve, closed at once.
    if (process_refusing.load(std::memory_order_relaxed) >= room.reserve / 2 && room.limit != 0) {
      sock.close(ignored);
      connection_done();
      return;
    }
    spawn(lp, "http.reject", reject(self, std::move(sock), memory));
    return;
  }
  spawn(lp, "http.connection", serve(self, std::move(sock), memory));
}

awaitable<void> server::impl::reject(std::shared_ptr<impl> self, tcp::socket s, bool memory) {
  set_cancel_policy({"it answers 503 to a connection past the server's limits and closes it; it ends by itself", {}});
  process_refusing.fetch_add(1, std::memory_order_relaxed);
  struct done {
    impl& s;
    ~done() {
      process_refusing.fetch_sub(1, std::memory_order_relaxed);
      s.connection_done();
    }
  } guard{*self};
  connection c(std::move(s), memory);
  const auto remote = peer_endpoint(c.stream.socket(), memory);
  const auto start = detail::now_ns();
  // Over HTTPS the 503 needs a handshake too (bounded by the header timeout;
  // the connection is not in `conns`, so its own deadline closes it).
  if (opts.tls) {
    detail::socket_deadline deadline(c.stream.socket());
    deadline.arm_after(opts.header_timeout);
    c.tls_ctx = opts.tls->internals().current();
    c.tls = std::make_unique<detail::tls_stream>(c.stream, *c.tls_ctx);
    auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::server, nothrow);
    if (hec) co_return;
  }
  refused r;
  r.request_id = detail::accept_request_id({});
  r.reason = server_errc::too_many_connections;
  co_await refuse_request(c, std::move(r), {}, start, remote);
}

}  // namespace loupe
