// Task tracking: waits with source locations, slow callbacks, the watchdog,
// cancellation and the finished ring — at the API level, over real sockets.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/fixture.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "core/symbolize.hpp"

#include <execinfo.h>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::testkit::http_response;
using loupe::testkit::raw_client;
using namespace std::chrono_literals;

[[gnu::noinline]] void tracking_test_block(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

namespace {

awaitable<void> pause(std::chrono::milliseconds d) { return loupe::sleep_for(d); }

template <class F>
awaitable<void> until(F cond) {
  return loupe::testkit::wait_until(std::move(cond));
}

int timer_wait_line = 0;
int sleep_for_line = 0;
int default_token_line = 0;
// A timer whose operations complete with use_awaitable by default.
using default_timer = asio::use_awaitable_t<>::as_default_on_t<asio::steady_timer>;

class Tracking : public loupe::testkit::server_fixture {
 protected:
  void SetUp() override {
    saved_ = loupe::get_tracking_options();
    app.get("/sleep", [](request& req) -> awaitable<response> {
      const auto ms = std::stoi(std::string(req.query().get("ms").value_or("0")));
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      timer_wait_line = __LINE__ + 1;
      co_await t.async_wait(asio::use_awaitable_t<>{});
      co_return response::text("slept");
    });
    app.get("/sleep-for", [](request&) -> awaitable<response> {
      sleep_for_line = __LINE__ + 1;
      co_await loupe::sleep_for(60s);
      co_return response::text("slept");
    });
    app.get("/sleep-default", [](request&) -> awaitable<response> {
      default_timer t(co_await asio::this_coro::executor, 60s);
      default_token_line = __LINE__ + 1;
      co_await t.async_wait();
      co_return response::text("slept");
    });
    app.get("/block", [this](request& req) -> awaitable<response> {
      const auto ms = std::stoi(std::string(req.query().get("ms").value_or("0")));
      tracking_test_block(std::chrono::milliseconds(ms));
      // Still inside the blocking callback: what has the watchdog said so far?
      stalls_seen_in_handler = 0;
      for (const auto& e : loop.slow_events())
        if (e.type == loupe::slow_event::kind::stall) ++stalls_seen_in_handler;
      co_return response::text("blocked");
    });
  }
  void TearDown() override {
    server_fixture::TearDown();  // the end-of-test checks, with the thresholds still in place
    loupe::set_tracking_options(saved_);
  }

  std::optional<loupe::task_info> request_task(std::string_view route) {
    for (auto& t : loop.tasks())
      if (t.name == "http.request" && t.request.route == route) return t;
    return std::nullopt;
  }

  loupe::tracking_options saved_;
  int stalls_seen_in_handler = -1;
};

}  // namespace

TEST_F(Tracking, SuspendedRequestTaskShowsItsTimerWaitAndCoAwaitLocation) {
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send("GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await until([&] {
      return request_task("/sleep").has_value() && request_task("/sleep")->state == loupe::task_state::suspended;
    });
    auto t = *request_task("/sleep");
    EXPECT_EQ(t.request.method, "GET");
    EXPECT_EQ(t.request.target, "/sleep?ms=60000");
    EXPECT_STREQ(t.wait.operation, "async_wait");
    EXPECT_STREQ(t.wait.object, "deadline_timer");
    EXPECT_NE(t.wait.file, nullptr);
    if (!t.wait.file) co_return;
    EXPECT_NE(std::string(t.wait.file).find("tracking_test.cpp"), std::string::npos) << t.wait.file << ":" << t.wait.line;
    EXPECT_EQ(t.wait.line, timer_wait_line);
    EXPECT_GE(t.resume_count, 1u);
    EXPECT_NE(t.parent_id, 0u);  // the connection's task
    auto parent = loop.find_task(t.parent_id);
    EXPECT_TRUE(parent.has_value());
    if (parent) {
      EXPECT_EQ(parent->name, "http.connection");
    }
    c.close();
    co_await srv->shutdown(0ms);
  });
}

TEST_F(Tracking, DefaultCompletionTokenCarriesTheCallSite) {
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send("GET /sleep-default HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await until([&] {
      return request_task("/sleep-default").has_value() &&
             request_task("/sleep-default")->state == loupe::task_state::suspended;
    });
    auto t = *request_task("/sleep-default");
    EXPECT_NE(t.wait.file, nullptr);
    if (!t.wait.file) co_return;
    EXPECT_NE(std::string(t.wait.file).find("tracking_test.cpp"), std::string::npos) << t.wait.file << ":" << t.wait.line;
    EXPECT_EQ(t.wait.line, default_token_line);
    c.close();
    co_await srv->shutdown(0ms);
  });
}

