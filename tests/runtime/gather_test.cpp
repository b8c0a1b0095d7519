// gather: concurrent tasks, results in order, the first error, cancellation.
#include <loupe/runtime/gather.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/run.hpp>

#include <gtest/gtest.h>

using loupe::awaitable;
using namespace std::chrono_literals;

namespace {
awaitable<int> after(std::chrono::milliseconds d, int v, std::vector<int>& order) {
  co_await loupe::sleep_for(d);
  order.push_back(v);
  co_return v;
}
awaitable<int> fail_after(std::chrono::milliseconds d) {
  co_await loupe::sleep_for(d);
  throw std::runtime_error("second failed");
}
}  // namespace

TEST(Gather, RunsConcurrentlyAndKeepsArgumentOrder) {
  loupe::loop loop;
  std::vector<int> order;
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    auto [a, b] = co_await loupe::gather(loop, "pair", after(60ms, 1, order), after(10ms, 2, order));
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 2);
    EXPECT_EQ(order, (std::vector<int>{2, 1}));  // the second finished first: they ran at once
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  });
  bool named = false;
  for (const auto& f : loop.finished_tasks()) named = named || f.info.name == "pair[1]";
  EXPECT_TRUE(named);
}

TEST(Gather, RethrowsTheFirstErrorAfterAllEnded) {
  loupe::loop loop;
  std::vector<int> order;
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    std::string what;
    try {
      (void)co_await loupe::gather(loop, "g", after(30ms, 1, order), fail_after(1ms));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "second failed");
    EXPECT_EQ(order, std::vector<int>{1});  // the first one still ran to its end
  });
}
