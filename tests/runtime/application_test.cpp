// Application: middleware onion, hooks, sub-applications, typed state, errors.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/run.hpp>

#include "support/handle.hpp"

#include <gtest/gtest.h>


namespace http = boost::beast::http;
using loupe::application;
using loupe::awaitable;
using loupe::next_handler;
using loupe::request;
using loupe::response;
using loupe::test_support::call;
using loupe::test_support::make_request;

namespace {

loupe::handler text(std::string s) {
  return [s](request&) -> awaitable<response> { co_return response::text(s); };
}

loupe::middleware tracer(std::vector<std::string>& log, std::string name) {
  return [&log, name](request& req, next_handler next) -> awaitable<response> {
    log.push_back(name + ">");
    auto res = co_await next(req);
    log.push_back("<" + name);
    res.add_header("X-Trace", name);
    co_return res;
  };
}

}  // namespace

TEST(Application, MiddlewaresRunAsAnOnionInOrder) {
  application app;
  std::vector<std::string> log;
  app.use(tracer(log, "outer"));
  app.use(tracer(log, "inner"));
  app.get("/", [&log](request&) -> awaitable<response> {
    log.push_back("handler");
    co_return response::text("ok");
  });
  auto res = call(app, http::verb::get, "/");
  EXPECT_EQ(res.body(), "ok");
  EXPECT_EQ(log, (std::vector<std::string>{"outer>", "inner>", "handler", "<inner", "<outer"}));
}

TEST(Application, MiddlewareCanShortCircuit) {
  application app;
  bool handler_ran = false;
  app.use([](request& req, next_handler next) -> awaitable<response> {
    if (!req.header("Authorization")) co_return loupe::http_unauthorized("token required");
    co_return co_await next(req);
  });
  app.get("/secret", [&](request&) -> awaitable<response> {
    handler_ran = true;
    co_return response::text("secret");
  });
  auto res = call(app, http::verb::get, "/secret");
  EXPECT_EQ(res.status(), http::status::unauthorized);
  EXPECT_EQ(res.body(), "401: token required");
  EXPECT_FALSE(handler_ran);
}

TEST(Application, MiddlewareSeesNotFoundAndCanReplaceIt) {
  application app;
  app.use([](request& req, next_handler next) -> awaitable<response> {
    try {
      co_return co_await next(req);
    } catch (const loupe::http_not_found&) {
    }
    co_return response::text("custom 404 page", http::status::not_found);
  });
  auto res = call(app, http::verb::get, "/missing");
  EXPECT_EQ(res.status(), http::status::not_found);
  EXPECT_EQ(res.body(), "custom 404 page");
}

TEST(Application, NotFoundAndMethodNotAllowed) {
  application app;
  app.get("/only-get", text("x"));
  auto nf = call(app, http::verb::get, "/nope");
  EXPECT_EQ(nf.status(), http::status::not_found);
  EXPECT_EQ(nf.body(), "404: Not Found");
  auto na = call(app, http::verb::post, "/only-get");
  EXPECT_EQ(na.status(), http::status::method_not_allowed);
  EXPECT_EQ(na.header("Allow").value_or(""), "GET, HEAD");
}

TEST(Application, HttpErrorsAsExceptionsAndValues) {
  application app;
  app.get("/throw", [](request&) -> awaitable<response> {
    throw loupe::http_bad_request("ms must be a number");
    co_return response();
  });
  app.get("/value", [](request&) -> awaitable<response> { co_return loupe::http_conflict(); });
  app.get("/redirect", [](request&) -> awaitable<response> {
    throw loupe::http_found("/elsewhere");
    co_return response();
  });
  app.get("/redirect-value",
          [](request&) -> awaitable<response> { co_return response::redirect("/there", http::status::see_other); });
  auto t = call(app, http::verb::get, "/throw");
  EXPECT_EQ(t.status(), http::status::bad_request);
  EXPECT_EQ(t.body(), "400: ms must be a number");
  EXPECT_EQ(call(app, http::verb::get, "/value").status(), http::status::conflict);
  auto r = call(app, http::verb::get, "/redirect");
  EXPECT_EQ(r.status(), http::status::found);
  EXPECT_EQ(r.header("Location").value_or(""), "/elsewhere");
  auto rv = call(app, http::verb::get, "/redirect-value");
  EXPECT_EQ(rv.status(), http::status::see_other);
  EXPECT_EQ(rv.header("Location").value_or(""), "/there");
}

TEST(Application, EscapingExceptionBecomes500) {
  application app;
  app.get("/boom", [](request&) -> awaitable<response> {
    throw std::runtime_error("database on fire");
    co_return response();
  });
  auto res = call(app, http::verb::get, "/boom");
  EXPECT_EQ(res.status(), http::status::internal_server_error);
  EXPECT_EQ(res.body(), "500: Internal Server Error");  // no internals leak to the client
}

