// Where a URL points, and opening a connection to it (map_host first, then
// the in-memory network, then DNS; TLS over it for https) under a deadline:
// shared by the client session and the WebSocket client.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/detail/socket_deadline.hpp>
#include <loupe/runtime/loop.hpp>

#include "client/connect.hpp"
#include "client/host_map.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace loupe {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using clock_type = loupe::clock;

namespace detail {

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

url_origin origin_of(const boost::urls::url_view_base& u, bool websocket) {
  const std::string_view plain = websocket ? "ws" : "http";
  const std::string_view secure = websocket ? "wss" : "https";
  const bool is_secure = u.scheme() == secure;
  if ((u.scheme() != plain && !is_secure) || u.host().empty())
    throw client_error(client_errc::invalid_url, "invalid URL '" + std::string(u.buffer()) + "' (" + std::string(plain) +
                                                     ":// or " + std::string(secure) + ":// with a host)");
  url_origin o;
  o.host = u.host();
  o.secure = is_secure;
  o.port = u.has_port() ? u.port_number() : is_secure ? 443 : 80;
  o.key = o.host + ":" + std::to_string(o.port);
  o.pool_key = is_secure ? "https://" + o.key : o.key;
  o.host_header = u.has_port() ? o.key : o.host;
  o.target = std::string(u.encoded_target());
  if (o.target.empty()) o.target = "/";
  return o;
}

const std::shared_ptr<asio::ssl::context>& client_tls::context() {
  if (!ctx) {
    try {
      ctx = make_client_context(options);
    } catch (const tls_config_error& e) {
      throw client_error(client_errc::tls_handshake_failed, e.what());
    }
  }
  return ctx;
}

awaitable<std::unique_ptr<client_conn>> open_connection(loop& l, const url_origin& to, clock_type::time_point deadline,
                                                        client_tls& tls) {
  auto c = std::make_unique<client_conn>(co_await connect_tcp(l, to, deadline));
  if (!to.secure) co_return c;
  c->tls_ctx = tls.context();
  c->tls = std::make_unique<tls_stream>(c->tcp, *c->tls_ctx);
  prepare_client(*c->tls, to.host, tls.options.verify);
  detail::socket_deadline timeout(c->socket());
  timeout.arm_at(deadline);
  auto [hec] = co_await c->tls->async_handshake(asio::ssl::stream_base::client, nothrow);
  hec = timeout.timed(hec);
  if (hec == beast::error::timeout)
    throw client_error(client_errc::timeout, "TLS handshake with " + to.key + " timed out");
  if (hec) {
    auto [code, message] = client_failure(*c->tls, hec, to.key);
    throw client_error(code, message);
  }
  co_return c;
}

awaitable<beast::tcp_stream> connect_tcp(loop& l, const url_origin& to, clock_type::time_point deadline) {
  asio::any_io_executor ex = l.get_executor();
  beast::tcp_stream stream(ex);
  tcp::resolver::results_type results;
  auto mapped = boost::asio::use_service<host_map>(l.context()).find(to.host);
  const std::string memory_name = mapped ? mapped->memory : memory_listening(to.host) ? to.host : std::string();
  if (!memory_name.empty()) {
    // The in-memory network: connected at once, no DNS, no handshake.
    try {
      co_return beast::tcp_stream(memory_connect(ex, memory_name));
    } catch (const boost::system::system_error& e) {
      throw client_error(client_errc::connection_failed, "cannot connect to " + to.key + ": " + e.what());
    }
  }
  if (mapped) {
    results = tcp::resolver::results_type::create(mapped->tcp, to.host, std::to_string(to.port));
  } else {
    // Resolved on Asio's own thread: the loop is not idle meanwhile.
    detail::outside_work_scope away;
    tcp::resolver resolver(ex);
    boost::system::error_code rec;
    std::tie(rec, results) = co_await resolver.async_resolve(to.host, std::to_string(to.port), nothrow);
    if (rec) throw client_error(client_errc::connection_failed, "cannot resolve " + to.host + ": " + rec.message());
  }
  detail::socket_deadline timeout(stream.socket());
  timeout.arm_at(deadline);
  boost::system::error_code cec;
  std::tie(cec, std::ignore) = co_await stream.async_connect(results, nothrow);
  cec = timeout.timed(cec);
  if (cec == beast::error::timeout) throw client_error(client_errc::timeout, "connecting to " + to.key + " timed out");
  if (cec) throw client_error(client_errc::connection_failed, "cannot connect to " + to.key + ": " + cec.message());
  stream.expires_never();
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  co_return stream;
}

}  // namespace detail

}  // namespace loupe
