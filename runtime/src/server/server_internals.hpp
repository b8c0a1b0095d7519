// Private: the server's parts — a connection, the server's state
// (server::impl) and what its files share. The files, by concept:
//   listener.cpp         listen, accept, refusals past the limits, shutdown
//   connection.cpp       a connection's life: requests in order, request checks, bodies
//   deadlines.cpp        the sweeper that enforces every connection deadline
//   response_writer.cpp  writing a response (one gather write), closing politely
//   error_page.cpp       the error responses the server itself sends
//   access_log.cpp       the metrics and the access-log record of each request
//   client_gone.cpp      noticing a client that closed its connection mid-request (499)
//   body_budget.hpp      request bodies and the process-wide bound on them
//   tls_handshake.cpp    an HTTPS connection's handshake, and its failures
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/detail/socket_deadline.hpp>
#include <loupe/runtime/timer.hpp>

#include "core/access.hpp"
#include "core/clock.hpp"
#include "observe/http_metrics.hpp"
#include "server/body_budget.hpp"
#include "tls/tls_internals.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

// LOUPE_HTTP_METRICS=OFF (a benchmark baseline) compiles the per-request
// metric updates out.
#ifdef LOUPE_NO_HTTP_METRICS
#define LOUPE_HTTP_METRIC(statement) ((void)0)
#else
#define LOUPE_HTTP_METRIC(statement) statement
#endif

namespace loupe {

namespace detail {

inline constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
/// nginx's status for a request whose client closed the connection first.
inline constexpr unsigned client_closed_request = 499;
using request_parser = boost::beast::http::request_parser<counted_body>;

/// Whether the peer of a connection is still there, from a peek at its
/// socket (client_gone.cpp): `unknown` when bytes are waiting to be read.
enum class peer_state { there, gone, unknown };
peer_state peek_peer(int fd) noexcept;

/// What is known of a request refused before it reached the application.
struct refused {
  std::string method;  // empty when unknown
  std::string path;
  std::string user_agent;
  std::string request_id;  // the client's X-Request-ID if sane, else generated
  // The template of the route it would have reached (the route's own
  // string: the metrics cache series by its address); null for none.
  const std::string* route = nullptr;
  server_errc reason = server_errc::malformed_request;
};

// Connections open in the whole process (every server, every loop), each
// holding a descriptor; and those of them being refused.
extern std::atomic<std::size_t> process_connections;
extern std::atomic<std::size_t> process_refusing;

// What the descriptor limit (RLIMIT_NOFILE) leaves for connections: the limit
// less a reserve for files, the console, the log and refusing connections
// past the limit with a 503. Past it, accept() would fail with EMFILE and
// clients would wait in the backlog, unanswered.
struct descriptor_room {
  std::size_t limit = 0;  // 0: unlimited
  std::size_t reserve = 0;
  std::size_t connections = std::numeric_limits<std::size_t>::max();
};

descriptor_room read_descriptor_room();

// RFC 9110 IMF-fixdate, recomputed at most once a second per thread.
std::string_view http_date();

// The sweeper's tick: a tenth of the shortest timeout, between 10 ms and 1 s.
std::chrono::milliseconds sweep_tick(const server_options& o);

}  // namespace detail

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

/// The peer's address: the empty endpoint for an in-memory connection (the
/// access log then says "memory"), or what the socket says.
inline tcp::endpoint peer_endpoint(const tcp::socket& s, bool memory) {
  error_code ec;
  return memory ? tcp::endpoint() : s.remote_endpoint(ec);
}

/// One client connection. Lives in the frame of its connection task.
struct connection {
  connection(tcp::socket s, bool in_memory) : stream(std::move(s)), memory(in_memory) {}
  beast::tcp_stream stream;  // TCP (or in memory): what deadlines close
  // HTTPS: the context it was made with (a reload does not change it) and
  // TLS over `stream`; null for plain HTTP.
  std::shared_ptr<asio::ssl::context> tls_ctx;
  std::unique_ptr<detail::tls_stream> tls;
  bool memory = false;     // on the in-memory network (memory_network.hpp)
  bool idle = true;        // between requests: waiting for the next one's first bytes
  bool in_handler = false; // a request task is running
  std::uint64_t request_task = 0;  // its id, for cancellation at shutdown
  // While the handler runs: whether the sweeper may ask the socket if the
  // client is still there (not when bytes of a next request are buffered),
  // and its answer (client_gone.cpp).
  bool watch_client = false;
  bool client_gone = false;
  bool close_requested = false;  // a cancel of the connection's task: close after this response
  websocket* ws = nullptr;         // set while the connection is a WebSocket
  // When the current read or write phase must be over (clock_ns clock; 0: no
  // limit). The server's sweeper closes the socket once it has passed.
  std::int64_t deadline_ns = 0;
  std::string head;  // the response header being sent (its storage reused)
  // While a body waits for room in the budget: its timer (cancelled to stop
  // the wait at shutdown).
  loupe::timer* body_wait = nullptr;
};

/// Calls `f` with the stream the connection's HTTP goes over: TLS, or TCP.
/// (Both calls return the same awaitable type.)
template <class F>
decltype(auto) on_stream(connection& c, F&& f) {
  if (c.tls) return f(*c.tls);
  return f(c.stream);
}

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(loop& l, application& a, server_options o)
      : lp(l), app(a), opts(std::move(o)), metrics(detail::access::metrics(a)), series(metrics->server),
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
  std::vector<std::unique_ptr<memory_acceptor>> memory_listeners;
  std::unordered_set<connection*> conns;
  std::size_t open = 0;  // connections counted from accept, including ones not yet started
  std::size_t in_flight = 0;
  std::atomic<std::uint64_t> served{0};
  bool stopping = false;
  loupe::timer* drain_waiter = nullptr;
  // The sweeper ticks on loupe::clock while a connection has a deadline; when
  // none has (every connection in its handler), only the check for clients
  // gone is left, on a housekeeping timer.
  loupe::timer sweeper{lp.context()};
  detail::housekeeping_timer watcher{lp.context()};
  const std::chrono::milliseconds tick = detail::sweep_tick(opts);
  bool sweeping = false;
  bool watching_only = false;  // the current tick is the watcher's
  std::uint64_t sweep_gen = 0;
  const detail::descriptor_room room = detail::read_descriptor_room();
  log::throttled_warning accept_warning;

