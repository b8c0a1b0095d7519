// Private: what the client session and the WebSocket client share — where a
// URL points, and opening a connection to it (TCP or in memory, with TLS
// for https) under a deadline.
#pragma once

#include <loupe/runtime/client.hpp>
#include <loupe/runtime/clock.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/url/url_view_base.hpp>

#include "tls/tls_internals.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace loupe::detail {

/// The connection-level parts of an http(s):// or ws(s):// URL.
struct url_origin {
  std::string host;
  std::uint16_t port = 80;
  bool secure = false;      ///< https or wss: TLS over the connection
  std::string key;          ///< "host:port", the metrics' server_address
  std::string pool_key;     ///< the connection pool's key: "host:port", "https://host:port"
  std::string host_header;  ///< the Host header: "host" or "host:port" as written
  std::string target;       ///< path and query, "/" when empty
};

/// Checks the scheme (http or https; ws or wss for a WebSocket) and host;
/// throws client_error(invalid_url) naming the URL.
url_origin origin_of(const boost::urls::url_view_base& u, bool websocket);

/// client_errc's name for metrics labels ("timeout", …; "other").
std::string_view client_errc_name(int e);

/// Resolves (or takes the loop's map_host entry) and connects (TCP_NODELAY
/// on) before `deadline`; throws client_error(connection_failed or timeout).
awaitable<boost::beast::tcp_stream> connect_tcp(loop& l, const url_origin& to, loupe::clock::time_point deadline);

/// A client connection: TCP (or in memory), with TLS over it for https.
struct client_conn {
  explicit client_conn(boost::beast::tcp_stream s) : tcp(std::move(s)) {}
  boost::beast::tcp_stream tcp;  // what deadlines close
  std::shared_ptr<boost::asio::ssl::context> tls_ctx;
  std::unique_ptr<tls_stream> tls;
  boost::asio::ip::tcp::socket& socket() { return tcp.socket(); }
  /// Calls `f` with the stream HTTP goes over (both calls return one type).
  template <class F>
  decltype(auto) with(F&& f) {
    if (tls) return f(*tls);
    return f(tcp);
  }
};

/// What a loop's client connections trust (client_options::tls), its
/// OpenSSL context made on the first https connection.
struct client_tls {
  client_tls_options options;
  std::shared_ptr<boost::asio::ssl::context> ctx;
  /// The context; throws client_error(tls_handshake_failed) if the options
  /// cannot be loaded (a CA file that is not there).
  const std::shared_ptr<boost::asio::ssl::context>& context();
};

/// connect_tcp, then for an https origin the TLS handshake (SNI, the
/// certificate and host checks, ALPN), all before `deadline`; throws
/// client_error (connection_failed, timeout, or the TLS failure's code).
awaitable<std::unique_ptr<client_conn>> open_connection(loop& l, const url_origin& to, loupe::clock::time_point deadline,
                                                        client_tls& tls);

}  // namespace loupe::detail
