// The client's cookie jar on its own: RFC 6265's storage and matching rules
// (host-only and Domain cookies, paths, deletion, Secure on loopback only).
// End to end through a client session: Testkit.CookieJarKeepsAndSendsCookies.
#include "client/cookie_jar.hpp"

#include <boost/url/parse.hpp>
#include <gtest/gtest.h>

#include <string>

namespace {

boost::urls::url url(const char* text) { return boost::urls::url(*boost::urls::parse_uri(text)); }

}  // namespace

TEST(CookieJar, AHostOnlyCookieGoesBackToItsHostAndNotToSubdomains) {
  loupe::detail::cookie_jar jar;
  jar.store("sid=abc; Path=/", url("http://example.test/login"));
  EXPECT_EQ(jar.header_for(url("http://example.test/")), "sid=abc");
  EXPECT_EQ(jar.header_for(url("http://EXAMPLE.test/x")), "sid=abc");
  EXPECT_EQ(jar.header_for(url("http://api.example.test/")), "");
  EXPECT_EQ(jar.header_for(url("http://other.test/")), "");
}

TEST(CookieJar, ADomainCookieCoversSubdomainsAndOneForAnotherSiteIsRejected) {
  loupe::detail::cookie_jar jar;
  jar.store("wide=1; Domain=.example.test", url("http://www.example.test/"));
  jar.store("evil=1; Domain=attacker.test", url("http://www.example.test/"));
  EXPECT_EQ(jar.header_for(url("http://api.example.test/")), "wide=1");
  EXPECT_EQ(jar.header_for(url("http://example.test/")), "wide=1");
  EXPECT_EQ(jar.header_for(url("http://attacker.test/")), "");
  EXPECT_EQ(jar.header_for(url("http://notexample.test/")), "");  // a suffix is not a subdomain
  EXPECT_EQ(jar.all().size(), 1u);
}

TEST(CookieJar, PathsScopeCookiesAndTheDefaultPathIsTheRequestsDirectory) {
  loupe::detail::cookie_jar jar;
  jar.store("admin=1; Path=/admin", url("http://h.test/"));
  jar.store("dir=1", url("http://h.test/shop/cart"));  // default path "/shop"
  EXPECT_EQ(jar.header_for(url("http://h.test/admin")), "admin=1");
  EXPECT_EQ(jar.header_for(url("http://h.test/admin/users")), "admin=1");
  EXPECT_EQ(jar.header_for(url("http://h.test/administrator")), "");
  EXPECT_EQ(jar.header_for(url("http://h.test/shop/item")), "dir=1");
  EXPECT_EQ(jar.header_for(url("http://h.test/")), "");
}

TEST(CookieJar, SameNameDomainAndPathReplacesAndMaxAgeZeroOrAPastExpiryDeletes) {
  loupe::detail::cookie_jar jar;
  jar.store("a=1", url("http://h.test/"));
  jar.store("a=2", url("http://h.test/"));
  jar.store("b=\"quoted\"", url("http://h.test/"));
  EXPECT_EQ(jar.header_for(url("http://h.test/")), "a=2; b=quoted");
  jar.store("a=; Max-Age=0", url("http://h.test/"));
  jar.store("b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", url("http://h.test/"));
  EXPECT_EQ(jar.header_for(url("http://h.test/")), "");
  EXPECT_TRUE(jar.all().empty());
}

TEST(CookieJar, SecureCookiesAreSentToLoopbackOnlyAndMalformedOnesAreIgnored) {
  loupe::detail::cookie_jar jar;
  jar.store("s=1; Secure", url("http://127.0.0.1:8080/"));
  jar.store("t=1; Secure", url("http://h.test/"));
  jar.store("no-equals-sign", url("http://h.test/"));
  jar.store("=nameless", url("http://h.test/"));
  EXPECT_EQ(jar.header_for(url("http://127.0.0.1:8080/")), "s=1");
  EXPECT_EQ(jar.header_for(url("http://h.test/")), "");
  EXPECT_EQ(jar.all().size(), 2u);
}
