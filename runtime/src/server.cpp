// The HTTP/1.1 server: accept loop, connection tasks, request tasks, shutdown.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>

#include "exceptions.hpp"
#include "http_metrics.hpp"
#include "loop_impl.hpp"
#include "request_body.hpp"
#include "websocket_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <charconv>
#include <limits>
#include <ctime>
#include <optional>
#include <unordered_set>

namespace loupe {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::string_view_literals;

// LOUPE_HTTP_METRICS=OFF (a benchmark baseline) compiles the per-request
// metric updates out.
#ifdef LOUPE_NO_HTTP_METRICS
#define LOUPE_HTTP_METRIC(statement) ((void)0)
#else
#define LOUPE_HTTP_METRIC(statement) statement
#endif

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
using request_parser = http::request_parser<detail::counted_body>;

// RFC 9110 IMF-fixdate, recomputed at most once a second per thread.
std::string_view http_date() {
  thread_local std::time_t cached = 0;
  thread_local char buf[40];
  thread_local std::size_t len = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached = now;
  }
  return {buf, len};
}

// Feeds what `buf` holds to `parser` up to the end of the header. Returns the
// parse error, if any; need_more is not one (the header is not complete yet).
error_code parse_buffered_header(request_parser& parser, beast::flat_buffer& buf) {
  error_code ec;
  while (buf.size() > 0 && !parser.is_header_done()) {
    const std::size_t used = parser.put(buf.data(), ec);
    buf.consume(used);
    if (ec == http::error::need_more) return {};
    if (ec) return ec;
    if (used == 0) break;
  }
  return ec;
}

// The serialized header of `msg` (start line, fields, blank line), by Beast's
// serializer, into `out`.
void serialize_header(http::response<http::string_body>& msg, std::string& out) {
  out.clear();
  http::response_serializer<http::string_body> sr{msg};
  sr.split(true);
  error_code ec;
  while (!ec && !sr.is_header_done()) {
    sr.next(ec, [&](error_code&, const auto& buffers) {
      const std::size_t n = asio::buffer_size(buffers);
      const std::size_t at = out.size();
      out.resize(at + n);
      asio::buffer_copy(asio::buffer(out.data() + at, n), buffers);
      sr.consume(n);
    });
  }
}

// A non-blocking read that found nothing to read yet.
bool nothing_yet(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

// A parse error the client should hear about (400), as opposed to the
// connection simply ending.
bool is_bad_request(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

// Why the request's Host header field is unacceptable (RFC 9112 3.2), or
// null: missing in HTTP/1.1, given more than once, or not `host[:port]`.
// (An empty value is allowed: it is what a client sends for a target URI
// without an authority.)
//
// On the request path: one walk over the fields (two lookups in Beast's
// case-insensitive index cost twice as much), and the common value — a name
// of letters, digits, '.', '-', '_', '~' with an optional :port — checked by
// a plain loop; anything else goes to Boost.URL's authority grammar.
bool plain_host(std::string_view v) {
  std::size_t i = 0;
  for (; i < v.size(); ++i) {
    const char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
          c == '_' || c == '~'))
      break;
  }
  if (i == 0) return false;
  if (i == v.size()) return true;
  if (v[i] != ':') return false;
  for (++i; i < v.size(); ++i)
    if (v[i] < '0' || v[i] > '9') return false;
  return true;
}

const char* host_problem(const http::request_header<>& h) {
  std::string_view value;
  int hosts = 0;
  for (const auto& f : h) {
    if (f.name() != http::field::host) continue;
    if (++hosts > 1) return "more than one Host header";
    value = f.value();
  }
  if (hosts == 0) return h.version() >= 11 ? "missing Host header" : nullptr;
  if (value.empty() || plain_host(value)) return nullptr;
  const auto authority = boost::urls::parse_authority(value);
  if (!authority || authority->has_userinfo()) return "invalid Host header";
  return nullptr;
}

/// What is known of a request refused before it reached the application.
struct refused {
  std::string method;  // empty when unknown
  std::string path;
  std::string user_agent;
  std::string request_id;  // the client's X-Request-ID if sane, else generated
};

// From the parsed header if it is complete. Beast fills in the method and
// target as soon as it has parsed the request line, so a request refused for
// a bad header field still has them; one whose header was too large (431) is
// refused before its request line is parsed, and has neither.
refused describe_refused(const request_parser& parser) {
  refused r;
  const auto& h = parser.get();
  r.method = std::string(h.method_string());
  r.path = std::string(h.target());
  if (parser.is_header_done()) {
    r.user_agent = std::string(h[http::field::user_agent]);
    r.request_id = detail::accept_request_id(h["X-Request-ID"]);
  } else {
    r.request_id = detail::accept_request_id({});
  }
  return r;
}

