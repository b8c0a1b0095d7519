// loupe/testkit/wait.hpp — wait inside a test coroutine for a condition to hold.
//
//   co_await loupe::testkit::wait_until([&] { return server.connection_count() == 0; });
//
//   loupe::spawn(loop, "warm-cache", warm_cache(app));
//   co_await loupe::testkit::settle();          // returns once every task is blocked
//   EXPECT_EQ(app_cache_size(app), 100u);
//
// wait_until checks `cond` on the test's loop every `poll` (1 ms, on
// loupe::clock: under virtual time a poll costs no real time) until it holds.
// It has no deadline of its own: the test's deadline (testkit::run) bounds
// it, and when that passes the failure lists the live tasks.
//
// settle() (Go's synctest.Wait) returns when no handler of the loop is ready
// and nothing arrives for a moment: every other task is blocked — on a timer
// not yet due, on I/O, on a channel. It never moves virtual time itself, so
// background work that sleeps stays asleep. Call it inside testkit::run (a
// LOUPE_TEST body).
#pragma once

#include <loupe/runtime/timer.hpp>

#include <chrono>
#include <source_location>

namespace loupe::testkit {

/// Completes when every other task of the calling loop is blocked.
awaitable<void> settle(std::source_location at = std::source_location::current());

template <class Condition>
awaitable<void> wait_until(Condition cond, std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  while (!cond()) co_await loupe::sleep_for(poll);
}

}  // namespace loupe::testkit
