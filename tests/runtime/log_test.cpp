// The JSON log formatter keeps every line valid JSON.
#include <loupe/runtime/log.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

TEST(LogJson, EscapingProducesValidJsonForHostileText) {
  const std::string hostile[] = {
      "plain", "quote \" backslash \\ slash /", "new\nline\r\ttab", std::string("nul\0byte", 8),
      "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff\xfe utf8 \xc3",
      "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "{\"inject\":1}"};
  for (const auto& s : hostile) {
    std::string out = "\"";
    loupe::log::append_json_escaped(out, s);
    out += "\"";
    boost::system::error_code ec;
    auto v = boost::json::parse(out, ec);
    ASSERT_FALSE(ec) << "invalid JSON for input of size " << s.size() << ": " << out;
    ASSERT_TRUE(v.is_string());
  }
  std::string valid = "\"";
  loupe::log::append_json_escaped(valid, "caf\xc3\xa9 \"q\"\n");
  valid += "\"";
  EXPECT_EQ(boost::json::parse(valid).as_string(), "caf\xc3\xa9 \"q\"\n");
}

TEST(LogJson, FormatParsing) {
  EXPECT_EQ(loupe::log::parse_format("json"), loupe::log::format::json);
  EXPECT_EQ(loupe::log::parse_format("text"), loupe::log::format::text);
  EXPECT_THROW(loupe::log::parse_format("xml"), std::invalid_argument);
}
