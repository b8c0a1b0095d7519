// loupe/runtime/router.hpp — routes: method + path template -> handler.
//
//   router.add(http::verb::get, "/", index);                         // static path
//   router.add(http::verb::get, "/users/{id}", show_user, "user");   // {name}: one segment
//   router.add(http::verb::get, "/files/{path:.+}", send_file);      // {name:regex}
//   router.url_for("user", {{"id", "42"}});                           // "/users/42"
//
// Matching follows aiohttp: static paths by exact lookup, then templates in the
// order they were added; the first route whose path and method match wins. A
// path that matches only under other methods gives 405 with `Allow`; a GET
// route also answers HEAD. A `{name}` part matches `[^{}/]+`; `{name:regex}`
// matches the regex (which may span '/').
//
// Routes are added before the application is frozen (at start-up); matching
// afterwards is read-only and may run on any number of threads.
#pragma once

#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/beast/http/verb.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loupe {

/// A request handler.
using handler = std::function<awaitable<response>(request&)>;

/// One registered route.
struct route {
  boost::beast::http::verb method;  ///< verb::unknown with `method_name` for extension methods
  std::string method_name;          ///< "GET", "PURGE", ...
  std::string path_template;        ///< as given, with the mount prefix once mounted
  std::string name;                 ///< empty when unnamed
  loupe::handler handler;
  application* owner = nullptr;     ///< set when the owning application freezes
};

/// Parameters for URL building.
using url_params = std::vector<std::pair<std::string, std::string>>;

class router {
 public:
  router();
  ~router();
  router(router&&) noexcept;
  router& operator=(router&&) noexcept;

  /// Adds a route. Throws std::invalid_argument for a malformed template
  /// (no leading '/', unbalanced braces, a bad regex, a repeated parameter)
  /// or a name already used by another route of this router.
  route& add(boost::beast::http::verb method, std::string_view path_template, handler h, std::string name = {});
  /// Adds a route for an extension method such as "PURGE".
  route& add(std::string_view method_name, std::string_view path_template, handler h, std::string name = {});

  /// The URL path of the named route with its parameters filled in and
  /// percent-encoded, plus an optional query string. Throws
  /// std::invalid_argument for an unknown name, a missing parameter or a value
  /// the parameter's pattern does not match.
  std::string url_for(std::string_view name, const url_params& params = {}, const url_params& query = {}) const;

  /// The result of matching a request line.
  struct match_result {
    enum class kind { found, not_found, method_not_allowed };
    kind outcome = kind::not_found;
    /// When found; when method_not_allowed, the first route whose path
    /// matched (its template labels the 405 in the access log and metrics).
    const loupe::route* route = nullptr;
    loupe::match_info params;             ///< when found
    std::vector<std::string> allowed;     ///< {"GET", "HEAD"}, sorted, when method_not_allowed
    /// The `Allow` header's value: "GET, HEAD".
    std::string allow_header() const;
  };

  /// Matches a decoded path. Read-only: safe from any number of threads.
  match_result match(boost::beast::http::verb method, std::string_view method_name, std::string_view path) const;

  /// Every route, in the order added.
  const std::vector<std::unique_ptr<loupe::route>>& routes() const noexcept;

  /// Prepends `prefix` to every template (used when a sub-application is mounted).
  void set_prefix(std::string_view prefix);
  const std::string& prefix() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe
