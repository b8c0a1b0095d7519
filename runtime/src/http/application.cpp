// The application: routing across sub-applications, the middleware onion, hooks.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/executor.hpp>
#include <loupe/runtime/log.hpp>

#include "core/exceptions.hpp"
#include "observe/http_metrics.hpp"
#include "core/access.hpp"
#include "core/task_record.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <stdexcept>

namespace loupe {

namespace http = boost::beast::http;

awaitable<response> next_handler::operator()(request& req) const {
  if (first_ == last_) return (*final_)(req);
  return (*first_)(req, next_handler(first_ + 1, last_, final_));
}

namespace detail {

std::any* find_state(const application* app, const void* key) noexcept {
  for (auto* a = const_cast<application*>(app); a; a = a->parent_) {
    auto it = a->state_.find(key);
    if (it != a->state_.end()) return &it->second;
  }
  return nullptr;
}

void throw_missing_state(const std::string& key_name) {
  throw std::out_of_range("application state has no value for key '" + key_name + "'");
}

}  // namespace detail

application::application() : metrics_(std::make_shared<detail::app_metrics>()) {}
application::~application() = default;

application::application(application&& o) noexcept { *this = std::move(o); }

application& application::operator=(application&& o) noexcept {
  router_ = std::move(o.router_);
  middlewares_ = std::move(o.middlewares_);
  chain_ = std::move(o.chain_);
  on_startup_ = std::move(o.on_startup_);
  on_shutdown_ = std::move(o.on_shutdown_);
  on_cleanup_ = std::move(o.on_cleanup_);
  subapps_ = std::move(o.subapps_);
  state_ = std::move(o.state_);
  parent_ = o.parent_;
  prefix_ = std::move(o.prefix_);
  mount_point_ = std::move(o.mount_point_);
  client_max_size_ = o.client_max_size_;
  frozen_ = o.frozen_;
  metrics_ = std::move(o.metrics_);
  // Children point at their parent, which has moved.
  for (auto& s : subapps_) s->parent_ = this;
  return *this;
}

namespace {
void check_not_frozen(bool frozen, const char* what) {
  if (frozen) throw std::logic_error(std::string("application: cannot ") + what + " after the application has started");
}
}  // namespace

route& application::add_route(http::verb method, std::string_view path, handler h, std::string name) {
  check_not_frozen(frozen_, "add a route");
  return router_.add(method, path, std::move(h), std::move(name));
}
route& application::get(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::get, p, std::move(h), std::move(n));
}
route& application::post(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::post, p, std::move(h), std::move(n));
}
route& application::put(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::put, p, std::move(h), std::move(n));
}
route& application::patch(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::patch, p, std::move(h), std::move(n));
}
route& application::del(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::delete_, p, std::move(h), std::move(n));
}
route& application::head(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::head, p, std::move(h), std::move(n));
}
route& application::options(std::string_view p, handler h, std::string n) {
  return add_route(http::verb::options, p, std::move(h), std::move(n));
}

application& application::add_subapp(std::string_view prefix, application sub) {
  check_not_frozen(frozen_, "add a sub-application");
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() == '/' ||
      prefix.find_first_of("{}") != std::string_view::npos)
    throw std::invalid_argument("add_subapp: prefix '" + std::string(prefix) +
                                "' must start with '/', not end with '/', and have no parameters");
  if (sub.parent_) throw std::logic_error("add_subapp: the application is already mounted");
  auto owned = std::make_unique<application>(std::move(sub));
  // What the sub-application (and those mounted in it) registered so far is
  // scraped with the root's registry; from now on its metrics() is the root's.
  auto& root_metrics = *metrics_internals();
  root_metrics.mounted.push_back(owned->metrics_->registry);
  root_metrics.mounted.insert(root_metrics.mounted.end(), owned->metrics_->mounted.begin(),
                              owned->metrics_->mounted.end());
  owned->parent_ = this;
  owned->mount_point_ = std::string(prefix);
  owned->prefix_ = prefix_ + owned->mount_point_;
  owned->router_.set_prefix(owned->prefix_);
  owned->reprefix_children();
  application* raw = owned.get();
  subapps_.push_back(std::move(owned));
  on_startup_.emplace_back(raw);
  on_shutdown_.emplace_back(raw);
  on_cleanup_.emplace_back(raw);
  return *raw;
}

void application::reprefix_children() {
  // A sub-application mounted inside `sub` before `sub` itself was mounted
  // gets the outer prefix too: its own prefix is kept as the last part.
  for (auto& s : subapps_) {
    s->prefix_ = prefix_ + s->mount_point_;
    s->router_.set_prefix(s->prefix_);
    s->reprefix_children();
  }
}

std::string application::url_for(std::string_view name, const url_params& params, const url_params& query) const {
  return router_.url_for(name, params, query);
}

const std::shared_ptr<detail::app_metrics>& application::metrics_internals() {
  application* root = this;
  while (root->parent_) root = root->parent_;
  return root->metrics_;
}

prometheus::Registry& application::metrics() { return *metrics_internals()->registry; }

std::string metrics::exposition(application& app) { return detail::exposition(*detail::access::metrics(app)); }

route& application::add_metrics_route(std::string_view path) {
  auto registry = metrics_internals();
  // A scrape serializes every series (a few ms per thousand routes): it runs
  // on its own thread so that the loop is not blocked meanwhile. Scrapes
  // arriving while four wait get 503.
  auto scraper = std::make_shared<executor>(1, 4);
  return get(path, [registry, scraper](request&) -> awaitable<response> {
    std::string text;
    try {
      // Named, not a temporary inside the co_await (see executor.hpp).
      auto job = [registry] { return detail::exposition(*registry); };
      text = co_await scraper->run(std::move(job));
    } catch (const executor_full&) {
      throw http_service_unavailable("too many scrapes in progress");
    }
    response res = response::text(std::move(text));
    res.set_header("Content-Type", metrics::content_type);
    co_return res;
  });
}

