// A connection's life: its requests in order (keep-alive, pipelining), the
// checks a request passes before the application sees it (header deadline,
// Host, Transfer-Encoding, body limits and the body budget), the request's
// task, and the upgrade to a WebSocket.
#include "server/server_internals.hpp"

#include "core/exceptions.hpp"
#include "core/task_record.hpp"
#include "websocket/websocket_internals.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/url/parse.hpp>

#include <optional>

namespace loupe {

using detail::nothrow;
using detail::refused;
using detail::request_parser;
using namespace std::string_view_literals;

namespace {

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

// A non-blocking read that found nothing to read yet.
bool nothing_yet(const error_code& ec) { return ec == asio::error::would_block || ec == asio::error::try_again; }

// A parse error the client should hear about (400), as opposed to the
// connection simply ending.
bool is_bad_request(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::need_more && ec != http::error::need_buffer;
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

// From the parsed header if it is complete. Beast fills in the method and
// target as soon as it has parsed the request line, so a request refused for
// a bad header field still has them; one whose header was too large (431) is
// refused before its request line is parsed, and has neither.
refused describe_refused(const request_parser& parser, application& app) {
  refused r;
  const auto& h = parser.get();
  r.method = std::string(h.method_string());
  r.path = std::string(h.target());
  // The fields parsed so far: a Content-Length past the limit stops the
  // parser at the end of the header, before is_header_done().
  r.user_agent = std::string(h[http::field::user_agent]);
  r.request_id = detail::accept_request_id(h["X-Request-ID"]);
  // Routed like any request, so that a refusal counts under its route.
  if (!r.method.empty() && !r.path.empty()) {
    try {
      const request probe(request::message_type(http::request_header<>(h.base())));
      r.route = detail::access::route_template_of(app, probe);
    } catch (const std::exception&) {
      // an invalid target: no route
    }
  }
  return r;
}

}  // namespace

awaitable<void> server::impl::refuse_request(connection& c, refused r, std::string detail, std::int64_t start,
                                             tcp::endpoint remote) {
  const unsigned status = status_code(r.reason);
  if (detail.empty()) detail = make_error_code(r.reason).message();
  // A refused request with a request line is a request task like any other:
  // the console lists it, and ps-terminated keeps how it ended.
  std::optional<detail::inline_task> task;
  if (!r.method.empty()) {
    task.emplace(lp, "http.request");
    detail::set_request_info({r.method, r.route ? *r.route : std::string(), r.path, r.request_id});
  }
  const std::size_t n = co_await send_error(c, static_cast<http::status>(status), detail, r.request_id);
  record(nullptr, &r, status, 0, n, start, task ? task->id() : 0, remote);
  if (task && task->end(std::make_exception_ptr(http_error(static_cast<http::status>(status), detail))))
    co_await asio::this_coro::reset_cancellation_state();
  co_await linger_close(c);
}

awaitable<server::impl::admission> server::impl::admit_body(connection& c, detail::body_charge& charge, std::size_t n,
                                                            std::int64_t due_ns) {
  auto& budget = detail::body_budget::process();
  if (budget.try_take(n, charge.limit())) {
    charge.hold_reserved(n);
    co_return admission::admitted;
  }
  // No room: wait in line, the body's bytes left unread in the kernel
  // (backpressure), until admitted or the body's deadline passes.
  loupe::timer t(lp.context());
  t.expires_at(clock::time_point(clock::duration(due_ns)));
  auto waiting = std::make_shared<loupe::timer*>(&t);  // read and cleared on this loop's thread only
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
    std::shared_ptr<loupe::timer*> waiting;
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
  // Over TLS the session uses the connection's TLS stream (this frame
  // outlives it); over TCP it takes the stream.
  auto w = c.tls ? std::make_unique<websocket::impl>(*c.tls) : std::make_unique<websocket::impl>(std::move(c.stream));
  w->configure(true, up.options);
  auto& ws_impl = *w;
  const auto aec = co_await w->timed_handshake([&]() -> awaitable<error_code> {
    auto [ec] = co_await ws_impl.with([&](auto& s) { return s.async_accept(req.native(), nothrow); });
    co_return ec;
  });
  if (aec) co_return;
  w->heard();
  w->start_idle_watch();
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
  if (error && !is_cancellation(error))
    log::runtime().error("WebSocket handler for {} failed: {}", req.target(), detail::describe(error));
  const ws_close code = stopping ? ws_close::going_away : error ? ws_close::internal_error : ws_close::normal;
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
    auto [rec, rn] = co_await on_stream(c, [&](auto& s) { return http::async_read_header(s, buf, parser, nothrow); });
    hec = rec;
  }
  // A request refused before it reached the application is answered and counted.
  const auto refuse = [&](server_errc why, std::string detail) {
    refused r = describe_refused(parser, app);
    r.reason = why;
    return refuse_request(c, std::move(r), std::move(detail), start, remote);
  };
  const auto refuse_too_large = [&] {
    return refuse(server_errc::body_too_large, "body exceeds " + std::to_string(app.client_max_size()) + " bytes");
  };
  if (hec) {
    // A passed deadline has already closed the socket (the sweeper):
    // the client is simply cut off.
    if (hec == http::error::body_limit)  // Content-Length already says too much
      co_await refuse_too_large();
    else if (hec == http::error::header_limit) co_await refuse(server_errc::headers_too_large, {});
    else if (is_bad_request(hec)) co_await refuse(server_errc::malformed_request, hec.message());
    co_return after::close;
  }

