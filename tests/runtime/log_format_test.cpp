// The log's formats: every line valid JSON (or one text record per line),
// whatever the message and fields hold.
#include "support/log_fixture.hpp"

TEST(LogJson, EscapingProducesValidJsonForHostileText) {
  // The fixture's hostile texts (support/log_fixture.hpp).
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

TEST_F(Log, HostileMessagesAndFieldsGiveOneValidJsonObjectPerLine) {
  for (const auto& s : hostile) {
    loupe::log::app().warn("{}", s);
    loupe::log::write(loupe::log::runtime(), spdlog::level::err, s,
                      {{s, s},
                       {"n", -42},
                       {"u", std::uint64_t{18446744073709551615ull}},
                       {"pi", 3.25},
                       {"nan", std::nan("")},
                       {"yes", true},
                       {"msg", "not the message"},
                       {"ts", 1}});
  }
  const auto recs = records();
  ASSERT_EQ(recs.size(), 2 * std::size(hostile));
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    const auto& input = hostile[i / 2];
    for (const char* key : {"ts", "level", "logger", "msg"}) EXPECT_TRUE(r.contains(key)) << key;
    if (valid_utf8(input)) {
      EXPECT_EQ(r.at("msg").as_string(), input);
    }
    // RFC 3339 UTC with milliseconds.
    const std::string ts(r.at("ts").as_string());
    EXPECT_EQ(ts.size(), 24u) << ts;
    EXPECT_EQ(ts[10], 'T');
    EXPECT_EQ(ts[19], '.');
    EXPECT_EQ(ts.back(), 'Z');
    EXPECT_FALSE(r.contains("task_id"));  // not inside a task
    if (i % 2 == 0) {
      EXPECT_EQ(r.at("level"), "warning");
      EXPECT_EQ(r.at("logger"), "app");
      continue;
    }
    EXPECT_EQ(r.at("level"), "error");
    EXPECT_EQ(r.at("logger"), "loupe");
    EXPECT_EQ(r.at("n").as_int64(), -42);
    EXPECT_EQ(r.at("u").as_uint64(), 18446744073709551615ull);
    EXPECT_EQ(r.at("pi").as_double(), 3.25);
    EXPECT_TRUE(r.at("nan").is_null());
    EXPECT_EQ(r.at("yes").as_bool(), true);
    // A field never replaces the record's own keys.
    EXPECT_EQ(r.at("field_msg"), "not the message");
    EXPECT_EQ(r.at("field_ts").as_int64(), 1);
    if (valid_utf8(input)) {
      EXPECT_EQ(r.at("msg").as_string(), input);
      if (input != "msg" && input != "ts") {
        EXPECT_EQ(r.at(input).as_string(), input);
      }
    }
  }
}

TEST_F(Log, TextFormatKeepsOneRecordPerLine) {
  use({.format = loupe::log::format::text});
  loupe::log::write(loupe::log::app(), spdlog::level::info, "two\nlines", {{"key", "a value"}, {"n", 3}});
  ASSERT_TRUE(loupe::log::flush());
  const auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("info"), std::string::npos);
  EXPECT_NE(lines[0].find("[app] two\\nlines key=\"a value\" n=3\n"), std::string::npos) << lines[0];
}

TEST(LogLevels, Parsing) {
  EXPECT_EQ(loupe::log::parse_level("debug"), spdlog::level::debug);
  EXPECT_EQ(loupe::log::parse_level("warn"), spdlog::level::warn);
  EXPECT_EQ(loupe::log::parse_level("warning"), spdlog::level::warn);
  EXPECT_EQ(loupe::log::parse_level("off"), spdlog::level::off);
  EXPECT_THROW(loupe::log::parse_level("loud"), std::invalid_argument);
}
