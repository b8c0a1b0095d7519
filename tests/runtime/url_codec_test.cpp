// Percent coding, the one codec the router (url_for), the request (path and
// query) and the client (form bodies) share.
#include "http/url_codec.hpp"

#include <gtest/gtest.h>

#include <string>

namespace codec = loupe::detail::url_codec;

namespace {

std::string path(std::string_view s, bool keep_slash = false) {
  std::string out;
  codec::append_path(out, s, keep_slash);
  return out;
}

}  // namespace

TEST(UrlCodec, PathSegmentsKeepPcharsAndEncodeTheRest) {
  EXPECT_EQ(path("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
  EXPECT_EQ(path("a b/c", true), "a%20b/c");
  EXPECT_EQ(path("!$&'()*+,;=:@-._~"), "!$&'()*+,;=:@-._~");
  EXPECT_EQ(path("caf\xc3\xa9"), "caf%C3%A9");
}

TEST(UrlCodec, QueryAndFormPartsKeepOnlyUnreservedCharacters) {
  std::string q, f;
  codec::append_query(q, "a b&c=d+e");
  codec::append_form(f, "a b&c=d+e");
  EXPECT_EQ(q, "a%20b%26c%3Dd%2Be");
  EXPECT_EQ(f, "a+b%26c%3Dd%2Be");
}

TEST(UrlCodec, DecodingRefusesMalformedEscapesAndEncodedNul) {
  std::string out;
  EXPECT_TRUE(codec::decode("a%20b+c%2Fd", out, false));
  EXPECT_EQ(out, "a b+c/d");
  EXPECT_TRUE(codec::decode("a%20b+c", out, true));
  EXPECT_EQ(out, "a b c");
  EXPECT_TRUE(codec::decode("%c3%A9", out, false));
  EXPECT_EQ(out, "\xc3\xa9");
  for (const char* bad : {"%", "%2", "%zz", "a%g0", "%00", "x%00y"}) EXPECT_FALSE(codec::decode(bad, out, false)) << bad;
}