// Connections open in the whole process (every server, every loop), each
// holding a descriptor; and those of them being refused.
std::atomic<std::size_t> process_connections{0};
std::atomic<std::size_t> process_refusing{0};

// What the descriptor limit (RLIMIT_NOFILE) leaves for connections: the limit
// less a reserve for files, the console, the log and refusing connections
// past the limit with a 503. Past it, accept() would fail with EMFILE and
// clients would wait in the backlog, unanswered.
struct descriptor_room {
  std::size_t limit = 0;  // 0: unlimited
  std::size_t reserve = 0;
  std::size_t connections = std::numeric_limits<std::size_t>::max();
};

descriptor_room read_descriptor_room() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return {};
  descriptor_room r;
  r.limit = static_cast<std::size_t>(rl.rlim_cur);
  r.reserve = std::clamp<std::size_t>(r.limit / 8, 32, 256);
  r.connections = r.limit > 2 * r.reserve ? r.limit - r.reserve : std::max<std::size_t>(r.limit / 2, 1);
  return r;
}

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

/// One client connection. Lives in the frame of its connection task.
struct connection {
  explicit connection(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool idle = true;        // between requests: waiting for the next one's first bytes
  bool in_handler = false; // a request task is running
  std::uint64_t request_task = 0;  // its id, for cancellation at shutdown
  websocket* ws = nullptr;         // set while the connection is a WebSocket
  // When the current read or write phase must be over (now_ns clock; 0: no
  // limit). The server's sweeper closes the socket once it has passed.
  std::int64_t deadline_ns = 0;
  std::string head;  // the response header being sent (its storage reused)
  // While a body waits for room in the budget: its timer (cancelled to stop
  // the wait at shutdown).
  asio::steady_timer* body_wait = nullptr;
};

// The tick of the sweeper that enforces connection deadlines: a tenth of the
// shortest timeout, between 10 ms and 1 s. One timer per server instead of a
// timer armed and cancelled around every read and write (which cost about a
// tenth of the request path).
std::chrono::milliseconds sweep_tick(const server_options& o) {
  const auto shortest = std::min({o.header_timeout, o.keepalive_timeout, o.body_timeout, o.write_timeout});
  return std::clamp(shortest / 10, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(loop& l, application& a, server_options o)
      : lp(l), app(a), opts(std::move(o)), metrics(a.metrics_internals()), series(metrics->server),
        active_gauge(metrics->server.active.Add({{"loop", l.name()}})),
        open_gauge(metrics->server.open_connections.Add({{"loop", l.name()}})),
        accepted_counter(metrics->server.accepted.Add({{"loop", l.name()}})) {}

  loop& lp;
  application& app;
  server_options opts;
  // Kept alive by connections that outlive the application (their frames
  // are destroyed with the loop).
  std::shared_ptr<detail::app_metrics> metrics;
  detail::http_server_series series;  // this loop's resolved series
  prometheus::Gauge& active_gauge;
  prometheus::Gauge& open_gauge;
  prometheus::Counter& accepted_counter;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::unordered_set<connection*> conns;
  std::size_t open = 0;  // connections counted from accept, including ones not yet started
  std::size_t in_flight = 0;
  std::atomic<std::uint64_t> served{0};
  bool stopping = false;
  asio::steady_timer* drain_waiter = nullptr;
  asio::steady_timer sweeper{lp.context()};
  const std::chrono::milliseconds tick = sweep_tick(opts);
  bool sweeping = false;
  std::uint64_t sweep_gen = 0;
  const descriptor_room room = read_descriptor_room();
  log::throttled_warning accept_warning;

  /// The connection's current phase must end within `t`, or it is closed.
  void arm(connection& c, std::chrono::milliseconds t) { arm_until(c, due_in(t)); }
  /// ... or by `due_ns` (now_ns clock).
  void arm_until(connection& c, std::int64_t due_ns) {
    c.deadline_ns = due_ns;
    if (!sweeping) start_sweeping();
  }
  static std::int64_t due_in(std::chrono::milliseconds t) {
    return detail::now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(t).count();
  }
  static void disarm(connection& c) noexcept { c.deadline_ns = 0; }
  void start_sweeping() {
    sweeping = true;
    // A wait cancelled (or replaced) before its handler ran must not stop the
    // sweeper that replaced it: handlers carry their generation.
    const std::uint64_t gen = ++sweep_gen;
    // The server's own callback: not a task's (it would count as the
    // connection's that happened to arm it).
    detail::task_scope outside(nullptr);
    sweeper.expires_after(tick);
    sweeper.async_wait([w = weak_from_this(), gen](error_code ec) {
      if (auto self = w.lock()) self->sweep(ec, gen);
    });
  }
  void stop_sweeping() {
    if (!sweeping) return;
    sweeping = false;
    ++sweep_gen;
    sweeper.cancel();
  }
  void sweep(error_code ec, std::uint64_t gen) {
    if (gen != sweep_gen) return;  // stopped or replaced meanwhile
    sweeping = false;
    if (ec) return;
    const std::int64_t now = detail::now_ns();
    for (auto* c : conns) {
      if (c->deadline_ns != 0 && now >= c->deadline_ns) {
        // As tcp_stream does on its timeout: the pending operation fails and
        // the connection's task ends.
        c->deadline_ns = 0;
        abort_if_unread(c->stream.socket());
        error_code ignored;
        c->stream.socket().close(ignored);
      }
    }
    if (!conns.empty()) start_sweeping();
  }

  awaitable<void> accept_loop(std::shared_ptr<impl> self, tcp::acceptor& a);
  awaitable<void> serve(std::shared_ptr<impl> self, tcp::socket s);
  enum class admission { admitted, no_room, closed };
  /// Admits a body of `n` declared bytes into the process-wide budget,
  /// waiting (up to the body timeout) for room.
  awaitable<admission> admit_body(connection& c, detail::body_charge& charge, std::size_t n, std::int64_t due_ns);
  /// What the connection does after a request.
  enum class after { next, close, done };  // read the next one; close; already closed (or upgraded)
  awaitable<after> serve_request(connection& c, beast::flat_buffer& buf, std::int64_t header_due, std::int64_t start,
                                 const tcp::endpoint& remote, const tcp::endpoint& local);
  awaitable<void> reject(std::shared_ptr<impl> self, tcp::socket s);
  struct written {
    bool ok = false;
    std::size_t body_bytes = 0;
    unsigned status_sent = 0;  // when it differs from the response's (a file that failed to open)
  };
  awaitable<written> write_response(connection& c, const request& req, response& res, bool keep);
  /// Metrics and the access log record of one answered request. `req` is
  /// null when the request could not be parsed (then `method` may be empty).
  void record(const request* req, const refused* r, unsigned status, std::size_t request_bytes,
              std::size_t response_bytes, std::int64_t start_ns, std::uint64_t task_id,
              const tcp::endpoint& remote);
  awaitable<void> run_websocket(connection& c, request& req, const websocket_upgrade& up);
  awaitable<void> refuse_request(connection& c, refused r, http::status status, std::string detail,
                                 std::int64_t start, tcp::endpoint remote) {
    const std::size_t n = co_await send_error(c.stream, status, detail, r.request_id);
    record(nullptr, &r, static_cast<unsigned>(status), 0, n, start, 0, remote);
    co_await linger_close(c.stream);
  }
  /// Sends an error response (the caller then closes); returns the body size.
  awaitable<std::size_t> send_error(beast::tcp_stream& s, http::status status, std::string_view detail,
                                    std::string_view request_id);
  awaitable<void> linger_close(beast::tcp_stream& s);
  void connection_done() {
    --open;
    process_connections.fetch_sub(1, std::memory_order_relaxed);
    LOUPE_HTTP_METRIC(open_gauge.Decrement());
    if (open == 0 && drain_waiter) drain_waiter->cancel();
    if (open == 0) stop_sweeping();
  }
};

server::server(loop& l, application& app, server_options opts)
    : impl_(std::make_shared<impl>(l, app, std::move(opts))) {}

server::~server() {
  // Without a shutdown: stop accepting and close what is open; the tasks end
  // the next time the loop runs (or are destroyed with it).
  error_code ec;
  for (auto& a : impl_->acceptors) a->close(ec);
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
    if (ec || results.empty())
      throw boost::system::system_error(ec, "cannot resolve host '" + std::string(host) + "'");
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
  if (ec) throw boost::system::system_error(ec, "cannot listen on " + where);
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
  for (const auto* c : impl_->conns) {
    error_code ec;
    out.push_back({c->stream.socket().remote_endpoint(ec), c->idle, c->in_handler, c->ws != nullptr});
  }
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
  // Idle keep-alive connections close now; busy ones after their response.
  for (auto* c : self->conns) {
    if (c->idle) c->stream.socket().cancel(ec);
    // A WebSocket handler's pending receive() ends; the session then closes with 1001.
    if (c->ws) boost::beast::get_lowest_layer(c->ws->internals().stream).socket().cancel(ec);
  }
  if (self->open == 0) co_return;

  asio::steady_timer timer(self->lp.context());
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
                         "going on without them", self->open, self->in_flight);
}

awaitable<void> server::impl::accept_loop(std::shared_ptr<impl> self, tcp::acceptor& a) {
  for (;;) {
    auto [ec, sock] = co_await a.async_accept(nothrow);
    if (stopping || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
    if (ec) {
      accept_warning("accept failed: " + ec.message());
      // Out of descriptors or memory: back off instead of spinning.
      asio::steady_timer t(lp.context(), std::chrono::milliseconds(50));
      co_await t.async_wait(nothrow);
      continue;
    }
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
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
        continue;
      }
      spawn(lp, "http.reject", reject(self, std::move(sock)));
      continue;
    }
    spawn(lp, "http.connection", serve(self, std::move(sock)));
  }
}

