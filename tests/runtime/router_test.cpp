// Router: static, {name} and {name:regex} parameters, reverse URLs, 404 vs 405.
#include <loupe/runtime/router.hpp>

#include <gtest/gtest.h>

namespace http = boost::beast::http;
using loupe::router;
using kind = loupe::router::match_result::kind;

namespace {

loupe::handler ok() {
  return [](loupe::request&) -> loupe::awaitable<loupe::response> { co_return loupe::response(); };
}

router::match_result get(const router& r, std::string_view path) { return r.match(http::verb::get, "GET", path); }

}  // namespace

TEST(Router, StaticPathMatchesExactly) {
  router r;
  r.add(http::verb::get, "/", ok(), "index");
  r.add(http::verb::get, "/about", ok());
  EXPECT_EQ(get(r, "/").outcome, kind::found);
  EXPECT_EQ(get(r, "/about").route->path_template, "/about");
  EXPECT_EQ(get(r, "/about/").outcome, kind::not_found);
  EXPECT_EQ(get(r, "/abou").outcome, kind::not_found);
}

TEST(Router, NamedParameterMatchesOneSegment) {
  router r;
  r.add(http::verb::get, "/users/{id}", ok());
  auto m = get(r, "/users/alice");
  ASSERT_EQ(m.outcome, kind::found);
  EXPECT_EQ(m.params.at("id"), "alice");
  EXPECT_EQ(get(r, "/users/alice/posts").outcome, kind::not_found);
  EXPECT_EQ(get(r, "/users/").outcome, kind::not_found);
}

TEST(Router, RegexParameterConstrainsTheMatch) {
  router r;
  r.add(http::verb::get, R"(/users/{id:\d+})", ok());
  EXPECT_EQ(get(r, "/users/42").params.at("id"), "42");
  EXPECT_EQ(get(r, "/users/abc").outcome, kind::not_found);
  EXPECT_EQ(get(r, "/users/4a").outcome, kind::not_found);
}

TEST(Router, RegexMaySpanSlashesAndContainBraces) {
  router r;
  r.add(http::verb::get, "/files/{path:.+}", ok());
  r.add(http::verb::get, R"(/year/{y:\d{4}}/{slug})", ok());
  EXPECT_EQ(get(r, "/files/a/b/c.txt").params.at("path"), "a/b/c.txt");
  auto m = get(r, "/year/2024/hello");
  ASSERT_EQ(m.outcome, kind::found);
  EXPECT_EQ(m.params.at("y"), "2024");
  EXPECT_EQ(m.params.at("slug"), "hello");
  EXPECT_EQ(get(r, "/year/24/hello").outcome, kind::not_found);
}

TEST(Router, SeveralParametersInOneSegment) {
  router r;
  r.add(http::verb::get, "/img/{name}.{ext}", ok());
  auto m = get(r, "/img/cat.png");
  ASSERT_EQ(m.outcome, kind::found);
  EXPECT_EQ(m.params.at("name"), "cat");
  EXPECT_EQ(m.params.at("ext"), "png");
}

TEST(Router, StaticRouteWinsOverTemplateAndOrderDecidesBetweenTemplates) {
  router r;
  r.add(http::verb::get, "/users/{id}", ok(), "by-id");
  r.add(http::verb::get, "/users/me", ok(), "me");
  r.add(http::verb::get, "/users/{name:[a-z]+}", ok(), "by-name");
  EXPECT_EQ(get(r, "/users/me").route->name, "me");
  EXPECT_EQ(get(r, "/users/bob").route->name, "by-id");  // first added template wins
}

TEST(Router, WrongMethodGives405WithAllowedMethods) {
  router r;
  r.add(http::verb::get, "/items", ok());
  r.add(http::verb::post, "/items", ok());
  r.add(http::verb::delete_, "/items/{id}", ok());
  auto m = r.match(http::verb::put, "PUT", "/items");
  EXPECT_EQ(m.outcome, kind::method_not_allowed);
  EXPECT_EQ(m.allow_header(), "GET, HEAD, POST");
  auto d = r.match(http::verb::get, "GET", "/items/3");
  EXPECT_EQ(d.outcome, kind::method_not_allowed);
  EXPECT_EQ(d.allow_header(), "DELETE");
  EXPECT_EQ(r.match(http::verb::put, "PUT", "/nothing").outcome, kind::not_found);
}

