// request: path, query, cookies, headers and JSON body, as a handler sees them.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/run.hpp>

#include "support/handle.hpp"

#include <gtest/gtest.h>

namespace http = boost::beast::http;
using loupe::application;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::test_support::call;
using loupe::test_support::make_request;

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