TEST_F(Tracking, SlowCallbackIsRecordedOnceWithTaskAndRoute) {
  loupe::set_tracking_options({.slow_callback = 50ms, .watchdog = 0ms});
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    EXPECT_EQ((co_await c.request(http::verb::get, "/block?ms=120")).result_int(), 200);
    EXPECT_EQ((co_await c.request(http::verb::get, "/block?ms=0")).result_int(), 200);
  });
  auto events = loop.slow_events();
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.type, loupe::slow_event::kind::slow_callback);
  EXPECT_GE(e.duration, 120ms);
  EXPECT_EQ(e.task_name, "http.request");
  EXPECT_EQ(e.request.route, "/block");
  EXPECT_EQ(e.request.method, "GET");
  EXPECT_EQ(loop.stats().slow_callbacks, 1u);
}

TEST_F(Tracking, WatchdogReportsTheStallWhileTheLoopIsStillBlocked) {
  expect_log({.level = spdlog::level::err, .message = "watchdog: loop 'main' has been blocked"});
  loupe::set_tracking_options({.slow_callback = 0ms, .watchdog = 200ms});
  // The first naming of a stack reads the debug information: a few hundred ms
  // here, over a second under TSan, and the report would come after the block.
  // run_app has it read at start-up (prepare_stack_names); this test reads it
  // now, naming a stack of the same units as the blocked one.
  void* frames[64];
  (void)loupe::detail::symbolize(frames, ::backtrace(frames, 64), false);
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    EXPECT_EQ((co_await c.request(http::verb::get, "/block?ms=1500")).result_int(), 200);
  });
  // Counted by the handler itself, before it returned: the report came during the stall.
  EXPECT_EQ(stalls_seen_in_handler, 1);
  auto events = loop.slow_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, loupe::slow_event::kind::stall);
  EXPECT_EQ(events[0].request.route, "/block");
  EXPECT_NE(events[0].stack.find("tracking_test_block"), std::string::npos) << events[0].stack;
  EXPECT_EQ(loop.stats().stalls, 1u);
  // The "stall ended" record is the stalling task's too (it said "task":"").
  const auto ended = logs({.message = "stall ended"});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].field("task"), "http.request") << ended[0].line;
  EXPECT_NE(ended[0].field("request_id").value_or(""), "") << ended[0].line;
  EXPECT_EQ(ended[0].field("route"), "/block") << ended[0].line;
  EXPECT_NE(ended[0].msg.find("serving GET /block?ms=1500"), std::string::npos) << ended[0].line;
}

TEST_F(Tracking, CancellingASuspendedRequestAnswers503AndTheServerGoesOn) {
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send("GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await until([&] { return request_task("/sleep").has_value(); });
    const auto id = request_task("/sleep")->id;
    EXPECT_EQ(loop.cancel(id, loupe::cancel_source::console), loupe::cancel_result::requested);
    auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 503);
    co_await until([&] { return loop.find_finished(id).has_value(); });
    auto f = *loop.find_finished(id);
    EXPECT_EQ(f.outcome, loupe::task_outcome::cancelled);
    EXPECT_EQ(f.cancelled_by, loupe::cancel_source::console);
    EXPECT_EQ(f.info.request.route, "/sleep");
    EXPECT_EQ(loop.cancel(id), loupe::cancel_result::not_found);
    raw_client next(loop.get_executor());
    co_await next.connect(ep);
    EXPECT_EQ((co_await next.request(http::verb::get, "/sleep?ms=1")).result_int(), 200);
  });
}

TEST_F(Tracking, FinishedRingKeepsOutcomesAndIsBounded) {
  loop.set_finished_capacity(3);
  run([&]() -> awaitable<void> {
    auto ok = []() -> awaitable<int> { co_return 1; };
    auto bad = []() -> awaitable<int> {
      throw std::runtime_error("boom");
      co_return 0;
    };
    for (int i = 0; i < 3; ++i) (void)co_await loupe::spawn(loop, "ok", ok(), asio::use_awaitable);
    try {
      (void)co_await loupe::spawn(loop, "bad", bad(), asio::use_awaitable);
    } catch (const std::runtime_error&) {
    }
  });
  // Five tasks ended (three "ok", "bad", then the runner's own "test"); the ring keeps the last three.
  auto f = loop.finished_tasks();
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].info.name, "ok");
  EXPECT_EQ(f[0].outcome, loupe::task_outcome::ok);
  EXPECT_EQ(f[1].info.name, "bad");
  EXPECT_EQ(f[1].outcome, loupe::task_outcome::error);
  EXPECT_EQ(f[1].error, "boom");
  EXPECT_EQ(f[2].info.name, "test");
  EXPECT_EQ(f[2].error, "");  // its slot, reused, held an "ok" before
  EXPECT_EQ(loop.live_task_count(), 0u);
  // Shrinking keeps the newest; growing keeps what is there.
  loop.set_finished_capacity(2);
  f = loop.finished_tasks();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].info.name, "bad");
  EXPECT_EQ(f[1].info.name, "test");
  EXPECT_EQ(loop.find_finished(f[0].info.id)->error, "boom");
  loop.set_finished_capacity(10);
  EXPECT_EQ(loop.finished_tasks().size(), 2u);
  loop.set_finished_capacity(0);
  EXPECT_TRUE(loop.finished_tasks().empty());
}

