// Writing a response: the header serialized by Beast into the connection's
// buffer and sent with the body in one gather write; files; HEAD; closing
// politely (half-close, then drain) so that a close does not reset a response
// in flight.
#include "server/server_internals.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <ctime>

namespace loupe {

using detail::nothrow;
using detail::http_date;

// RFC 9110 IMF-fixdate, recomputed at most once a second per thread.
std::string_view detail::http_date() {
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

namespace {

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

}  // namespace

// Half-close, then read and discard what the client still sends (bounded), so
// that unread input does not turn our close into a reset that destroys the
// response in flight.
awaitable<void> server::impl::linger_close(connection& c) {
  error_code ec;
  auto& socket = c.stream.socket();
  if (c.tls && socket.is_open()) {
    // TLS says goodbye first (close_notify), then waits for the client's
    // (or its end of stream), briefly.
    detail::socket_deadline deadline(socket);
    deadline.arm_after(std::chrono::seconds(2));
    co_await c.tls->async_shutdown(nothrow);
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    detail::socket_deadline deadline(socket);
    deadline.arm_after(std::chrono::seconds(2));
    std::array<char, 4096> scratch;
    for (std::size_t total = 0; total < 1024 * 1024;) {
      auto [rec, n] = co_await socket.async_read_some(asio::buffer(scratch), nothrow);
      if (rec) break;
      total += n;
    }
  }
  socket.close(ec);
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
      const std::size_t n = co_await send_error(c, http::status::internal_server_error, {}, req.request_id());
      co_await linger_close(c);
      co_return written{false, n, 500};
    }
    fm.prepare_payload();
    const std::size_t size = fm.body().size();
    auto [wec, n] = co_await on_stream(c, [&](auto& s) { return http::async_write(s, fm, nothrow); });
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
    auto [wec, n] = co_await on_stream(c, [&](auto& s) { return http::async_write_header(s, sr, nothrow); });
    co_return written{!wec, 0};
  }
  const std::size_t size = msg.body().size();
  if (msg.chunked()) {
    auto [wec, n] = co_await on_stream(c, [&](auto& s) { return http::async_write(s, msg, nothrow); });
    co_return written{!wec, size};
  }
  // Beast serializes the header; it is copied out once into the connection's
  // buffer and sent with the body in one gather write. (http::async_write
  // walks the header's buffer sequence through several adaptor layers on
  // every write_some: that was a third of the request path's instructions.)
  serialize_header(msg, c.head);
  const std::array<asio::const_buffer, 2> out{asio::buffer(c.head), asio::buffer(msg.body())};
  if (c.tls) {
    // TLS writes a record per buffer: a small body goes in the header's
    // record (copied after it), a large one in records of its own.
    if (msg.body().size() <= 16 * 1024) {
      c.head.append(msg.body());
      auto [wec, n] = co_await asio::async_write(*c.tls, asio::buffer(c.head), nothrow);
      co_return written{!wec, size};
    }
    auto [wec, n] = co_await asio::async_write(*c.tls, out, nothrow);
    co_return written{!wec, size};
  }
  auto [wec, n] = co_await asio::async_write(c.stream.socket(), out, nothrow);
  co_return written{!wec, size};
}

}  // namespace loupe