  // RFC 9112 3.2: an HTTP/1.1 request without Host, any request with more
  // than one, or with an invalid one, is answered 400 (as nginx does).
  if (const char* why = host_problem(parser.get())) {
    co_await refuse(server_errc::invalid_host, why);
    co_return after::close;
  }
  // Transfer-Encoding must be exactly "chunked": any other coding, or
  // chunked not last, would frame the body in a way we do not (a smuggling
  // vector), so it is refused.
  if (const auto te = parser.get()[http::field::transfer_encoding]; !te.empty()) {
    if (!parser.chunked()) {
      co_await refuse(server_errc::bad_transfer_encoding, {});
      co_return after::close;
    }
    if (!beast::iequals(te, "chunked")) {
      co_await refuse(server_errc::unsupported_transfer_coding, {});
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
        co_await refuse(server_errc::body_too_large, "body of " + std::to_string(*length) +
                                                         " bytes exceeds max_body_bytes_in_flight (" +
                                                         std::to_string(opts.max_body_bytes_in_flight) + ")");
        co_return after::close;
      }
      switch (co_await admit_body(c, charge, static_cast<std::size_t>(*length), body_due)) {
        case admission::admitted: break;
        case admission::closed: co_return after::close;
        case admission::no_room:
          co_await refuse(server_errc::no_room_for_body, "no room for the body within " +
                                                             std::to_string(opts.body_timeout.count()) +
                                                             " ms: request bodies in flight reached " +
                                                             std::to_string(opts.max_body_bytes_in_flight) + " bytes");
          co_return after::close;
      }
    }
    parser.get().body().charge = &charge;
    if (parser.get().version() >= 11 && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      arm(c, opts.write_timeout);
      auto [cec, cn] = co_await on_stream(c, [&](auto& s) {
        return asio::async_write(s, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n"sv), nothrow);
      });
      if (cec) co_return after::close;
    }
    arm_until(c, body_due);
    auto [bec, bn] = co_await on_stream(c, [&](auto& s) { return http::async_read(s, buf, parser, nothrow); });
    if (bec) {
      // The body is dropped before the refusal (which may linger for seconds).
      std::string().swap(parser.get().body().data);
      charge.release();
      if (bec == http::error::body_limit) co_await refuse_too_large();
      else if (bec == detail::over_budget())
        co_await refuse(server_errc::no_room_for_body,
                        "request bodies in flight reached " + std::to_string(opts.max_body_bytes_in_flight) + " bytes");
      else if (is_bad_request(bec)) co_await refuse(server_errc::malformed_request, bec.message());
      co_return after::close;
    }
  }
  disarm(c);

