// Private: what the client session and the WebSocket client share — where a
// URL points, and opening a TCP connection to it under a deadline.
#pragma once

#include <loupe/runtime/client.hpp>
#include <loupe/runtime/clock.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/url/url_view_base.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace loupe::detail {

/// The connection-level parts of an http:// or ws:// URL.
struct url_origin {
  std::string host;
  std::uint16_t port = 80;
  std::string key;          ///< "host:port", the connection pool's key
  std::string host_header;  ///< the Host header: "host" or "host:port" as written
  std::string target;       ///< path and query, "/" when empty
};

/// Checks the scheme and host; throws client_error(invalid_url) naming the URL.
url_origin origin_of(const boost::urls::url_view_base& u, std::string_view scheme);

/// client_errc's name for metrics labels ("timeout", …; "other").
std::string_view client_errc_name(int e);

/// Resolves (or takes the loop's map_host entry) and connects (TCP_NODELAY
/// on) before `deadline`; throws client_error(connection_failed or timeout).
awaitable<boost::beast::tcp_stream> connect_tcp(loop& l, const url_origin& to, loupe::clock::time_point deadline);

}  // namespace loupe::detail
