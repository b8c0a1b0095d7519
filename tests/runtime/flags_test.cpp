// Flag parsing: values, errors that name the flag, help.
#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/run_app.hpp>

#include <gtest/gtest.h>

using loupe::flag_error;
using loupe::flag_set;

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
  auto message = [&](std::vector<std::string> args) {
    try {
      f.parse(args);
    } catch (const flag_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
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
