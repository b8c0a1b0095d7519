// Application: middleware onion, hooks, sub-applications, typed state, errors.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/run.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace http = boost::beast::http;
using loupe::application;
using loupe::awaitable;
using loupe::next_handler;
using loupe::request;
using loupe::response;

namespace {

request make_request(http::verb method, std::string target, std::string body = {}) {
  request::message_type msg{method, target, 11};
  msg.body() = std::move(body);
  return request(std::move(msg));
}

// Runs app.handle() for one request on a fresh loop.
response call(application& app, http::verb method, std::string target, std::string body = {}) {
  loupe::loop loop;
  auto req = make_request(method, std::move(target), std::move(body));
  return loupe::testkit::run(loop, [&]() { return app.handle(req); }, std::chrono::seconds(5));
}

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
  app.get("/redirect-value", [](request&) -> awaitable<response> {
    co_return response::redirect("/there", http::status::see_other);
  });
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
  EXPECT_EQ(log, (std::vector<std::string>{"start-1", "sub-start", "start-2", "sub-shutdown", "shutdown",
                                           "sub-cleanup", "cleanup"}));
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
  admin.get("/users/{id}", [](request& req) -> awaitable<response> {
    co_return response::text("admin user " + std::string(req.match_info().at("id")) + " via " + req.route());
  }, "admin-user");
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
  sub.get("/missing", [](request& req) -> awaitable<response> {
    co_return response::text(std::to_string(req.config(missing_key)));
  });
  app.add_subapp("/sub", std::move(sub));
  EXPECT_EQ(call(app, http::verb::get, "/sub/count").body(), "hi from sub 1");
  EXPECT_EQ(call(app, http::verb::get, "/sub/count").body(), "hi from sub 2");
  EXPECT_EQ(app.get(counter_key).hits, 2);
  EXPECT_EQ(app.find(missing_key), nullptr);
  EXPECT_EQ(call(app, http::verb::get, "/sub/missing").status(), http::status::internal_server_error);
}

TEST(Application, RequestAccessors) {
  application app;
  app.post("/inspect/{name}", [](request& req) -> awaitable<response> {
    const auto body = req.json();
    boost::json::object o;
    o["name"] = std::string(req.match_info().at("name"));
    o["path"] = req.path();
    o["q"] = std::string(req.query().get("q").value_or(""));
    o["tags"] = req.query().get_all("tag").size();
    o["session"] = std::string(req.cookie("session").value_or(""));
    o["theme"] = std::string(req.cookie("theme").value_or(""));
    o["agent"] = std::string(req.header("user-agent").value_or(""));
    o["n"] = body.at("n");
    co_return response::json(o);
  });
  auto req = make_request(http::verb::post, "/inspect/a%20b?q=x+y%21&tag=1&tag=2", R"({"n": 3})");
  req.native().set(http::field::cookie, "session=abc123; theme=\"dark\"");
  req.native().set(http::field::user_agent, "tests/1.0");
  loupe::loop loop;
  auto res = loupe::testkit::run(loop, [&]() { return app.handle(req); });
  ASSERT_EQ(res.status(), http::status::ok) << res.body();
  auto v = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(v["name"], "a b");
  EXPECT_EQ(v["path"], "/inspect/a b");
  EXPECT_EQ(v["q"], "x y!");
  EXPECT_EQ(v["tags"], 2);
  EXPECT_EQ(v["session"], "abc123");
  EXPECT_EQ(v["theme"], "dark");
  EXPECT_EQ(v["agent"], "tests/1.0");
  EXPECT_EQ(v["n"], 3);
  EXPECT_EQ(res.header("Content-Type").value_or(""), "application/json");
}

TEST(Application, InvalidJsonBodyIs400) {
  application app;
  app.post("/j", [](request& req) -> awaitable<response> { co_return response::json(req.json()); });
  auto res = call(app, http::verb::post, "/j", "{not json");
  EXPECT_EQ(res.status(), http::status::bad_request);
  EXPECT_NE(res.body().find("invalid JSON"), std::string::npos);
}

TEST(Application, ResponseCookiesAndHeaderInjectionGuard) {
  response res = response::text("x");
  res.set_cookie("session", "abc", {.max_age = std::chrono::seconds(60), .http_only = true, .same_site = "Lax"});
  res.del_cookie("old");
  std::vector<std::string> cookies;
  for (auto& f : res.native())
    if (f.name() == http::field::set_cookie) cookies.emplace_back(f.value());
  ASSERT_EQ(cookies.size(), 2u);
  EXPECT_EQ(cookies[0], "session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax");
  EXPECT_NE(cookies[1].find("old=\"\"; expires=Thu, 01 Jan 1970"), std::string::npos);
  EXPECT_THROW(res.set_header("X-A", "evil\r\nSet-Cookie: x=1"), std::invalid_argument);
  EXPECT_THROW(response::redirect("/x\r\nSet-Cookie: pwned=1"), std::invalid_argument);
  EXPECT_THROW(loupe::http_found("/x\r\nSet-Cookie: pwned=1"), std::invalid_argument);
  EXPECT_THROW(res.set_content_type("text/plain\r\nX-Injected: 1"), std::invalid_argument);
  EXPECT_THROW(res.set_cookie("s", "v", {.path = "/; Domain=evil"}), std::invalid_argument);
  EXPECT_THROW(res.set_cookie("s", "a;b"), std::invalid_argument);
  EXPECT_THROW(res.set_cookie("bad name", "v"), std::invalid_argument);
}

TEST(Application, StaticFilesNeverEscapeTheDirectory) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("loupe-static-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "public" / "css");
  std::ofstream(root / "public" / "index.html") << "<h1>hi</h1>";
  std::ofstream(root / "public" / "css" / "site.css") << "body{}";
  std::ofstream(root / "secret.txt") << "top secret";
  fs::create_symlink(root / "secret.txt", root / "public" / "link.txt");

  application app;
  app.add_static("/static", root / "public", {.name = "static"});
  auto file = call(app, http::verb::get, "/static/css/site.css");
  EXPECT_EQ(file.status(), http::status::ok);
  ASSERT_TRUE(file.file_path().has_value());
  EXPECT_EQ(file.file_size(), 6u);
  EXPECT_EQ(file.header("Content-Type").value_or(""), "text/css; charset=utf-8");
  for (const char* bad : {"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/css/../../secret.txt",
                          "/static/..%2fsecret.txt", "/static//etc/passwd", "/static/link.txt",
                          "/static/nope.txt"})
    EXPECT_EQ(call(app, http::verb::get, bad).status(), http::status::not_found) << bad;
  EXPECT_EQ(call(app, http::verb::get, "/static/css").status(), http::status::forbidden);
  EXPECT_EQ(app.url_for("static", {{"filename", "css/site.css"}}), "/static/css/site.css");
  EXPECT_THROW(app.add_static("/x", root / "missing"), std::invalid_argument);
  fs::remove_all(root);
}
