// response: cookies, and the guard every header write goes through.
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/response.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace http = boost::beast::http;
using loupe::response;

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
