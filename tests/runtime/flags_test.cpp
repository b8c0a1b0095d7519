// Flag parsing: values, errors that name the flag, help.
#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/run_app.hpp>

#include <gtest/gtest.h>

using loupe::flag_error;
using loupe::flag_set;

namespace {
// What parsing `args` throws, or "no error".
std::string parse_error(const flag_set& f, std::vector<std::string> args) {
  try {
    f.parse(args);
  } catch (const flag_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(Flags, ParsesBothSpellingsAndDefaults) {
  flag_set f("prog", "");
  loupe::run_options o;
  o.add_flags(f);
  f.parse({"--port", "9000", "--host=0.0.0.0", "--log-format", "text"});
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.log_format, "text");
  EXPECT_EQ(o.workers, 1);
  EXPECT_EQ(o.slow_callback_ms, 100);
}

TEST(Flags, ErrorsNameTheFlag) {
  flag_set f("prog", "");
  loupe::run_options o;
  o.add_flags(f);
  auto message = [&](std::vector<std::string> args) { return parse_error(f, std::move(args)); };
  EXPECT_NE(message({"--port", "abc"}).find("--port"), std::string::npos);
  EXPECT_NE(message({"--port", "70000"}).find("out of range"), std::string::npos);
  EXPECT_NE(message({"--workers", "0"}).find("--workers"), std::string::npos);
  EXPECT_NE(message({"--log-format", "xml"}).find("--log-format"), std::string::npos);
  EXPECT_NE(message({"--bogus"}).find("--bogus"), std::string::npos);
  EXPECT_NE(message({"--port"}).find("missing value"), std::string::npos);
  EXPECT_NE(message({"--slow-callback-ms=-1"}).find("--slow-callback-ms"), std::string::npos);
}

TEST(Flags, HelpIsRequestedAndListsFlags) {
  flag_set f("prog", "A program.");
  loupe::run_options o;
  o.add_flags(f);
  EXPECT_THROW(f.parse({"--help"}), loupe::help_requested);
  const auto u = f.usage();
  for (auto name : {"--host", "--port", "--workers", "--slow-callback-ms", "--log-format"})
    EXPECT_NE(u.find(name), std::string::npos) << name;
}

TEST(Flags, BooleansAndPositionals) {
  flag_set f("prog", "");
  bool verbose = false;
  f.add_bool("verbose", &verbose, "talk more");
  auto rest = f.parse({"--verbose", "file.txt"});
  EXPECT_TRUE(verbose);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0], "file.txt");
  f.parse({"--verbose=false"});
  EXPECT_FALSE(verbose);
}

TEST(Flags, LimitsAndTimeoutsFillTheServerOptions) {
  flag_set f("prog", "");
  loupe::run_options o;
  o.add_flags(f);
  f.parse({"--max-connections", "500", "--header-timeout-ms", "2000", "--keepalive-timeout-ms=5000", "--body-timeout-ms",
           "3000", "--write-timeout-ms", "4000", "--max-header-bytes", "8192", "--max-body-bytes", "65536",
           "--max-body-bytes-in-flight", "1048576"});
  using std::chrono::milliseconds;
  EXPECT_EQ(o.server.max_connections, 500u);
  EXPECT_EQ(o.server.header_timeout, milliseconds(2000));
  EXPECT_EQ(o.server.keepalive_timeout, milliseconds(5000));
  EXPECT_EQ(o.server.body_timeout, milliseconds(3000));
  EXPECT_EQ(o.server.write_timeout, milliseconds(4000));
  EXPECT_EQ(o.server.max_header_bytes, 8192u);
  EXPECT_EQ(o.max_body_bytes, 65536u);
  EXPECT_EQ(o.server.max_body_bytes_in_flight, 1048576u);
  const auto usage = f.usage();
  EXPECT_NE(usage.find("--header-timeout-ms VALUE"), std::string::npos) << usage;
  EXPECT_NE(usage.find("[default: 15000]"), std::string::npos) << usage;
}

TEST(Flags, BadLimitsAreRefusedNamingTheFlag) {
  flag_set f("prog", "");
  loupe::run_options o;
  o.add_flags(f);
  auto message = [&](std::vector<std::string> args) { return parse_error(f, std::move(args)); };
  EXPECT_EQ(message({"--header-timeout-ms", "0"}), "--header-timeout-ms: 0 is out of range [1, 3600000]");
  EXPECT_EQ(message({"--max-connections", "-3"}), "--max-connections: '-3' is not an integer");
  EXPECT_EQ(message({"--body-timeout-ms", "1.5"}), "--body-timeout-ms: '1.5' is not an integer");
  EXPECT_NE(message({"--write-timeout-ms", "99999999999999999999"}).find("out of range"), std::string::npos);
  EXPECT_NE(message({"--max-body-bytes-in-flight", "100"}).find("out of range [1024,"), std::string::npos);
}
