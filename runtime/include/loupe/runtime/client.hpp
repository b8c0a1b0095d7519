// loupe/runtime/client.hpp — the HTTP client session (aiohttp's ClientSession).
//
//   loupe::client_session http(loop);
//   auto res = co_await http.get("http://127.0.0.1:8080/json");
//   auto page = co_await http.get("https://example.org/");   // verified against the system CAs
//   boost::json::value v = res.json();
//   loupe::request_options item{.json = {{"name", "x"}}};
//   auto created = co_await http.post("http://api.test/items", std::move(item));
//
// (The options in a statement of their own: GCC 11.2-12 reject any braced
// list inside a co_await expression, "array used as initializer", so
// `co_await http.post(url, {.json = {{"name", "x"}}})` compiles with clang and
// GCC 13 only. tests/runtime/banner_examples_test.cpp compiles the lines above.)
//   co_await http.close();
//
// Per host and port, a pool of keep-alive connections is reused. Every request
// runs as a named task ("http.client", doing "GET http://…") on the session's
// loop, spawned at the caller's `co_await`: the console's `ps` and `where`
// name that file:line as the awaiting task's wait, and the request task's. Errors are
// client_error exceptions with a code (connection refused, timeout, bad
// response, too many redirects, ...): a request never hangs past its timeout.
// Redirects (301, 302, 303, 307, 308) are followed up to `max_redirects`.
// `stream()` returns after the headers and reads the body piece by piece.
// Cookies from Set-Cookie are kept in the session's jar and sent back to the
// hosts and paths they belong to (aiohttp's CookieJar), redirects included.
//
// `map_host(loop, "pong.test", endpoint)` sends every connection this loop's
// sessions and WebSocket clients make to `pong.test` (any port) to that
// endpoint, without DNS: the test kit uses it to put several servers behind
// names in one loop. A host some server listens under on the in-memory
// network (server::listen_memory, memory_network.hpp) is reached there,
// without TCP, unless map_host says otherwise; map_host can also point a
// host at an in-memory name.
//
// Owned by one loop and used from its thread. Not thread-safe.
#pragma once

#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/tls.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_ref.hpp>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace loupe {

class loop;

/// Why a client request failed.
enum class client_errc {
  invalid_url = 1,
  connection_failed,   ///< refused, unreachable, or the name did not resolve
  timeout,             ///< connect or request timeout
  bad_response,        ///< the peer did not speak valid HTTP or closed mid-response
  too_many_redirects,
  response_too_large,
  session_closed,
  certificate_untrusted,   ///< https: not signed by a trusted CA (or self-signed)
  certificate_expired,     ///< https: expired, or not valid yet
  certificate_wrong_host,  ///< https: valid, but for another host name or address
  tls_handshake_failed,    ///< https: no common protocol or cipher, not TLS, cut off mid-handshake
};
const std::error_category& client_category() noexcept;
std::error_code make_error_code(client_errc e) noexcept;

class client_error : public std::system_error {
 public:
  client_error(client_errc e, const std::string& what) : std::system_error(make_error_code(e), what) {}
};

struct client_options {
  std::chrono::milliseconds connect_timeout{10000};
  /// One request, redirects included; zero: none (the connect timeout still holds).
  std::chrono::milliseconds request_timeout{60000};
  std::size_t max_redirects = 10;
  std::size_t max_idle_per_host = 32;
  std::chrono::milliseconds idle_timeout{15000};     ///< a pooled connection older than this is dropped
  std::size_t max_response_bytes = 64 * 1024 * 1024;
  std::string user_agent = "loupe";
  /// Keep cookies from responses and send them back (the session's jar).
  bool cookies = true;
  /// https: what is trusted (the system's CA store unless told), a client
  /// certificate (tls.hpp).
  client_tls_options tls;
};

/// A cookie in a session's jar.
struct client_cookie {
  std::string name;
  std::string value;
  std::string domain;   ///< the host it came from, or its Domain attribute
  bool host_only = true;  ///< no Domain attribute: only `domain` itself, not its subdomains
  std::string path = "/";
  bool secure = false;  ///< sent only over https (and to loopback hosts)
  std::optional<std::chrono::system_clock::time_point> expires;  ///< none: a session cookie
};

/// Optional parts of one request.
/// A JSON request body. `{.json = {{"name", "x"}}}` is the object
/// {"name": "x"}, by Boost.JSON's rule for a list of key-value pairs (as
/// `boost::json::value v = {{"name", "x"}}` is); a std::optional<value> here
/// made that the array ["name", "x"]. Any boost::json::value converts too.
class json_body {
 public:
  json_body() = default;
  json_body(std::initializer_list<boost::json::value_ref> init) : v_(boost::json::value(init)) {}
  /// Anything a boost::json::value is made from: a value, object, array, string, number.
  template <class T>
    requires std::is_constructible_v<boost::json::value, T&&> && (!std::is_same_v<std::remove_cvref_t<T>, json_body>)
  json_body(T&& v) : v_(boost::json::value(std::forward<T>(v))) {}  // NOLINT(google-explicit-constructor)
  explicit operator bool() const noexcept { return v_.has_value(); }
  const boost::json::value& operator*() const { return *v_; }
  const boost::json::value* operator->() const { return &*v_; }

