// An HTTPS connection's handshake: TLS over the connection's TCP stream with
// the certificate current at accept, bounded by the header deadline. A
// failure is the client's doing (a scanner, an old client, one that does not
// trust us, plain HTTP to the HTTPS port): logged at info level and counted
// by reason, never an error of ours. Plain HTTP gets a plain-text 400, as
// nginx does, so that a person who typed http:// sees why.
#include "server/server_internals.hpp"

#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/write.hpp>

namespace loupe {

using detail::nothrow;
using namespace std::string_view_literals;

namespace {

std::string remote_text(const tcp::endpoint& remote, bool memory) {
  if (memory) return "memory";
  return remote.address().to_string() + ":" + std::to_string(remote.port());
}

}  // namespace

awaitable<bool> server::impl::tls_handshake(connection& c, std::int64_t due_ns, const tcp::endpoint& remote) {
  c.tls_ctx = opts.tls->internals().current();
  c.tls = std::make_unique<detail::tls_stream>(c.stream, *c.tls_ctx);
  arm_until(c, due_ns);
  auto [ec] = co_await c.tls->async_handshake(asio::ssl::stream_base::server, nothrow);
  disarm(c);
  if (!ec) {
    LOUPE_HTTP_METRIC(metrics->server.tls_handshakes
                          .Add({{"loop", lp.name()}, {"tls_protocol_version", std::string(detail::tls_version(*c.tls))}})
                          .Increment());
    co_return true;
  }
  const std::string_view reason = detail::server_failure_reason(ec);
  LOUPE_HTTP_METRIC(
      metrics->server.tls_handshake_failures.Add({{"loop", lp.name()}, {"reason", std::string(reason)}}).Increment());
  log::runtime().info("TLS handshake with {} failed ({}): {}", remote_text(remote, c.memory), reason, ec.message());
  error_code ignored;
  if (reason == "http_on_https_port" && c.stream.socket().is_open()) {
    static constexpr auto answer =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 50\r\n"
        "Connection: close\r\n\r\nThis port speaks HTTPS: use https:// to reach it.\n"sv;
    static_assert(answer.size() - answer.find("\r\n\r\n") - 4 == 50);
    arm(c, opts.write_timeout);
    co_await asio::async_write(c.stream, asio::buffer(answer), nothrow);
    disarm(c);
  }
  c.tls.reset();
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  c.stream.socket().close(ignored);
  co_return false;
}

}  // namespace loupe