  /// The connection's current phase must end within `t`, or it is closed.
  void arm(connection& c, std::chrono::milliseconds t) { arm_until(c, due_in(t)); }
  /// ... or by `due_ns` (clock_ns clock).
  void arm_until(connection& c, std::int64_t due_ns) {
    c.deadline_ns = due_ns;
    if (!sweeping || watching_only) start_sweeping(false);
  }
  static std::int64_t due_in(std::chrono::milliseconds t) {
    return detail::clock_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(t).count();
  }
  static void disarm(connection& c) noexcept { c.deadline_ns = 0; }
  // The sweeper (deadlines.cpp): one timer per server closes the connections
  // whose deadline has passed.
  void start_sweeping(bool only_watch);
  void stop_sweeping();
  void cancel_tick();
  void sweep(error_code ec, std::uint64_t gen);
  // Clients gone mid-request (client_gone.cpp): checked on each sweep.
  void check_clients();
  void client_left(connection& c);

  awaitable<void> accept_loop(std::shared_ptr<impl> self, tcp::acceptor& a);
  awaitable<void> memory_accept_loop(std::shared_ptr<impl> self, memory_acceptor& a);
  /// A new connection: served, or refused past the limits.
  void admit(const std::shared_ptr<impl>& self, tcp::socket s, bool memory);
  awaitable<void> serve(std::shared_ptr<impl> self, tcp::socket s, bool memory);
  enum class admission { admitted, no_room, closed };
  /// Admits a body of `n` declared bytes into the process-wide budget,
  /// waiting (up to the body timeout) for room.
  awaitable<admission> admit_body(connection& c, detail::body_charge& charge, std::size_t n, std::int64_t due_ns);
  /// What the connection does after a request.
  enum class after { next, close, done };  // read the next one; close; already closed (or upgraded)
  awaitable<after> serve_request(connection& c, beast::flat_buffer& buf, std::int64_t header_due, std::int64_t start,
                                 const tcp::endpoint& remote, const tcp::endpoint& local);
  awaitable<void> reject(std::shared_ptr<impl> self, tcp::socket s, bool memory);
  struct written {
    bool ok = false;
    std::size_t body_bytes = 0;
    unsigned status_sent = 0;  // when it differs from the response's (a file that failed to open)
  };
  awaitable<written> write_response(connection& c, const request& req, response& res, bool keep);
  /// Metrics and the access log record of one answered request. `req` is
  /// null when the request could not be parsed (then `method` may be empty).
  /// A request whose client left is recorded with client_closed_request
  /// (499), and `handler_status` is what the handler answered.
  void record(const request* req, const detail::refused* r, unsigned status, std::size_t request_bytes,
              std::size_t response_bytes, std::int64_t start_ns, std::uint64_t task_id, const tcp::endpoint& remote,
              unsigned handler_status = 0);
  awaitable<void> run_websocket(connection& c, request& req, const websocket_upgrade& up);
  /// Answers a request refused before it reached the application (its status
  /// from r.reason; `detail`, or the reason's message, in the body), records
  /// it, closes.
  awaitable<void> refuse_request(connection& c, detail::refused r, std::string detail, std::int64_t start,
                                 tcp::endpoint remote);
  /// Sends an error response (the caller then closes); returns the body size.
  awaitable<std::size_t> send_error(connection& c, http::status status, std::string_view detail,
                                    std::string_view request_id);
  /// Closes politely: TLS's close_notify, half-close, then drain (bounded).
  awaitable<void> linger_close(connection& c);
  /// An HTTPS connection's handshake, to be over by `due_ns`; false when it
  /// failed (logged, counted, the connection closed).
  awaitable<bool> tls_handshake(connection& c, std::int64_t due_ns, const tcp::endpoint& remote);
  void connection_done() {
    --open;
    detail::process_connections.fetch_sub(1, std::memory_order_relaxed);
    LOUPE_HTTP_METRIC(open_gauge.Decrement());
    if (open == 0 && drain_waiter) drain_waiter->cancel();
    if (open == 0) stop_sweeping();
  }
};

}  // namespace loupe