 private:
  std::optional<boost::json::value> v_;
};

struct request_options {
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> query;  ///< appended, percent-encoded
  std::optional<std::string> body;                         ///< raw body (Content-Type from headers)
  json_body json;                                          ///< JSON body
  std::vector<std::pair<std::string, std::string>> form;   ///< application/x-www-form-urlencoded
  std::optional<std::chrono::milliseconds> timeout;        ///< overrides request_timeout (zero: none)
  bool follow_redirects = true;
};

class client_response {
 public:
  boost::beast::http::status status() const noexcept { return status_; }
  unsigned status_code() const noexcept { return static_cast<unsigned>(status_); }
  std::optional<std::string_view> header(std::string_view name) const;
  const boost::beast::http::fields& headers() const noexcept { return headers_; }
  const std::string& text() const noexcept { return body_; }
  /// The body as JSON, parsed once (later calls return the same value); throws
  /// client_error(bad_response) if it is not JSON. The reference lives as long
  /// as this response: keep the response, not only the reference, of a
  /// `co_await http.get(...)`.
  const boost::json::value& json() const;
  /// The URL that answered (after redirects).
  const std::string& url() const noexcept { return url_; }
  /// Redirects followed to get here.
  std::size_t redirects() const noexcept { return redirects_; }

 private:
  friend class client_session;
  boost::beast::http::status status_ = boost::beast::http::status::unknown;
  boost::beast::http::fields headers_;
  std::string body_;
  std::string url_;
  std::size_t redirects_ = 0;
  mutable std::optional<boost::json::value> json_;  // parsed by the first json()
};

/// A response whose body is read piece by piece (client_session::stream).
class client_stream {
 public:
  struct impl;
  explicit client_stream(std::unique_ptr<impl> i);
  ~client_stream();
  boost::beast::http::status status() const noexcept;
  unsigned status_code() const noexcept { return static_cast<unsigned>(status()); }
  std::optional<std::string_view> header(std::string_view name) const;
  /// The next piece of the body (at most 64 KiB), or std::nullopt at its end.
  /// Each read has the session's request timeout.
  awaitable<std::optional<std::string>> read_chunk(std::source_location at = std::source_location::current());

 private:
  std::unique_ptr<impl> impl_;
};

class client_session {
 public:
  explicit client_session(loop& l, client_options opts = {});
  ~client_session();
  client_session(const client_session&) = delete;
  client_session& operator=(const client_session&) = delete;

  awaitable<client_response> request(boost::beast::http::verb method, std::string url, request_options opts = {},
                                     std::source_location at = std::source_location::current());
  awaitable<client_response> get(std::string url, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> post(std::string url, request_options opts = {},
                                  std::source_location at = std::source_location::current());
  awaitable<client_response> put(std::string url, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> patch(std::string url, request_options opts = {},
                                   std::source_location at = std::source_location::current());
  awaitable<client_response> del(std::string url, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> head(std::string url, request_options opts = {},
                                  std::source_location at = std::source_location::current());

  /// Sends a request and returns once the response headers have arrived; the
  /// body is then read with read_chunk(). Redirects are not followed.
  awaitable<std::unique_ptr<client_stream>> stream(boost::beast::http::verb method, std::string url,
                                                   request_options opts = {},
                                                   std::source_location at = std::source_location::current());

  /// The cookies in the jar now (expired ones dropped).
  std::vector<client_cookie> cookies() const;
  /// Adds or replaces (same name, domain and path) a cookie.
  void set_cookie(client_cookie c);
  void clear_cookies();

  /// Closes pooled connections; later requests fail with session_closed.
  awaitable<void> close();

  /// Connections opened so far, and idle ones in the pool now (for tests and metrics).
  std::size_t connections_opened() const noexcept;
  std::size_t idle_connections() const noexcept;

  struct impl;  // shared with client_stream

 private:
  std::shared_ptr<impl> impl_;
};

/// Connections to `host` (any port) by client sessions and WebSocket clients
/// on loop `l` go to `to`, without DNS. Replaces an earlier mapping of `host`.
/// Call on the loop's thread (or before it runs).
void map_host(loop& l, std::string host, boost::asio::ip::tcp::endpoint to);
/// ... or to the server listening under `to.name` on the in-memory network.
void map_host(loop& l, std::string host, memory_endpoint to);
void unmap_host(loop& l, std::string_view host);

}  // namespace loupe

template <>
struct std::is_error_code_enum<loupe::client_errc> : std::true_type {};
