// loupe/runtime/application.hpp — the application: routes, middlewares, hooks, state.
//
//   loupe::application app;
//   app.get("/", [](loupe::request&) -> loupe::awaitable<loupe::response> {
//     co_return loupe::response::text("Hello, world!");
//   });
//   app.use([](loupe::request& req, loupe::next_handler next) -> loupe::awaitable<loupe::response> {
//     auto res = co_await next(req);                  // the onion: wrap the rest
//     res.set_header("X-Frame-Options", "DENY");
//     co_return res;
//   });
//   app.on_startup([](loupe::application& a) -> loupe::awaitable<void> { co_return; });
//   auto& admin = app.add_subapp("/admin", loupe::application{});
//   app.add_static("/static", "./public");
//   return loupe::run_main(app, argc, argv);
//
// Middlewares run in the order added, the first outermost; a sub-application's
// middlewares run inside its parent's. A middleware short-circuits by returning
// a response without calling `next`. Hooks run in the order added; hooks of a
// sub-application run where `add_subapp` was called in the parent's order.
//
// Ownership and threads: the application is configured on one thread before
// it starts; `freeze()` (called by the server) makes routes and middlewares
// read-only. State values are shared by every loop that serves the application
// and must be safe for that (see app_key.hpp).
#pragma once

#include <loupe/runtime/app_key.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/router.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/websocket.hpp>

#include <any>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace prometheus {
class Registry;
}

namespace loupe {

namespace detail {
struct access;
struct app_metrics;
}

class next_handler;
/// Middleware: wraps the rest of the chain (the next middlewares, then the handler).
using middleware = std::function<awaitable<response>(request&, next_handler)>;
/// Start-up, shutdown and clean-up hook.
using app_hook = std::function<awaitable<void>(application&)>;

/// The rest of the middleware chain, as given to a middleware.
class next_handler {
 public:
  next_handler(const middleware* first, const middleware* last, const handler* final) noexcept
      : first_(first), last_(last), final_(final) {}
  awaitable<response> operator()(request& req) const;

 private:
  const middleware* first_;
  const middleware* last_;
  const handler* final_;
};

/// Options for `application::add_static`.
struct static_options {
  bool follow_symlinks = false;  ///< serve symlinks that point outside the directory
  std::string name;              ///< route name for url_for("name", {{"filename", ...}})
};

class application {
 public:
  application();
  ~application();
  application(application&&) noexcept;
  application& operator=(application&&) noexcept;

  // -- state -------------------------------------------------------------------
  /// Stores `value` for `key` (move-only types too: the value is held
  /// through a shared_ptr, so std::any's copyability is not asked of it).
  template <class T>
  void set(const app_key<T>& key, T value) {
    state_[&key] = std::any(std::make_shared<T>(std::move(value)));
  }
  /// The value for `key` in this application only; throws std::out_of_range if absent.
  template <class T>
  T& get(const app_key<T>& key) {
    if (T* v = find(key)) return *v;
    detail::throw_missing_state(key.name());
  }
  template <class T>
  T* find(const app_key<T>& key) noexcept {
    auto it = state_.find(&key);
    if (it == state_.end()) return nullptr;
    auto* held = std::any_cast<std::shared_ptr<T>>(&it->second);
    return held ? held->get() : nullptr;
  }