TEST(Router, GetRouteAnswersHeadUnlessHeadIsRegistered) {
  router r;
  r.add(http::verb::get, "/a", ok(), "get-a");
  r.add(http::verb::get, "/b", ok(), "get-b");
  r.add(http::verb::head, "/b", ok(), "head-b");
  EXPECT_EQ(r.match(http::verb::head, "HEAD", "/a").route->name, "get-a");
  EXPECT_EQ(r.match(http::verb::head, "HEAD", "/b").route->name, "head-b");
}

TEST(Router, AllStandardMethodsAndExtensionMethods) {
  router r;
  for (auto v : {http::verb::get, http::verb::post, http::verb::put, http::verb::delete_, http::verb::patch,
                 http::verb::head, http::verb::options})
    r.add(v, "/m", ok(), std::string(http::to_string(v)));
  r.add("PURGE", "/m", ok(), "purge");
  EXPECT_EQ(r.match(http::verb::options, "OPTIONS", "/m").route->name, "OPTIONS");
  EXPECT_EQ(r.match(http::verb::patch, "PATCH", "/m").route->name, "PATCH");
  EXPECT_EQ(r.match(http::verb::purge, "PURGE", "/m").route->name, "purge");
  auto other = r.match(http::verb::unknown, "BREW", "/m");
  EXPECT_EQ(other.outcome, kind::method_not_allowed);
  EXPECT_NE(other.allow_header().find("PURGE"), std::string::npos);
}

TEST(Router, UrlForFillsAndEncodesParameters) {
  router r;
  r.add(http::verb::get, R"(/users/{id:\d+})", ok(), "user");
  r.add(http::verb::get, "/tags/{tag}", ok(), "tag");
  r.add(http::verb::get, "/files/{path:.+}", ok(), "file");
  r.add(http::verb::get, "/", ok(), "index");
  EXPECT_EQ(r.url_for("user", {{"id", "42"}}), "/users/42");
  EXPECT_EQ(r.url_for("tag", {{"tag", "c++ & more"}}), "/tags/c++%20&%20more");
  EXPECT_EQ(r.url_for("file", {{"path", "a/b c.txt"}}), "/files/a/b%20c.txt");
  EXPECT_EQ(r.url_for("index", {}, {{"q", "a b"}, {"page", "2"}}), "/?q=a%20b&page=2");
}

TEST(Router, UrlForRejectsBadInput) {
  router r;
  r.add(http::verb::get, R"(/users/{id:\d+})", ok(), "user");
  EXPECT_THROW(r.url_for("nope"), std::invalid_argument);
  EXPECT_THROW(r.url_for("user"), std::invalid_argument);                          // missing
  EXPECT_THROW(r.url_for("user", {{"id", "abc"}}), std::invalid_argument);         // no match
  EXPECT_THROW(r.url_for("user", {{"id", "1"}, {"x", "2"}}), std::invalid_argument);  // unknown
}

TEST(Router, MalformedTemplatesAreRejectedAtRegistration) {
  router r;
  EXPECT_THROW(r.add(http::verb::get, "no-slash", ok()), std::invalid_argument);
  EXPECT_THROW(r.add(http::verb::get, "/a/{id", ok()), std::invalid_argument);
  EXPECT_THROW(r.add(http::verb::get, "/a/id}", ok()), std::invalid_argument);
  EXPECT_THROW(r.add(http::verb::get, "/a/{1x}", ok()), std::invalid_argument);
  EXPECT_THROW(r.add(http::verb::get, "/a/{id:(}", ok()), std::invalid_argument);
  EXPECT_THROW(r.add(http::verb::get, "/a/{id}/{id}", ok()), std::invalid_argument);
  r.add(http::verb::get, "/x", ok(), "x");
  EXPECT_THROW(r.add(http::verb::get, "/y", ok(), "x"), std::invalid_argument);
  EXPECT_EQ(r.routes().size(), 1u);
}

TEST(Router, PrefixAppliesToMatchingAndUrls) {
  router r;
  r.add(http::verb::get, "/users/{id}", ok(), "user");
  r.set_prefix("/api");
  EXPECT_EQ(get(r, "/api/users/1").outcome, kind::found);
  EXPECT_EQ(get(r, "/users/1").outcome, kind::not_found);
  EXPECT_EQ(r.url_for("user", {{"id", "1"}}), "/api/users/1");
}