awaitable<void> server::impl::reject(std::shared_ptr<impl> self, tcp::socket s) {
  process_refusing.fetch_add(1, std::memory_order_relaxed);
  struct done {
    impl& s;
    ~done() {
      process_refusing.fetch_sub(1, std::memory_order_relaxed);
      s.connection_done();
    }
  } guard{*self};
  beast::tcp_stream stream(std::move(s));
  error_code ec;
  const auto remote = stream.socket().remote_endpoint(ec);
  const auto start = detail::now_ns();
  refused r;
  r.request_id = detail::accept_request_id({});
  const auto n = co_await send_error(stream, http::status::service_unavailable, "too many connections", r.request_id);
  record(nullptr, &r, 503, 0, n, start, 0, remote);
  co_await linger_close(stream);
}

awaitable<std::size_t> server::impl::send_error(beast::tcp_stream& s, http::status status, std::string_view detail,
                                               std::string_view request_id) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Request-ID", request_id);
  if (!opts.server_header.empty()) res.set(http::field::server, opts.server_header);
  res.set(http::field::date, http_date());
  std::string body = std::to_string(static_cast<unsigned>(status));
  body += ": ";
  const auto reason = http::obsolete_reason(status);
  body.append(reason.data(), reason.size());
  if (!detail.empty()) body.append(" (").append(detail).append(")");
  res.body() = std::move(body);
  res.keep_alive(false);
  res.prepare_payload();
  const std::size_t size = res.body().size();
  s.expires_after(opts.write_timeout);
  co_await http::async_write(s, res, nothrow);
  co_return size;
}

