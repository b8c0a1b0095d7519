// slow lists a slow callback with its task; log-level shows the level, sets
// it and refuses a name it does not know (one test covers both).
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/tracking.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <gtest/gtest.h>

#include <thread>

using loupe::awaitable;
using loupe::test_support::console_client;
using namespace std::chrono_literals;
namespace asio = boost::asio;

LOUPE_TEST_F(Console, SlowCallbacksAndLogLevel) {
  const auto saved = loupe::get_tracking_options();
  loupe::set_tracking_options({.slow_callback = 20ms, .watchdog = 0ms});
  console.start();
  co_await loupe::spawn(
      loop, "sluggish",
      []() -> awaitable<void> {
        std::this_thread::sleep_for(30ms);
        co_return;
      }(),
      asio::use_awaitable);
  loupe::set_tracking_options(saved);
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto slow = co_await c.command("slow");
  EXPECT_NE(slow.find("slow callback"), std::string::npos) << slow;
  EXPECT_NE(slow.find("'sluggish'"), std::string::npos) << slow;
  const auto before = loupe::log::level();
  EXPECT_NE((co_await c.command("log-level")).find("log level: info"), std::string::npos);
  EXPECT_NE((co_await c.command("log-level debug")).find("log level set to debug"), std::string::npos);
  EXPECT_EQ(loupe::log::level(), spdlog::level::debug);
  EXPECT_NE((co_await c.command("log-level loud")).find("error: unknown log level 'loud'"), std::string::npos);
  loupe::log::set_level(before);
}