TEST(Application, HooksRunInOrderIncludingSubApplications) {
  application app;
  std::vector<std::string> log;
  auto hook = [&log](std::string name) {
    return [&log, name](application&) -> awaitable<void> {
      log.push_back(name);
      co_return;
    };
  };
  app.on_startup(hook("start-1"));
  application sub;
  sub.on_startup(hook("sub-start"));
  sub.on_shutdown(hook("sub-shutdown"));
  sub.on_cleanup(hook("sub-cleanup"));
  app.add_subapp("/sub", std::move(sub));
  app.on_startup(hook("start-2"));
  app.on_shutdown(hook("shutdown"));
  app.on_cleanup(hook("cleanup"));
  loupe::loop loop;
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    co_await app.startup();
    co_await app.shutdown();
    co_await app.cleanup();
  });
  EXPECT_EQ(log, (std::vector<std::string>{"start-1", "sub-start", "start-2", "sub-shutdown", "shutdown", "sub-cleanup",
                                           "cleanup"}));
  EXPECT_TRUE(app.frozen());
  EXPECT_THROW(app.get("/late", text("x")), std::logic_error);
}

TEST(Application, SubApplicationUnderPrefix) {
  application app;
  std::vector<std::string> log;
  app.use(tracer(log, "root"));
  app.get("/", text("root index"));
  application admin;
  admin.use(tracer(log, "admin"));
  admin.get("/", text("admin index"), "admin-index");
  admin.get(
      "/users/{id}",
      [](request& req) -> awaitable<response> {
        co_return response::text("admin user " + std::string(req.match_info().at("id")) + " via " + req.route());
      },
      "admin-user");
  application& mounted = app.add_subapp("/admin", std::move(admin));

  EXPECT_EQ(call(app, http::verb::get, "/").body(), "root index");
  EXPECT_EQ(call(app, http::verb::get, "/admin/").body(), "admin index");
  EXPECT_EQ(call(app, http::verb::get, "/admin/users/7").body(), "admin user 7 via /admin/users/{id}");
  EXPECT_EQ(call(app, http::verb::get, "/administrator").status(), http::status::not_found);
  EXPECT_EQ(call(app, http::verb::get, "/users/7").status(), http::status::not_found);
  EXPECT_EQ(mounted.url_for("admin-user", {{"id", "9"}}), "/admin/users/9");
  // The sub-application's middlewares run inside the root's.
  log.clear();
  call(app, http::verb::get, "/admin/");
  EXPECT_EQ(log, (std::vector<std::string>{"root>", "admin>", "<admin", "<root"}));
  log.clear();
  call(app, http::verb::get, "/");
  EXPECT_EQ(log, (std::vector<std::string>{"root>", "<root"}));
}

TEST(Application, NestedSubApplicationsComposePrefixes) {
  application app;
  application v1;
  v1.get("/ping", text("pong"), "ping");
  application api;
  application& mounted_v1 = api.add_subapp("/v1", std::move(v1));
  app.add_subapp("/api", std::move(api));
  EXPECT_EQ(call(app, http::verb::get, "/api/v1/ping").body(), "pong");
  EXPECT_EQ(mounted_v1.url_for("ping"), "/api/v1/ping");
}

namespace {
struct counter {
  int hits = 0;
};
inline const loupe::app_key<counter> counter_key{"counter"};
inline const loupe::app_key<std::string> greeting_key{"greeting"};
inline const loupe::app_key<int> missing_key{"missing"};
}  // namespace

TEST(Application, TypedStateIsSharedWithSubApplications) {
  application app;
  app.set(counter_key, counter{});
  app.set(greeting_key, std::string("hello"));
  application sub;
  sub.set(greeting_key, std::string("hi from sub"));  // shadows the parent's
  sub.get("/count", [](request& req) -> awaitable<response> {
    auto& c = req.config(counter_key);  // found in the parent
    ++c.hits;
    co_return response::text(req.config(greeting_key) + " " + std::to_string(c.hits));
  });
  sub.get("/missing",
          [](request& req) -> awaitable<response> { co_return response::text(std::to_string(req.config(missing_key))); });
  app.add_subapp("/sub", std::move(sub));
  EXPECT_EQ(call(app, http::verb::get, "/sub/count").body(), "hi from sub 1");
  EXPECT_EQ(call(app, http::verb::get, "/sub/count").body(), "hi from sub 2");
  EXPECT_EQ(app.get(counter_key).hits, 2);
  EXPECT_EQ(app.find(missing_key), nullptr);
  EXPECT_EQ(call(app, http::verb::get, "/sub/missing").status(), http::status::internal_server_error);
}