  // -- routes ------------------------------------------------------------------
  loupe::router& router() noexcept { return router_; }
  route& get(std::string_view path, handler h, std::string name = {});
  route& post(std::string_view path, handler h, std::string name = {});
  route& put(std::string_view path, handler h, std::string name = {});
  route& patch(std::string_view path, handler h, std::string name = {});
  route& del(std::string_view path, handler h, std::string name = {});
  route& head(std::string_view path, handler h, std::string name = {});
  route& options(std::string_view path, handler h, std::string name = {});
  route& add_route(boost::beast::http::verb method, std::string_view path, handler h, std::string name = {});
  /// Serves files under `directory` at `prefix/<filename>` (GET and HEAD).
  /// Paths that would leave the directory ("..", encoded or not) get 404.
  /// Throws std::invalid_argument if `directory` is not a directory.
  route& add_static(std::string_view prefix, const std::filesystem::path& directory, static_options opts = {});
  /// A WebSocket endpoint at `path` (GET with Upgrade; anything else gets 426).
  /// The handler runs for the life of the connection (see websocket.hpp).
  route& websocket(std::string_view path, websocket_handler h, websocket_options opts = {}, std::string name = {});
  /// Mounts `sub` under `prefix` (e.g. "/admin") and returns it.
  application& add_subapp(std::string_view prefix, application sub);
  /// URL of a named route of this application (its mount prefix included).
  std::string url_for(std::string_view name, const url_params& params = {}, const url_params& query = {}) const;

  // -- middlewares and hooks ---------------------------------------------------
  void use(middleware m);
  void on_startup(app_hook h);
  void on_shutdown(app_hook h);
  void on_cleanup(app_hook h);

  // -- limits ------------------------------------------------------------------
  /// The largest request body accepted; past it the client gets 413. 1 MiB.
  std::size_t client_max_size() const noexcept { return client_max_size_; }
  void set_client_max_size(std::size_t bytes) noexcept { client_max_size_ = bytes; }

  // -- metrics (see metrics.hpp) ----------------------------------------------
  /// The Prometheus registry of the root application: the server's HTTP
  /// metrics live there, and the application registers its own. A
  /// sub-application's metrics() is its root's once mounted; what it
  /// registered before `add_subapp` is scraped with the root's registry too.
  prometheus::Registry& metrics();
  /// Adds `GET path` serving the text exposition of `metrics()` and the
  /// process-wide series (what Prometheus scrapes).
  route& add_metrics_route(std::string_view path = "/metrics");

  // -- lifecycle (called by the server / run_app / the test kit) ---------------
  /// Validates and makes the route table and middlewares read-only. Idempotent.
  void freeze();
  bool frozen() const noexcept { return frozen_; }
  awaitable<void> startup();
  awaitable<void> shutdown();
  awaitable<void> cleanup();

  /// Routes `req`, runs the middlewares and the handler, and turns errors into
  /// responses: an http_error becomes its response; any other exception a 500
  /// and an ERROR log record. Freezes the application if needed.
  awaitable<response> handle(request& req);

  application* parent() const noexcept { return parent_; }
  const std::string& prefix() const noexcept { return prefix_; }

 private:
  friend std::any* detail::find_state(const application*, const void*) noexcept;
  friend struct detail::access;
  /// The server's families (shared so that connections outliving the
  /// application can still update them).
  const std::shared_ptr<detail::app_metrics>& metrics_internals();
  using hook_entry = std::variant<app_hook, application*>;
  awaitable<void> run_hooks(std::vector<hook_entry>& hooks, const char* phase);
  void resolve(const request& req, router::match_result& found, application*& owner, router::match_result& not_allowed);
  /// The template of the route `req` would reach (or whose path it matches,
  /// for a 405), owned by the route; null for none. For requests refused
  /// before their handler.
  const std::string* route_template_of(const request& req);
  void reprefix_children();

  loupe::router router_;
  std::vector<middleware> middlewares_;
  std::vector<middleware> chain_;  // parents' middlewares then ours; set by freeze()
  std::vector<hook_entry> on_startup_, on_shutdown_, on_cleanup_;
  std::vector<std::unique_ptr<application>> subapps_;
  std::unordered_map<const void*, std::any> state_;
  application* parent_ = nullptr;
  std::string prefix_;       // full prefix from the root, e.g. "/api/v1"
  std::string mount_point_;  // the part given to add_subapp, e.g. "/v1"
  std::size_t client_max_size_ = 1024 * 1024;
  bool frozen_ = false;
  std::shared_ptr<detail::app_metrics> metrics_;
};

}  // namespace loupe