void application::use(middleware m) {
  check_not_frozen(frozen_, "add a middleware");
  if (!m) throw std::invalid_argument("use: empty middleware");
  middlewares_.push_back(std::move(m));
}
void application::on_startup(app_hook h) {
  check_not_frozen(frozen_, "add a hook");
  on_startup_.emplace_back(std::move(h));
}
void application::on_shutdown(app_hook h) {
  check_not_frozen(frozen_, "add a hook");
  on_shutdown_.emplace_back(std::move(h));
}
void application::on_cleanup(app_hook h) {
  check_not_frozen(frozen_, "add a hook");
  on_cleanup_.emplace_back(std::move(h));
}

void application::freeze() {
  if (frozen_) return;
  chain_ = parent_ ? parent_->chain_ : std::vector<middleware>{};
  chain_.insert(chain_.end(), middlewares_.begin(), middlewares_.end());
  for (auto& r : router_.routes()) r->owner = this;
  frozen_ = true;
  for (auto& s : subapps_) s->freeze();
}

awaitable<void> application::run_hooks(std::vector<hook_entry>& hooks, const char* phase) {
  for (auto& h : hooks) {
    if (auto* fn = std::get_if<app_hook>(&h)) {
      co_await (*fn)(*this);
    } else {
      application* sub = std::get<application*>(h);
      if (std::string_view(phase) == "startup") co_await sub->startup();
      else if (std::string_view(phase) == "shutdown") co_await sub->shutdown();
      else co_await sub->cleanup();
    }
  }
}

awaitable<void> application::startup() {
  freeze();
  co_await run_hooks(on_startup_, "startup");
}
awaitable<void> application::shutdown() { co_await run_hooks(on_shutdown_, "shutdown"); }
awaitable<void> application::cleanup() { co_await run_hooks(on_cleanup_, "cleanup"); }

namespace {

const handler not_found_handler = [](request&) -> awaitable<response> {
  throw http_not_found();
  co_return response{};
};

}  // namespace

void application::resolve(const request& req, router::match_result& found, application*& owner,
                          router::match_result& not_allowed) {
  auto m = router_.match(req.method(), req.method_name(), req.path());
  if (m.outcome == router::match_result::kind::found) {
    found = std::move(m);
    owner = this;
    return;
  }
  if (m.outcome == router::match_result::kind::method_not_allowed) {
    // Merged over the routers of sub-applications: sorted and unique.
    auto& all = not_allowed.allowed;
    const auto mid = all.insert(all.end(), m.allowed.begin(), m.allowed.end());
    std::inplace_merge(all.begin(), mid, all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    if (!not_allowed.route) not_allowed.route = m.route;
  }
  const std::string& path = req.path();
  for (auto& s : subapps_) {
    const std::string& p = s->prefix_;
    if (path.size() >= p.size() && path.compare(0, p.size(), p) == 0 &&
        (path.size() == p.size() || path[p.size()] == '/')) {
      s->resolve(req, found, owner, not_allowed);
      if (owner) return;
    }
  }
}

const std::string* application::route_template_of(const request& req) {
  router::match_result m;
  application* owner = nullptr;
  router::match_result not_allowed;
  resolve(req, m, owner, not_allowed);
  const route* r = owner ? m.route : not_allowed.route;
  return r ? &r->path_template : nullptr;
}

awaitable<response> application::handle(request& req) {
  freeze();
  const auto cs = co_await boost::asio::this_coro::cancellation_state;
  router::match_result m;
  application* owner = nullptr;
  router::match_result not_allowed;
  std::exception_ptr error;
  try {
    resolve(req, m, owner, not_allowed);
  } catch (...) {
    error = std::current_exception();  // e.g. a route regex past Boost.Regex's complexity limit
  }

  // A 405 is the route's whose path matched: recorded under its template.
  const route* labelled = owner ? m.route : not_allowed.route;
  detail::set_request_info({std::string(req.method_name()), labelled ? labelled->path_template : std::string(),
                            std::string(req.target()), req.request_id()});
  const handler* final = &not_found_handler;
  handler method_not_allowed;
  if (owner) {
    detail::access::set_match(req, owner, &m.route->path_template, &m.route->name, std::move(m.params));
    final = &m.route->handler;
  } else {
    if (labelled) detail::access::set_match(req, this, &labelled->path_template, &labelled->name, {});
    else detail::access::set_match(req, this, nullptr, nullptr, {});
    if (!not_allowed.allowed.empty()) {
      method_not_allowed = [list = not_allowed.allow_header()](request&) -> awaitable<response> {
        throw http_method_not_allowed(list);
        co_return response{};
      };
      final = &method_not_allowed;
    }
  }
  const auto& chain = (owner ? owner : this)->chain_;
  response res;
  if (!error) try {
      res = co_await next_handler(chain.data(), chain.data() + chain.size(), final)(req);
    } catch (const http_error& e) {
      res = response(e);
    } catch (...) {
      error = std::current_exception();
    }
  if (error) {
    // A cancelled request is not a handler bug: let the caller see the cancellation.
    if (cs.cancelled() != boost::asio::cancellation_type::none) std::rethrow_exception(error);
    log::runtime().error("unhandled exception in handler for {} {} (route '{}'): {}", req.method_name(), req.target(),
                         req.route(), detail::describe(error));
    res = response(http_internal_server_error());
  }
  co_return res;
}

}  // namespace loupe