  std::optional<request> req;
  std::optional<http_error> bad_target;
  try {
    auto parsed = parser.release();
    req.emplace(http::request<http::string_body>(std::move(parsed.base()), std::move(parsed.body().data)), remote, local);
  } catch (const http_error& e) {
    bad_target = e;
  }
  if (bad_target) {
    co_await refuse(server_errc::invalid_target, bad_target->message());
    co_return after::close;
  }
  ++in_flight;
  LOUPE_HTTP_METRIC(active_gauge.Increment());
  c.in_handler = true;
  // Bytes of a next request already buffered: a peek at the socket cannot
  // tell whether the client is still there (client_gone.cpp).
  c.client_gone = false;
  c.watch_client = buf.size() == 0;
  detail::access::set_connection(*req, c.watch_client ? c.stream.socket().native_handle() : -1, &c.client_gone);
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
  c.watch_client = false;
  detail::access::set_connection(*req, -1, nullptr);
  const std::uint64_t request_task = std::exchange(c.request_task, 0);
  --in_flight;
  LOUPE_HTTP_METRIC(active_gauge.Decrement());
  if (ep) {
    // app.handle turns handler errors into responses; what arrives here is
    // normally a cancellation (503). Anything else is a bug worth a record.
    if (is_cancellation(ep)) {
      res = response(http_service_unavailable("request cancelled"));
    } else {
      log::runtime().error("request {} {} failed outside its handler: {}", req->method_name(), req->target(),
                           detail::describe(ep));
      res = response(http_internal_server_error());
    }
  }
  // A handler may ask for the connection to close (Connection: close).
  const bool keep = req->keep_alive() && !stopping && !c.close_requested && !ep && res.native().keep_alive();
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
  if (std::exchange(c.client_gone, false)) {
    // Nobody to answer: recorded as the client's (499), nothing written.
    record(&*req, nullptr, detail::client_closed_request, req->bytes().size(), 0, start, request_task, remote,
           ep ? 0 : status);
    c.stream.socket().close(ec);
    co_return after::done;
  }
  const auto sent = co_await write_response(c, *req, res, keep);
  detail::bump(served, 1);
  record(&*req, nullptr, sent.status_sent ? sent.status_sent : status, req->bytes().size(), sent.body_bytes, start,
         request_task, remote);
  if (!sent.ok) co_return after::close;
  if (!keep) {
    if (buf.size() == 0 && !c.tls) {
      c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      c.stream.socket().close(ec);
    } else {
      co_await linger_close(c);
    }
    co_return after::done;
  }
  co_return after::next;
}


awaitable<void> server::impl::serve(std::shared_ptr<impl> self, tcp::socket sock, bool memory) {
  connection c(std::move(sock), memory);
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
  const auto remote = peer_endpoint(c.stream.socket(), memory);
  // Reads after a readiness wait must not block the loop if woken for nothing.
  c.stream.socket().non_blocking(true, ec);
  const auto local = memory ? tcp::endpoint() : c.stream.socket().local_endpoint(ec);
  // HTTPS: the handshake first, within the header timeout.
  std::int64_t header_due = due_in(opts.header_timeout);
  if (opts.tls && !co_await tls_handshake(c, header_due, remote)) co_return;
  // Bounded: what is buffered is at most a header or a chunk's header line
  // (bodies move into the request), so a line that never ends (a huge chunk
  // extension) is refused instead of growing the buffer without limit.
  beast::flat_buffer buf(opts.max_header_bytes + 64 * 1024);
  // When the header of the request being received must be complete; 0
  // between requests (idle keep-alive). The first request's deadline counts
  // from the accept, a later one's from its first byte: blank lines before a
  // request line count as its bytes, so a client trickling CRLFs is cut off at
  // the header timeout (it would re-arm the keep-alive timeout otherwise).
  bool after_response = false;  // nothing but a response since the last request

  // A cancel of this task (the console's) closes the connection cleanly: at
  // once when idle; a request in flight is cancelled (by its parent) and
  // answered 503 with Connection: close first. Cancelled outright, the
  // connection's own cancellation aborted that answer's write too.
  set_cancel_policy({"closes the connection: at once when idle, else after cancelling its request in flight and "
                     "answering it 503",
                     [this, &c] {
    c.close_requested = true;
    error_code ignored;
    if (c.idle) c.stream.socket().cancel(ignored);
    if (c.in_handler && c.request_task) lp.cancel(c.request_task, cancel_source::parent);
    if (c.ws) detail::access::of(*c.ws).socket().cancel(ignored);
                     }});
  for (;;) {
    if (stopping || c.close_requested) break;
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
      // (Over TLS, a read that finds nothing is one that needs bytes from
      // the socket: what TLS had decrypted and buffered was read first.)
      const auto read_now = [&] {
        return c.tls ? c.tls->read_some(buf.prepare(8192), rec) : c.stream.socket().read_some(buf.prepare(8192), rec);
      };
      std::size_t n = read_now();
      if (nothing_yet(rec)) {
        buf.shrink_to_fit();
        auto [wec] = co_await c.stream.socket().async_wait(tcp::socket::wait_read, nothrow);
        // The wait fails on an idle timeout (the sweeper closed the socket)
        // or at shutdown (cancelled). At shutdown a request that has already
        // arrived is still served (answered with Connection: close); a
        // connection with nothing pending closes.
        const bool shutting_down = wec && (stopping || c.close_requested) && c.stream.socket().is_open();
        if (wec && !shutting_down) break;
        n = read_now();
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
    if (fresh)
      header_due = detail::deadline_base(start) +
                   std::chrono::duration_cast<std::chrono::nanoseconds>(opts.header_timeout).count();
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
      case after::next: after_response = true; continue;
      case after::close: break;
      case after::done: co_return;
    }
    break;
  }
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  c.stream.socket().close(ec);
}

}  // namespace loupe
