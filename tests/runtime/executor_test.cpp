// executor: blocking work off the loop, results and exceptions back on it.
#include <loupe/runtime/executor.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include <gtest/gtest.h>

#include <thread>

using loupe::awaitable;
using namespace std::chrono_literals;

TEST(Executor, ResultComesBackOnTheCallersLoopThread) {
  loupe::loop loop;
  loupe::executor pool(2);
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    const auto loop_thread = std::this_thread::get_id();
    std::thread::id worker;
    const int v = co_await pool.run([&] {
      worker = std::this_thread::get_id();
      return 6 * 7;
    });
    EXPECT_EQ(v, 42);
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    co_await pool.run([] {});  // void works too
  });
}

TEST(Executor, ExceptionsPropagateToTheCaller) {
  loupe::loop loop;
  loupe::executor pool(1);
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    bool caught = false;
    try {
      (void)co_await pool.run([]() -> int { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "disk on fire";
    }
    EXPECT_TRUE(caught);
  });
}

TEST(Executor, LoopKeepsServingWhileWorkBlocksAndCountsAreVisible) {
  loupe::loop loop;
  loupe::executor pool(1, 1);
  std::atomic<bool> release{false};
  loupe::testkit::run(loop, [&]() -> awaitable<void> {
    int ticks = 0;
    auto ticker = [&]() -> awaitable<void> {
      for (int i = 0; i < 5; ++i) {
        co_await loupe::sleep_for(1ms);
        ++ticks;
      }
    };
    loupe::spawn(loop, "ticker", ticker());
    auto blocked = [&]() -> awaitable<void> {
      co_await pool.run([&] {
        while (!release) std::this_thread::yield();
      });
    };
    auto queued = [&]() -> awaitable<void> { co_await pool.run([] {}); };
    loupe::spawn(loop, "blocked", blocked());
    co_await loupe::testkit::wait_until([&] { return pool.busy() == 1; });
    loupe::spawn(loop, "queued", queued());
    co_await loupe::testkit::wait_until([&] { return pool.queued() == 1; });
    bool full = false;
    try {
      co_await pool.run([] {});  // the one queue slot is taken
    } catch (const loupe::executor_full&) {
      full = true;
    }
    EXPECT_TRUE(full);
    co_await loupe::testkit::wait_until([&] { return ticks == 5; });  // the loop went on meanwhile
    release = true;
    co_await loupe::testkit::wait_until([&] { return pool.busy() == 0 && pool.queued() == 0; });
    co_await loupe::testkit::wait_until([&] { return loop.live_task_count() == 1; });  // only "test"
  });
}

// A job's captures are destroyed exactly once (a shared_ptr captured by the
// job keeps its count right), whether the job returns or throws.
TEST(Executor, JobCapturesAreDestroyedOnce) {
  loupe::loop lp;
  loupe::executor pool(1);
  auto token = std::make_shared<int>(7);
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      // A named job: GCC 12 over-releases a capturing lambda written as a
      // temporary inside a co_await expression (see executor.hpp).
      auto job = [token] { return *token; };
      const int v = co_await pool.run(std::move(job));
      EXPECT_EQ(v, 7);
      EXPECT_EQ(token.use_count(), 1);
    }
    try {
      auto job = [token]() -> int { throw std::runtime_error("no"); };
      co_await pool.run(std::move(job));
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(token.use_count(), 1);
  });
  EXPECT_EQ(token.use_count(), 1);
}