void server::impl::record(const request* req, const refused* r, unsigned status, std::size_t request_bytes,
                          std::size_t response_bytes, std::int64_t start_ns, std::uint64_t task_id,
                          const tcp::endpoint& remote) {
  const std::int64_t took_ns = detail::now_ns() - start_ns;
  [[maybe_unused]] const double seconds = static_cast<double>(took_ns) / 1e9;
  const std::string* route = req && !req->route().empty() ? &req->route() : nullptr;
  const std::string_view method = req ? std::string_view(req->method_name()) : r ? std::string_view(r->method) : "";
  LOUPE_HTTP_METRIC(series.observe(route, detail::method_index(method), status, seconds, request_bytes, response_bytes));
  if (!opts.access_log || !log::access().should_log(spdlog::level::info)) return;
  const std::string_view path = req ? req->raw_path() : r ? std::string_view(r->path) : std::string_view{};
  // The text of the last peer address, per loop thread: behind a proxy (or
  // under a load test) it is the same one request after request.
  thread_local asio::ip::address last_addr;
  thread_local std::string last_text;
  if (last_text.empty() || remote.address() != last_addr) {
    last_addr = remote.address();
    last_text = last_addr.to_string();
  }
  const std::string& remote_addr = last_text;
  std::string_view agent = r ? std::string_view(r->user_agent) : std::string_view{};
  if (req) {
    if (auto ua = req->header("User-Agent")) agent = *ua;
  }
  const std::string_view request_id =
      req ? std::string_view(req->request_id()) : r ? std::string_view(r->request_id) : std::string_view{};
  // "127.0.0.1 GET /path 200", built directly (fmt::format was a tenth of the record).
  std::string msg;
  msg.reserve(remote_addr.size() + method.size() + path.size() + 8);
  msg.append(remote_addr).append(1, ' ').append(method.empty() ? "-" : method).append(1, ' ');
  msg.append(path.empty() ? "-" : path).append(1, ' ');
  char code[8];
  msg.append(code, std::to_chars(code, code + sizeof code, status).ptr);
  log::write(log::access(), spdlog::level::info, msg,
             {{"method", method},
              {"path", path},
              {"route", route ? std::string_view(*route) : metrics::unmatched_route},
              {"status", status},
              {"response_bytes", response_bytes},
              {"duration_ms", static_cast<double>(took_ns / 1000) / 1e3},
              {"remote", remote_addr},
              {"user_agent", agent}},
             {task_id, task_id ? std::string_view("http.request") : std::string_view{}, request_id});
}