TEST_F(Tracking, BusyTimeAndResumesAreCounted) {
  run([&]() -> awaitable<void> {
    auto worker = [&]() -> awaitable<void> {
      for (int i = 0; i < 3; ++i) co_await pause(1ms);
      tracking_test_block(20ms);
    };
    const auto id = loupe::spawn(loop, "worker", worker());
    co_await until([&] { return loop.find_finished(id).has_value(); });
    auto f = *loop.find_finished(id);
    EXPECT_GE(f.info.resume_count, 4u);
    EXPECT_GE(f.info.busy, 20ms);
    EXPECT_EQ(f.outcome, loupe::task_outcome::ok);
  });
}

TEST_F(Tracking, SleepForShowsTheCallersLine) {
  start();
  run([&]() -> awaitable<void> {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send("GET /sleep-for HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await until([&] {
      return request_task("/sleep-for").has_value() && request_task("/sleep-for")->state == loupe::task_state::suspended;
    });
    auto t = *request_task("/sleep-for");
    EXPECT_STREQ(t.wait.object, "deadline_timer");
    EXPECT_NE(t.wait.file, nullptr);
    if (t.wait.file) {
      EXPECT_NE(std::string(t.wait.file).find("tracking_test.cpp"), std::string::npos) << t.wait.file;
    }
    EXPECT_EQ(t.wait.line, sleep_for_line);
    c.close();
    co_await srv->shutdown(0ms);
  });
}

TEST_F(Tracking, LoopLagHistogramSeesABlockedLoop) {
  loupe::set_tracking_options({.slow_callback = 0ms, .watchdog = 0ms});
  loop.enable_lag_sampling(5ms);
  run([&]() -> awaitable<void> {
    co_await pause(20ms);
    tracking_test_block(120ms);  // the sampling timer fires ~115 ms late
    co_await pause(20ms);
  });
  const auto s = loop.stats();
  EXPECT_GE(s.lag_count, 3u);
  EXPECT_GE(s.lag_max, 100ms);
  std::uint64_t total = 0;
  for (auto c : s.lag_buckets) total += c;
  EXPECT_EQ(total, s.lag_count);
  EXPECT_GE(s.lag_buckets[9] + s.lag_buckets[10], 1u);  // a sample in (50 ms, 250 ms]
  EXPECT_LE(s.lag_p50, s.lag_p99);
}

// A reader copying a large registry (the console's `ps` over 5,000 held
// connections) lets the loop's thread take the registry's lock between
// slices: a task the loop starts in the middle of the walk is started then —
// and so appears in the same snapshot — instead of waiting for the whole walk.
namespace {
std::atomic<bool> walk_started{false}, spawn_wanted{false}, spawn_done{false};
void walk_hook() {  // on the reading thread, between slices, the registry locked
  walk_started = true;
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!spawn_wanted && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  if (!spawn_done) std::this_thread::sleep_for(1ms);  // time for the loop thread to ask for the lock
}
awaitable<void> nap_an_hour() { co_await loupe::sleep_for(1h); }
}  // namespace

TEST(Registry, AReaderOfManyTasksLetsTheLoopInBetweenSlices) {
  loupe::loop loop;
  std::vector<std::uint64_t> held;
  for (int i = 0; i < 5000; ++i) held.push_back(loupe::spawn(loop, "held", nap_an_hour()));
  loop.run_for(50ms);  // all suspended
  loupe::detail::set_registry_walk_hook_for_test(&walk_hook);
  std::vector<loupe::task_info> seen;
  std::thread reader([&] { seen = loop.tasks(); });
  while (!walk_started) std::this_thread::yield();  // the reader holds the lock, mid-walk
  spawn_wanted = true;
  const auto newcomer = loupe::spawn(loop, "newcomer", nap_an_hour());  // takes the registry's lock
  spawn_done = true;
  reader.join();
  loupe::detail::set_registry_walk_hook_for_test(nullptr);
  EXPECT_EQ(seen.size(), 5001u);
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [&](const auto& t) { return t.id == newcomer; }))
      << "the loop got the registry only after the whole walk";
  for (const auto& t : seen) EXPECT_NE(t.id, 0u);  // no walk's cursor leaks into a snapshot
  for (auto id : held) loop.cancel(id);
  loop.cancel(newcomer);
  for (int i = 0; i < 100 && loop.live_task_count() != 0; ++i) loop.run_for(100ms);  // slower under sanitizers
  EXPECT_EQ(loop.live_task_count(), 0u);
}
