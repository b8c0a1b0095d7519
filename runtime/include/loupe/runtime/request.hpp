// loupe/runtime/request.hpp — an HTTP request as a handler sees it.
//
//   loupe::awaitable<loupe::response> show_user(loupe::request& req) {
//     auto id = req.match_info().get("id");          // from "/users/{id:\d+}"
//     auto page = req.query().get("page");           // ?page=2
//     auto token = req.cookie("session");
//     boost::json::value body = req.json();          // 400 if the body is not JSON
//     co_return loupe::response::json({{"id", id}});
//   }
//
// The body is read completely (up to the application's `client_max_size`,
// 1 MiB by default; past it the client gets 413) before the handler runs.
// A request belongs to the connection serving it; handlers get it by reference
// and must not keep it past their own completion. Not thread-safe.
#pragma once

#include <loupe/runtime/app_key.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <any>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loupe {

namespace detail {
struct access;
}

class application;
namespace detail {
std::any* find_state(const application* app, const void* key) noexcept;
[[noreturn]] void throw_missing_state(const std::string& key_name);
}  // namespace detail

/// An ordered list of (name, value) string pairs with lookup by name; the
/// shape of query parameters, match info and cookies.
class string_pairs {
 public:
  using value_type = std::pair<std::string, std::string>;
  using const_iterator = std::vector<value_type>::const_iterator;

  /// The first value for `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  /// The first value for `name`; throws std::out_of_range if absent.
  std::string_view at(std::string_view name) const;
  /// Every value for `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  const_iterator begin() const noexcept { return items_.begin(); }
  const_iterator end() const noexcept { return items_.end(); }
  void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<value_type> items_;
};

using query_params = string_pairs;
using match_info = string_pairs;

namespace detail {
/// `sent` when it is a sane request id, otherwise a fresh random one.
std::string accept_request_id(std::string_view sent);
}  // namespace detail

class request {
 public:
  using message_type = boost::beast::http::request<boost::beast::http::string_body>;
  using endpoint_type = boost::asio::ip::tcp::endpoint;

  /// Throws http_bad_request when the request target is not a valid URI.
  explicit request(message_type msg, endpoint_type remote = {}, endpoint_type local = {});

  // -- the request line ------------------------------------------------------
  boost::beast::http::verb method() const noexcept { return msg_.method(); }
  /// The method as sent ("GET", or an extension method such as "PURGE").
  std::string_view method_name() const noexcept { return msg_.method_string(); }
  /// The raw request target, e.g. "/search?q=a%20b".
  std::string_view target() const noexcept { return msg_.target(); }
  /// The percent-decoded path, e.g. "/files/a b.txt".
  const std::string& path() const noexcept { return path_; }
  /// The path exactly as sent, still percent-encoded.
  std::string_view raw_path() const noexcept { return target().substr(0, path_end_); }
  /// The raw query string without '?', still encoded.
  std::string_view query_string() const noexcept {
    return path_end_ < target().size() ? target().substr(path_end_ + 1) : std::string_view{};
  }
  /// Decoded query parameters ('+' is a space), in order.
  const query_params& query() const;
  unsigned version() const noexcept { return msg_.version(); }
  bool keep_alive() const noexcept { return msg_.keep_alive(); }

  // -- headers and cookies ---------------------------------------------------
  std::optional<std::string_view> header(std::string_view name) const;
  const boost::beast::http::fields& headers() const noexcept { return msg_.base(); }
  std::optional<std::string_view> cookie(std::string_view name) const;
  const string_pairs& cookies() const;

  // -- body ------------------------------------------------------------------
  /// The body as text (bytes as received; no charset conversion).
  const std::string& text() const noexcept { return msg_.body(); }
  /// The body as bytes.
  std::string_view bytes() const noexcept { return msg_.body(); }
  /// The body parsed as JSON; throws http_bad_request if it is not valid JSON.
  boost::json::value json() const;

  // -- routing ---------------------------------------------------------------
  /// The `{name}` parameters of the matched route.
  const string_pairs& match_info() const noexcept { return match_; }
  /// The matched route's template, e.g. "/users/{id}"; empty when unmatched.
  const std::string& route() const noexcept { return *route_; }
  /// The matched route's name; empty when it has none.
  const std::string& route_name() const noexcept { return *route_name_; }
  /// The application that owns the matched route (a sub-application when the
  /// route is mounted under one), or the root application.
  application& app() const;

  /// Application state for `key`, searched from `app()` up through its parents
  /// (aiohttp's `request.config_dict`). Throws std::out_of_range if absent.
  template <class T>
  T& config(const app_key<T>& key) const {
    if (std::any* v = detail::find_state(app_, &key)) return *std::any_cast<std::shared_ptr<T>&>(*v);
    detail::throw_missing_state(key.name());
  }

  // -- the connection --------------------------------------------------------
  const endpoint_type& remote() const noexcept { return remote_; }
  /// The peer's address as text, e.g. "127.0.0.1".
  std::string remote_address() const;
  const endpoint_type& local() const noexcept { return local_; }

  /// This request's id: the client's `X-Request-ID` when it is sane (1 to
  /// 128 printable ASCII characters, no spaces), otherwise 32 random hex
  /// digits. The server echoes it in the response's `X-Request-ID`, and every
  /// log record written while the request is served carries it.
  const std::string& request_id() const noexcept { return request_id_; }

  /// Whether the client has closed the connection (or reset it) while this
  /// request is being handled: asked of the socket on each call. False when
  /// it cannot tell (the client has already sent its next request), and for
  /// a request made in a test without a connection.
  bool client_gone() const noexcept;

  /// The underlying Beast message.
  message_type& native() noexcept { return msg_; }
  const message_type& native() const noexcept { return msg_; }

 private:
  friend struct detail::access;
  /// Set by the application when a route matches. `route` and `route_name`
  /// must outlive the request (they are the route's own).
  void set_match(application* app, const std::string* route, const std::string* route_name, loupe::match_info m);

  message_type msg_;
  endpoint_type remote_;
  endpoint_type local_;
  std::string request_id_;
  std::string path_;
  std::size_t path_end_ = 0;  // end of the path in target(); '?' or the end
  mutable std::optional<query_params> query_;
  mutable std::optional<string_pairs> cookies_;
  string_pairs match_;
  const std::string* route_;
  const std::string* route_name_;
  application* app_ = nullptr;
  // The connection's socket and its verdict while the handler runs (set by
  // the server; -1 / null otherwise).
  int socket_ = -1;
  bool* gone_ = nullptr;
};

}  // namespace loupe
