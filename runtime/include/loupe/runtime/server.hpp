// loupe/runtime/server.hpp — the HTTP/1.1 server that serves an application on a loop.
//
//   loupe::loop loop;
//   loupe::server srv(loop, app);
//   auto ep = srv.listen("127.0.0.1", 0);        // port 0: the kernel picks one
//   srv.listen_memory("shop.test");              // and/or the in-memory network
//   ...                                          // loop.run() serves
//   co_await srv.shutdown(std::chrono::seconds(10));
//
// Each connection is a task ("http.connection") and each request runs as its
// own task ("http.request", carrying the method, target and route) that the
// connection awaits, so requests on one connection — pipelined or not — are
// answered in order. Cancelling a request's task answers 503. Keep-alive follows
// HTTP/1.1; a malformed request gets a 4xx and its connection is closed; the
// server goes on. An HTTP/1.1 request without Host, or with more than one,
// gets 400 (RFC 9112 3.2). Why a request was refused is a `server_errc`
// (its status, and the name its access record ends with: "... 400 (invalid_host)").
//
// Against slow and greedy clients (server_options): the header must be
// complete within header_timeout of the request's first byte (blank lines
// before it count), a body within body_timeout, a response be written within
// write_timeout; a connection cut at a deadline with response bytes the peer
// has not read is reset, so the kernel drops them. Connections are capped to
// what RLIMIT_NOFILE leaves after a reserve (logged at start), so past the cap
// clients get 503 instead of waiting in the backlog. Request bodies grow as
// they arrive and the bytes they hold in the whole process are bounded
// (max_body_bytes_in_flight).
//
// HTTPS: with server_options::tls (tls.hpp), every listener of the server,
// TCP and in-memory, speaks TLS; the handshake must be over within
// header_timeout of the accept. A plain-HTTP request to such a port is
// answered 400 in plain text, as nginx does. WebSocket routes are then
// reached as wss://.
//
// Graceful shutdown stops accepting, closes idle keep-alive connections, lets
// requests in flight finish (their responses say `Connection: close`) and,
// past the grace period, cancels what is left.
//
// Owned by the caller; lives on its loop's thread and is not thread-safe.
// The loop and the application must outlive it.
#pragma once

#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/tls.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace loupe {

class application;
class loop;

/// Why the server refused a request before it reached the application. The
/// answer's status follows from it (status_code()); the access-log record
/// of a refusal ends with its name, e.g. "... 400 (invalid_host)".
enum class server_errc {
  malformed_request = 1,        ///< 400: not valid HTTP/1.x
  invalid_host,                 ///< 400: no Host (HTTP/1.1), two, or an invalid one
  bad_transfer_encoding,        ///< 400: Transfer-Encoding not ending with chunked
  invalid_target,               ///< 400: e.g. invalid percent-encoding in the path
  headers_too_large,            ///< 431: past max_header_bytes
  body_too_large,               ///< 413: past client_max_size or max_body_bytes_in_flight
  unsupported_transfer_coding,  ///< 501: a coding other than chunked
  no_room_for_body,             ///< 503: the bodies in flight left no room in time
  too_many_connections,         ///< 503: past max_connections or the descriptor cap
};
const std::error_category& server_category() noexcept;  ///< "loupe.server"
std::error_code make_error_code(server_errc e) noexcept;
/// The HTTP status a refusal is answered with (400, 413, 431, 501, 503).
unsigned status_code(server_errc e) noexcept;
/// "invalid_host", …: the name in logs.
std::string_view to_string(server_errc e) noexcept;