// Half-close, then read and discard what the client still sends (bounded), so
// that unread input does not turn our close into a reset that destroys the
// response in flight.
awaitable<void> server::impl::linger_close(beast::tcp_stream& s) {
  error_code ec;
  s.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    s.expires_after(std::chrono::seconds(2));
    std::array<char, 4096> scratch;
    for (std::size_t total = 0; total < 1024 * 1024;) {
      auto [rec, n] = co_await s.async_read_some(asio::buffer(scratch), nothrow);
      if (rec) break;
      total += n;
    }
  }
  s.socket().close(ec);
}

awaitable<server::impl::written> server::impl::write_response(connection& c, const request& req, response& res,
                                                              bool keep) {
  auto& msg = res.native();
  if (msg.find("X-Request-ID") == msg.end()) msg.set("X-Request-ID", req.request_id());
  msg.version(req.version() == 10 ? 10 : 11);
  msg.keep_alive(keep);
  if (!opts.server_header.empty() && msg.find(http::field::server) == msg.end())
    msg.set(http::field::server, opts.server_header);
  msg.set(http::field::date, http_date());
  const bool head = req.method() == http::verb::head;
  const unsigned code = msg.result_int();
  const bool no_body = head || code == 204 || code == 304 || code < 200;
  arm(c, opts.write_timeout);

  if (res.file_path() && !no_body) {
    http::response<http::file_body> fm{std::move(msg.base())};
    error_code ec;
    fm.body().open(res.file_path()->c_str(), beast::file_mode::scan, ec);
    if (ec) {
      log::runtime().error("cannot open {}: {}", res.file_path()->string(), ec.message());
      const std::size_t n = co_await send_error(c.stream, http::status::internal_server_error, {}, req.request_id());
      co_await linger_close(c.stream);
      co_return written{false, n, 500};
    }
    fm.prepare_payload();
    const std::size_t size = fm.body().size();
    auto [wec, n] = co_await http::async_write(c.stream, fm, nothrow);
    co_return written{!wec, size};
  }
  if (res.file_path()) {
    msg.content_length(res.file_size());
  } else if (code == 204 || code == 304 || code < 200) {
    msg.body().clear();
    msg.erase(http::field::content_length);
  } else {
    msg.content_length(msg.body().size());
  }
  if (no_body) {
    // Headers only; Content-Length (if any) still describes the body a GET would get.
    http::response<http::empty_body> hm{std::move(msg.base())};
    http::response_serializer<http::empty_body> sr{hm};
    sr.split(true);
    auto [wec, n] = co_await http::async_write_header(c.stream, sr, nothrow);
    co_return written{!wec, 0};
  }
  const std::size_t size = msg.body().size();
  if (msg.chunked()) {
    auto [wec, n] = co_await http::async_write(c.stream, msg, nothrow);
    co_return written{!wec, size};
  }
  // Beast serializes the header; it is copied out once into the connection's
  // buffer and sent with the body in one gather write. (http::async_write
  // walks the header's buffer sequence through several adaptor layers on
  // every write_some: that was a third of the request path's instructions.)
  serialize_header(msg, c.head);
  const std::array<asio::const_buffer, 2> out{asio::buffer(c.head), asio::buffer(msg.body())};
  auto [wec, n] = co_await asio::async_write(c.stream.socket(), out, nothrow);
  co_return written{!wec, size};
}

