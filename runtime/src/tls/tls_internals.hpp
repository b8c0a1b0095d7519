// Private: OpenSSL contexts behind tls_context and the client, the stream
// type a TLS connection uses, and the names of what went wrong in a
// handshake (tls.cpp).
#pragma once

#include <loupe/runtime/client.hpp>
#include <loupe/runtime/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace loupe {

struct tls_context::impl {
  mutable std::mutex m;
  tls_certificate source;
  std::shared_ptr<boost::asio::ssl::context> ctx;
  std::string description;
  std::atomic<std::uint64_t> generation{0};
  /// The context new connections use (kept alive by the connections made with it).
  std::shared_ptr<boost::asio::ssl::context> current() const {
    std::lock_guard lock(m);
    return ctx;
  }
};

namespace detail {

/// TLS over a connection's TCP stream (which the connection keeps: its
/// socket is what deadlines close). Asio's ssl::stream itself: Beast's
/// ssl_stream puts a flat_stream in front, whose write_some of a buffer
/// sequence starting with an empty buffer writes nothing (Boost 1.81), which
/// ends asio::async_write early; the writers coalesce small pieces instead.
using tls_stream = boost::asio::ssl::stream<boost::beast::tcp_stream&>;

/// A server context for `cert` (TLS 1.2+, ALPN http/1.1); throws tls_config_error.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const tls_certificate& cert, std::string* description);
/// A client context for `o`; throws tls_config_error.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const client_tls_options& o);
/// SNI, the host-name check (an IP address checks the certificate's IP
/// entries) and ALPN for a client stream about to shake hands with `host`.
void prepare_client(tls_stream& s, const std::string& host, bool verify);
/// Why a client handshake failed: the error code and a message for `who`.
std::pair<client_errc, std::string> client_failure(tls_stream& s, const boost::system::error_code& ec,
                                                   std::string_view who);
/// A short name for why a server handshake failed (a metric label):
/// not_tls, http_on_https_port, protocol_version, no_shared_cipher,
/// certificate_rejected, closed, timeout, other.
std::string_view server_failure_reason(const boost::system::error_code& ec);
/// "TLSv1.3", ...
std::string_view tls_version(tls_stream& s);
/// The ALPN protocol agreed on, or empty.
std::string alpn_protocol(tls_stream& s);

}  // namespace detail

}  // namespace loupe
