// loupe/testkit/wait.hpp — wait inside a test coroutine for a condition to hold.
//
//   co_await loupe::testkit::wait_until([&] { return server.connection_count() == 0; });
//
// Checks `cond` on the test's loop every `poll` (1 ms) until it holds. It has
// no deadline of its own: the test's deadline (testkit::run) bounds it, and
// when that passes the failure lists the live tasks.
#pragma once

#include <loupe/runtime/timer.hpp>

#include <chrono>

namespace loupe::testkit {

template <class Condition>
awaitable<void> wait_until(Condition cond, std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  while (!cond()) co_await loupe::sleep_for(poll);
}

}  // namespace loupe::testkit
