// cancel over a live loop: it reports how the task ended, and the ring of
// finished tasks (ps-terminated, where-terminated) keeps it.
#include <loupe/monitor/console.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <gtest/gtest.h>

using loupe::test_support::console_client;
using loupe::test_support::nap;

LOUPE_TEST_F(Console, CancelReportsTheOutcomeAndTheRingKeepsIt) {
  console.start();
  const auto id = loupe::spawn(loop, "to-cancel", nap());
  co_await loupe::testkit::wait_until([&] {
    const auto t = loop.find_task(id);
    return t && t->state == loupe::task_state::suspended;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto out = co_await c.command("cancel " + std::to_string(id));
  EXPECT_NE(out.find("task #" + std::to_string(id) + " 'to-cancel' ended: cancelled by console"), std::string::npos)
      << out;
  const auto done = co_await c.command("ps-terminated to-cancel");
  EXPECT_NE(done.find("cancelled by console"), std::string::npos) << done;
  const auto one = co_await c.command("where-terminated " + std::to_string(id));
  EXPECT_NE(one.find("last wait:    async_wait on deadline_timer"), std::string::npos) << one;
  EXPECT_NE((co_await c.command("cancel " + std::to_string(id))).find("no live task"), std::string::npos);
}