awaitable<server::impl::admission> server::impl::admit_body(connection& c, detail::body_charge& charge,
                                                             std::size_t n, std::int64_t due_ns) {
  auto& budget = detail::body_budget::process();
  if (budget.try_take(n, charge.limit())) {
    charge.hold_reserved(n);
    co_return admission::admitted;
  }
  // No room: wait in line, the body's bytes left unread in the kernel
  // (backpressure), until admitted or the body's deadline passes.
  asio::steady_timer t(lp.context());
  t.expires_at(std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(due_ns))));
  auto waiting = std::make_shared<asio::steady_timer*>(&t);  // read and cleared on this loop's thread only
  auto w = std::make_shared<detail::body_budget::waiter>();
  w->want = n;
  w->limit = charge.limit();
  w->wake = [ex = lp.get_executor(), waiting] {
    asio::post(ex, [waiting] {
      if (*waiting) (*waiting)->cancel();
    });
  };
  // Out of line also when this frame is destroyed mid-wait (with its loop).
  struct leave {
    detail::body_budget& budget;
    std::shared_ptr<detail::body_budget::waiter> w;
    std::shared_ptr<asio::steady_timer*> waiting;
    connection& c;
    bool done = false;
    ~leave() {
      *waiting = nullptr;
      c.body_wait = nullptr;
      if (!done && budget.finish_wait(w)) budget.give(w->want);
    }
  } guard{budget, w, waiting, c};
  disarm(c);  // the wait has its own deadline
  c.body_wait = &t;
  budget.enqueue(w);
  auto [ec] = co_await t.async_wait(nothrow);
  guard.done = true;
  *waiting = nullptr;
  c.body_wait = nullptr;
  if (budget.finish_wait(w)) {
    charge.hold_reserved(n);
    co_return admission::admitted;
  }
  // Cancelled without being admitted: shutdown or a cancelled task.
  co_return ec ? admission::closed : admission::no_room;
}

awaitable<void> server::impl::run_websocket(connection& c, request& req, const websocket_upgrade& up) {
  auto w = std::make_unique<websocket::impl>(std::move(c.stream));
  w->configure(true, up.options);
  auto [aec] = co_await w->stream.async_accept(req.native(), nothrow);
  if (aec) co_return;
  detail::bump(served, 1);
  websocket session(std::move(w));
  c.ws = &session;
  struct unset {
    connection& c;
    ~unset() { c.ws = nullptr; }
  } guard{c};
  std::exception_ptr error;
  try {
    co_await up.handler(session, req);
  } catch (...) {
    error = std::current_exception();
  }
  if (error && !detail::is_cancellation(error))
    log::runtime().error("WebSocket handler for {} failed: {}", req.target(), detail::describe(error));
  // 1001 (going away) when the server is shutting down, 1011 after a handler error.
  const std::uint16_t code = stopping ? 1001 : error ? 1011 : 1000;
  if (session.close_code() == 0) co_await session.close(code);
}