struct server_options {
  /// Connections served at once; past it new ones get 503 and are closed.
  /// Whatever it says, all the servers of the process together serve no more
  /// than RLIMIT_NOFILE allows less a reserve (1/8, 32 to 256 descriptors).
  std::size_t max_connections = 10000;
  /// From a connection's first byte (or the end of the previous response with
  /// pipelined data waiting) to the end of the request headers.
  std::chrono::milliseconds header_timeout{15000};
  /// How long an idle keep-alive connection is kept (aiohttp: 75 s).
  std::chrono::milliseconds keepalive_timeout{75000};
  /// From the end of the request headers to the end of the body (a slow
  /// body, e.g. slowhttptest -B, is cut off here).
  std::chrono::milliseconds body_timeout{60000};
  /// Writing one response, from its first byte to its last (a client that
  /// reads too slowly, e.g. slowhttptest -X, is cut off here).
  std::chrono::milliseconds write_timeout{60000};
  /// Request line plus headers; past it the client gets 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// Request body bytes held at once by all the requests of the process
  /// being read or handled (each body is also bounded by the application's
  /// client_max_size). A body with a Content-Length is admitted by its length
  /// before it is read; one that does not fit waits for room, unread, until
  /// the body timeout (then 503), and one larger than this gets 413. A chunked
  /// body is counted as it arrives; past the bound, 503. Bodies grow as their
  /// bytes arrive: a declared Content-Length allocates nothing up front.
  std::size_t max_body_bytes_in_flight = 256 * 1024 * 1024;
  /// The `Server` header; empty for none.
  std::string server_header = "loupe";
  /// SO_REUSEPORT on the listening socket, so that several loops can accept
  /// on the same port (set by app_runner for worker loops).
  bool reuse_port = false;
  /// One "loupe.access" log record per request: method, path, route, status,
  /// response bytes, duration, remote address, user agent, request id.
  bool access_log = true;
  /// Cancel a handler whose client has closed the connection (aiohttp 3.9's
  /// handler_cancellation, off by default there too). Either way the request
  /// is recorded as the client's: status 499 "client closed request" in the
  /// access record and the metrics, "client gone" in the console, and no
  /// response is written. The server notices within one sweep of its
  /// deadlines (a tenth of the shortest timeout, 10 ms to 1 s);
  /// request::client_gone() asks the socket at once.
  bool cancel_on_client_gone = false;
  /// HTTPS: the certificate and TLS settings (tls.hpp), shared with other
  /// servers; null for plain HTTP.
  std::shared_ptr<tls_context> tls;
};

class server {
 public:
  server(loop& l, application& app, server_options opts = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and starts accepting. Freezes the application. `host` is an IP
  /// address or a name to resolve. Throws boost::system::system_error naming
  /// the address if it cannot listen there.
  boost::asio::ip::tcp::endpoint listen(std::string_view host, unsigned short port);

  /// Starts accepting on the in-memory network under `name` (see
  /// memory_network.hpp): clients of this process reach it as
  /// http://NAME/... Freezes the application. Throws
  /// boost::system::system_error (address_in_use) if the name is taken.
  memory_endpoint listen_memory(std::string name);

  /// The endpoints being listened on.
  std::vector<boost::asio::ip::tcp::endpoint> endpoints() const;
  std::vector<memory_endpoint> memory_endpoints() const;

  /// Graceful shutdown (see above). Completes when every connection is closed.
  awaitable<void> shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  /// Open connections.
  std::size_t connection_count() const noexcept;
  /// One open connection, as the test kit's leak check reports it.
  struct connection_info {
    boost::asio::ip::tcp::endpoint remote;
    bool idle = false;       ///< waiting for a request (keep-alive)
    bool in_handler = false; ///< a request's handler is running
    bool websocket = false;
    bool memory = false;     ///< on the in-memory network (`remote` is empty)
  };
  std::vector<connection_info> connections() const;
  /// Requests whose handlers are running.
  std::size_t requests_in_flight() const noexcept;
  /// Requests answered since the server started (readable from any thread).
  std::uint64_t requests_served() const noexcept;
  /// Request body bytes accounted for now by the requests of every server
  /// in the process: declared lengths admitted, chunked bytes received (see
  /// max_body_bytes_in_flight). Thread-safe.
  static std::size_t body_bytes_in_flight() noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace loupe

template <>
struct std::is_error_code_enum<loupe::server_errc> : std::true_type {};
