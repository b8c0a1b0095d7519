// `loops` shows a blocked loop as blocked: during a block it printed
// "running … 0 % … lag p99 10ms" (lifetime values, snapped to bucket edges,
// and busy time counted only once a callback had ended).
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

using loupe::awaitable;
using loupe::test_support::console_client;
using namespace std::chrono_literals;

LOUPE_TEST_F(Console, LoopsShowsABlockedLoopAsBlockedAndByWhom) {
  expect_log({.level = spdlog::level::err, .message = "watchdog: loop 'blocked-loop' has been blocked"});
  console.start();
  loupe::loop other("blocked-loop");
  other.enable_lag_sampling(10ms);
  std::atomic<bool> blocking{false}, release{false};
  auto blocker = [&]() -> awaitable<void> {
    co_await loupe::sleep_for(50ms);  // some lag samples first
    blocking = true;
    while (!release) std::this_thread::sleep_for(1ms);  // blocks its loop
  };
  const auto id = loupe::spawn(other, "blocker", blocker());
  std::thread runner([&] { other.run(); });
  struct join {
    std::atomic<bool>& release;
    loupe::loop& l;
    std::thread& t;
    ~join() {
      release = true;
      l.stop();
      t.join();
    }
  } joined{release, other, runner};

  co_await loupe::testkit::wait_until([&] { return blocking.load(); });
  // Past the slow-callback threshold (100 ms) and a console sample or two into the block.
  co_await loupe::testkit::wait_until([&] {
    const auto now = other.current_callback();
    return now && now->running_for >= 1500ms;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto text = co_await c.command("loops");
  std::string row;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
    if (text.compare(at, 12, "blocked-loop") == 0) row = text.substr(at, nl - at);
  // "blocked 1.6s": at least as long as it had been blocked when asked (more on a slow machine).
  const auto blocked_at = row.find("blocked ");
  CO_ASSERT_NE(blocked_at, std::string::npos) << text;
  EXPECT_GE(std::stod(row.substr(blocked_at + 8)), 1.5) << text;
  EXPECT_EQ(row.substr(row.find_first_not_of("0123456789.", blocked_at + 8), 1), "s") << text;
  EXPECT_EQ(row.find(" 0%"), std::string::npos) << text;  // busy while it blocks
  EXPECT_NE(text.find("blocked-loop: blocked by task #" + std::to_string(id) + " 'blocker'"), std::string::npos) << text;

  const auto json = boost::json::parse(co_await c.command("loops --json"));
  const boost::json::object* o = nullptr;
  for (const auto& v : json.as_array())
    if (v.at("loop") == "blocked-loop") o = &v.as_object();
  CO_ASSERT_TRUE(o) << json;
  EXPECT_EQ(o->at("state"), "blocked");
  EXPECT_EQ(o->at("current_callback").at("task_id").to_number<std::uint64_t>(), id);
  EXPECT_EQ(o->at("current_callback").at("task"), "blocker");
  EXPECT_GE(o->at("current_callback").at("running_ms").to_number<double>(), 1500.0);
  EXPECT_GT(o->at("busy_ratio_10s").to_number<double>(), 0.5);
  // The block counts as lag: a timer due now is at least that late.
  EXPECT_TRUE(o->at("lag_10s").at("blocked_now").as_bool());
  EXPECT_GE(o->at("lag_10s").at("max_ms").to_number<double>(), 1500.0);
  EXPECT_GE(o->at("lag_10s").at("p99_ms").to_number<double>(), 1500.0);
  // Before the block the samples were small: p50 is not the block.
  EXPECT_LT(o->at("lag_10s").at("p50_ms").to_number<double>(), 1000.0);
}