// One request on connection `c`, from its header (its first bytes are in
// `buf`) to its response. A coroutine of its own so that an idle connection's
// frame holds none of a request's state (parser, request, response): 10,000
// idle keep-alive connections held 2.8 KB of frame each otherwise.
awaitable<server::impl::after> server::impl::serve_request(connection& c, beast::flat_buffer& buf,
                                                         std::int64_t header_due, std::int64_t start,
                                                         const tcp::endpoint& remote, const tcp::endpoint& local) {
  error_code ec;
  // Headers.
  request_parser parser;
  parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
  parser.body_limit(app.client_max_size());
  // The header must be complete by `header_due`: counted from the request's
  // first byte (blank lines before it included), or for a connection's first
  // request from its accept.
  arm_until(c, header_due);
  // Usually the whole header came with the request's first bytes: parse it
  // from the buffer here, saving an operation's round trip through the loop;
  // otherwise read the rest.
  error_code hec = parse_buffered_header(parser, buf);
  if (!hec && !parser.is_header_done()) {
    auto [rec, rn] = co_await http::async_read_header(c.stream, buf, parser, nothrow);
    hec = rec;
  }
  // A request refused before it reached the application is answered and counted.
  const auto refuse = [&](http::status status, std::string detail) {
    return refuse_request(c, describe_refused(parser), status, std::move(detail), start, remote);
  };
  const auto refuse_too_large = [&] {
    return refuse(http::status::payload_too_large, "body exceeds " + std::to_string(app.client_max_size()) + " bytes");
  };
  if (hec) {
    // A passed deadline has already closed the socket (the sweeper):
    // the client is simply cut off.
    if (hec == http::error::body_limit)  // Content-Length already says too much
      co_await refuse_too_large();
    else if (hec == http::error::header_limit)
      co_await refuse(http::status::request_header_fields_too_large, {});
    else if (is_bad_request(hec))
      co_await refuse(http::status::bad_request, hec.message());
    co_return after::close;
  }

  // RFC 9112 3.2: an HTTP/1.1 request without Host, any request with more
  // than one, or with an invalid one, is answered 400 (as nginx does).
  if (const char* why = host_problem(parser.get())) {
    co_await refuse(http::status::bad_request, why);
    co_return after::close;
  }
  // Transfer-Encoding must be exactly "chunked": any other coding, or
  // chunked not last, would frame the body in a way we do not (a smuggling
  // vector), so it is refused.
  if (const auto te = parser.get()[http::field::transfer_encoding]; !te.empty()) {
    if (!parser.chunked()) {
      co_await refuse(http::status::bad_request, "Transfer-Encoding must end with chunked");
      co_return after::close;
    }
    if (!beast::iequals(te, "chunked")) {
      co_await refuse(http::status::not_implemented, "unsupported transfer coding");
      co_return after::close;
    }
  }
  // Body, bounded by the application's client_max_size.
  const auto length = parser.content_length();
  if (length && *length > app.client_max_size()) {
    co_await refuse_too_large();
    co_return after::close;
  }
  // The body's bytes are accounted for in the process-wide budget until the
  // response has been sent (request_body.hpp): a declared length is
  // admitted first (waiting for room), a chunked body is charged as it arrives.
  detail::body_charge charge(opts.max_body_bytes_in_flight);
  if (!parser.is_done()) {
    // One deadline for the body, the wait for room included.
    const std::int64_t body_due = due_in(opts.body_timeout);
    if (length) {
      if (*length > opts.max_body_bytes_in_flight) {
        co_await refuse(http::status::payload_too_large,
                        "body of " + std::to_string(*length) + " bytes exceeds max_body_bytes_in_flight (" +
                            std::to_string(opts.max_body_bytes_in_flight) + ")");
        co_return after::close;
      }
      switch (co_await admit_body(c, charge, static_cast<std::size_t>(*length), body_due)) {
        case admission::admitted: break;
        case admission::closed: co_return after::close;
        case admission::no_room:
          co_await refuse(http::status::service_unavailable,
                          "no room for the body within " + std::to_string(opts.body_timeout.count()) +
                              " ms: request bodies in flight reached " +
                              std::to_string(opts.max_body_bytes_in_flight) + " bytes");
          co_return after::close;
      }
    }
    parser.get().body().charge = &charge;
    if (parser.get().version() >= 11 && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      arm(c, opts.write_timeout);
      auto [cec, cn] = co_await asio::async_write(c.stream, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n"sv), nothrow);
      if (cec) co_return after::close;
    }
    arm_until(c, body_due);
    auto [bec, bn] = co_await http::async_read(c.stream, buf, parser, nothrow);
    if (bec) {
      // The body is dropped before the refusal (which may linger for seconds).
      std::string().swap(parser.get().body().data);
      charge.release();
      if (bec == http::error::body_limit)
        co_await refuse_too_large();
      else if (bec == detail::over_budget())
        co_await refuse(http::status::service_unavailable,
                        "request bodies in flight reached " + std::to_string(opts.max_body_bytes_in_flight) + " bytes");
      else if (is_bad_request(bec))
        co_await refuse(http::status::bad_request, bec.message());
      co_return after::close;
    }
  }
  disarm(c);

  std::optional<request> req;
  std::optional<http_error> bad_target;
  try {
    auto parsed = parser.release();
    req.emplace(http::request<http::string_body>(std::move(parsed.base()), std::move(parsed.body().data)), remote,
                local);
  } catch (const http_error& e) {
    bad_target = e;
  }
  if (bad_target) {
    co_await refuse(bad_target->status(), bad_target->message());
    co_return after::close;
  }
  ++in_flight;
  LOUPE_HTTP_METRIC(active_gauge.Increment());
  c.in_handler = true;
  // The request is a task of its own, run on this coroutine (no co_spawn).
  std::exception_ptr ep;
  response res;
  {
    detail::inline_task task(lp, "http.request");
    c.request_task = task.id();
    try {
      res = co_await app.handle(*req);
    } catch (...) {
      ep = std::current_exception();
    }
    if (task.end(ep)) co_await asio::this_coro::reset_cancellation_state();
  }
  c.in_handler = false;
  const std::uint64_t request_task = std::exchange(c.request_task, 0);
  --in_flight;
  LOUPE_HTTP_METRIC(active_gauge.Decrement());
  if (ep) {
    // app.handle turns handler errors into responses; what arrives here is
    // normally a cancellation (503). Anything else is a bug worth a record.
    if (detail::is_cancellation(ep)) {
      res = response(http_service_unavailable("request cancelled"));
    } else {
      log::runtime().error("request {} {} failed outside its handler: {}", req->method_name(), req->target(),
                           detail::describe(ep));
      res = response(http_internal_server_error());
    }
  }
  // A handler may ask for the connection to close (Connection: close).
  const bool keep = req->keep_alive() && !stopping && !ep && res.native().keep_alive();
  if (res.upgrade() && !ep) {
    record(&*req, nullptr, 101, req->bytes().size(), 0, start, request_task, remote);
    // A WebSocket session may last for hours: the handshake's body (if any)
    // must not hold its share of the budget meanwhile.
    std::string().swap(req->native().body());
    charge.release();
    co_await run_websocket(c, *req, *res.upgrade());
    co_return after::done;
  }
  const unsigned status = res.native().result_int();
  const auto sent = co_await write_response(c, *req, res, keep);
  detail::bump(served, 1);
  record(&*req, nullptr, sent.status_sent ? sent.status_sent : status, req->bytes().size(), sent.body_bytes, start,
         request_task, remote);
  if (!sent.ok) co_return after::close;
  if (!keep) {
    if (buf.size() == 0) {
      c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      c.stream.socket().close(ec);
    } else {
      co_await linger_close(c.stream);
    }
    co_return after::done;
  }
  co_return after::next;
}

awaitable<void> server::impl::serve(std::shared_ptr<impl> self, tcp::socket sock) {
  connection c(std::move(sock));
  conns.insert(&c);
  struct done {
    impl& s;
    connection* c;
    ~done() {
      s.conns.erase(c);
      s.connection_done();
    }
  } guard{*self, &c};

  error_code ec;
  const auto remote = c.stream.socket().remote_endpoint(ec);
  // Reads after a readiness wait must not block the loop if woken for nothing.
  c.stream.socket().non_blocking(true, ec);
  const auto local = c.stream.socket().local_endpoint(ec);
  // Bounded: what is buffered is at most a header or a chunk's header line
  // (bodies move into the request), so a line that never ends (a huge chunk
  // extension) is refused instead of growing the buffer without limit.
  beast::flat_buffer buf(opts.max_header_bytes + 64 * 1024);
  // When the header of the request being received must be complete; 0
  // between requests (idle keep-alive). The first request's deadline counts
  // from the accept, a later one's from its first byte: blank lines before a
  // request line count as its bytes, so a client trickling CRLFs is cut off at
  // the header timeout (it would re-arm the keep-alive timeout otherwise).
  std::int64_t header_due = due_in(opts.header_timeout);
  bool after_response = false;  // nothing but a response since the last request

  for (;;) {
    if (stopping) break;
    // Wait for the next request's first bytes (idle keep-alive time).
    c.idle = true;
    if (buf.size() == 0) {
      if (header_due != 0) arm_until(c, header_due);
      else arm(c, opts.keepalive_timeout);
      // Read what is there already (under load the next request usually
      // is); when nothing is, the connection is idle: it waits for the
      // socket to become readable without holding a read buffer (10,000 idle
      // keep-alive connections held 80 MB of 8 KB buffers otherwise).
      error_code rec;
      std::size_t n = c.stream.socket().read_some(buf.prepare(8192), rec);
      if (nothing_yet(rec)) {
        buf.shrink_to_fit();
        auto [wec] = co_await c.stream.socket().async_wait(tcp::socket::wait_read, nothrow);
        // The wait fails on an idle timeout (the sweeper closed the socket)
        // or at shutdown (cancelled). At shutdown a request that has already
        // arrived is still served (answered with Connection: close); a
        // connection with nothing pending closes.
        const bool shutting_down = wec && stopping && c.stream.socket().is_open();
        if (wec && !shutting_down) break;
        n = c.stream.socket().read_some(buf.prepare(8192), rec);
        if (nothing_yet(rec)) {
          if (shutting_down) break;
          continue;  // woken for nothing
        }
      }
      if (rec) break;  // closed by the client
      buf.commit(n);
    }
    c.idle = false;
    const std::int64_t start = detail::now_ns();
    const bool fresh = header_due == 0;
    if (fresh) header_due = start + std::chrono::duration_cast<std::chrono::nanoseconds>(opts.header_timeout).count();
    // Blank lines before a request line are ignored (RFC 9112 2.2), but the
    // header deadline they started keeps running.
    std::size_t blank = 0;
    while (buf.size() > 0) {
      const char ch = *static_cast<const char*>(buf.data().data());
      if (ch != '\r' && ch != '\n') break;
      buf.consume(1);
      ++blank;
    }
    if (buf.size() == 0) {
      // Except for one CRLF right after a response (old clients send one
      // after a POST body): the connection stays idle, on keep-alive time.
      if (fresh && after_response && blank <= 2) header_due = 0;
      after_response = false;
      continue;
    }
    after_response = false;

    switch (co_await serve_request(c, buf, std::exchange(header_due, 0), start, remote, local)) {
      case after::next:
        after_response = true;
        continue;
      case after::close: break;
      case after::done: co_return;
    }
    break;
  }
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  c.stream.socket().close(ec);
}

}  // namespace loupe
