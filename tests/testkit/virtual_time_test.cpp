// Virtual time (use_virtual_time), settle(), join() and deadlock detection,
// as a test author uses them; the failing cases run in child processes.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/executor.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/test.hpp>

#include <boost/asio/experimental/channel.hpp>
#include <gtest/gtest.h>

#include "support/child_test.hpp"

#include <fstream>
#include <optional>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace {

// A test on virtual time, and how much of it has passed since the start.
class VirtualTime : public loupe::testkit::test {
 protected:
  VirtualTime() {
    use_virtual_time();
    started_ = loupe::clock::now();
  }
  loupe::clock::duration elapsed() const { return loupe::clock::now() - started_; }

 private:
  loupe::clock::time_point started_;
};

// GET /hour sleeps an hour; GET /flaky answers 503 twice, then 200.
loupe::application timing_app(int& flaky_calls) {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("ok"); });
  app.get("/hour", [](request&) -> awaitable<response> {
    co_await loupe::sleep_for(1h);
    co_return response::text("an hour later");
  });
  app.get("/flaky", [&flaky_calls](request&) -> awaitable<response> {
    if (++flaky_calls <= 2) co_return response::text("try again", http::status::service_unavailable);
    co_return response::text("ok");
  });
  return app;
}

// `n` GETs of / through `http`, counting the 200s in `fetched`: background work.
awaitable<void> fetch_root(loupe::testkit::test_client& http, int n, int& fetched) {
  for (int i = 0; i < n; ++i)
    if ((co_await http.get("/")).status_code() == 200) ++fetched;
}

}  // namespace

LOUPE_TEST_F(VirtualTime, AnHourOfSleepTakesNoRealTime) {
  const auto real_start = std::chrono::steady_clock::now();
  co_await loupe::sleep_for(1h);
  EXPECT_EQ(elapsed(), 1h);
  // The clock jumped: it did not run. (Not a timing check: an hour could not pass.)
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, 1h);
}

LOUPE_TEST_F(VirtualTime, TheDefault75sKeepAliveTimeoutClosesAnIdleConnection) {
  int calls = 0;
  auto& srv = server(timing_app(calls));  // default options: keep-alive 75 s
  loupe::testkit::raw_client c(loop.get_executor(), 10min);
  co_await c.connect(srv.endpoint());
  EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
  const auto idle_from = loupe::clock::now();
  EXPECT_TRUE(co_await c.closed_by_peer());
  const auto idle = loupe::clock::now() - idle_from;
  // Closed by the sweeper's first tick (1 s) at or after the deadline.
  EXPECT_GE(idle, 75s);
  EXPECT_LE(idle, 76s);
}

LOUPE_TEST_F(VirtualTime, ARetryBackOffOf30sTakesNoRealTime) {
  int calls = 0;
  auto& srv = server(timing_app(calls));
  auto& http = client(srv);
  unsigned status = 0;
  int attempts = 0;
  for (; attempts < 5; ++attempts) {
    if (attempts > 0) co_await loupe::sleep_for(30s);  // the back-off
    status = (co_await http.get("/flaky")).status_code();
    if (status == 200) break;
  }
  EXPECT_EQ(status, 200u);
  EXPECT_EQ(attempts, 2);
  // Requests take no virtual time: only the two back-offs count.
  EXPECT_EQ(elapsed(), 60s);
}

LOUPE_TEST_F(VirtualTime, AClientTimeoutOf30sFiresAt30s) {
  int calls = 0;
  auto& srv = server(timing_app(calls));
  loupe::client_session session(loop);
  std::optional<loupe::client_errc> failed;
  try {
    (void)co_await session.get(srv.url("/hour"), {.timeout = 30s});
  } catch (const loupe::client_error& e) {
    failed = static_cast<loupe::client_errc>(e.code().value());
  }
  EXPECT_EQ(failed, loupe::client_errc::timeout);
  EXPECT_EQ(elapsed(), 30s);
  // The handler still sleeps for the client that gave up: end it.
  for (const auto& t : loop.tasks())
    if (t.request.route == "/hour") loop.cancel(t.id);
  co_await loupe::testkit::wait_until([&] { return srv.native().requests_in_flight() == 0; });
  co_await session.close();
}

LOUPE_TEST_F(VirtualTime, AGracePeriodOf10sEndsWhatOutlivesIt) {
  int calls = 0;
  auto& srv = server(timing_app(calls));
  loupe::testkit::raw_client c(loop.get_executor(), 10min);
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /hour HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return srv.native().requests_in_flight() == 1; });
  const auto from = loupe::clock::now();
  co_await srv.native().shutdown(10s);
  const auto took = loupe::clock::now() - from;
  EXPECT_GE(took, 10s);
  EXPECT_LT(took, 13s);  // the grace, then at most a second each to cancel and to close
  EXPECT_EQ(srv.native().connection_count(), 0u);
  const auto res = co_await c.read_response();
  EXPECT_EQ(res.result_int(), 503);  // the cancelled request's answer
}

LOUPE_TEST_F(VirtualTime, AReaderThatStallsTripsTheDefault60sWriteTimeout) {
  loupe::application app;
  app.get("/big", [](request&) -> awaitable<response> { co_return response::text(std::string(16 << 20, 'x')); });
  auto& srv = server(std::move(app));  // default options: write timeout 60 s
  loupe::testkit::raw_client reader(loop.get_executor(), 10min);
  reader.set_receive_buffer(4096);
  co_await reader.connect(srv.endpoint());
  co_await reader.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  // 16 KiB every 10 s: the 16 MiB response would take three hours.
  const auto from = loupe::clock::now();
  auto got = co_await reader.read_slowly(16 * 1024, 10s, 16 << 20);
  EXPECT_TRUE(got.closed_by_peer);
  EXPECT_LT(got.bytes, std::size_t{16 << 20});
  // Cut off at the write timeout, seen at the reader's next read.
  EXPECT_GE(loupe::clock::now() - from, 60s);
  EXPECT_LE(loupe::clock::now() - from, 72s);
}

LOUPE_TEST_F(VirtualTime, WaitUntilPollsOnVirtualTime) {
  bool flag = false;
  auto later = [&]() -> awaitable<void> {
    co_await loupe::sleep_for(10min);
    flag = true;
  };
  loupe::spawn(loop, "later", later());
  co_await loupe::testkit::wait_until([&] { return flag; }, 1s);
  EXPECT_TRUE(flag);
  // Seen by the first poll after the sleeper woke (they may be due together).
  EXPECT_GE(elapsed(), 10min);
  EXPECT_LE(elapsed(), 10min + 1s);
}

LOUPE_TEST_F(VirtualTime, TheClockStandsStillWhileTheExecutorWorks) {
  loupe::executor pool(1);
  bool hour_passed = false;
  auto alarm = [&]() -> awaitable<void> {
    co_await loupe::sleep_for(1h);
    hour_passed = true;
  };
  const auto alarm_id = loupe::spawn(loop, "alarm", alarm());
  // Real work on another thread: the loop is idle meanwhile, but not done.
  const auto sum = co_await pool.run([] {
    std::uint64_t s = 0;
    for (std::uint64_t i = 0; i < 20'000'000; ++i) s += i ^ (s >> 3);
    return s;
  });
  EXPECT_NE(sum, 0u);
  EXPECT_FALSE(hour_passed);
  EXPECT_EQ(elapsed(), 0s);
  co_await loupe::join(loop, alarm_id);
  EXPECT_TRUE(hour_passed);
  EXPECT_EQ(elapsed(), 1h);
}

LOUPE_TEST_F(VirtualTime, SettleWaitsForBackgroundWorkNotForSleepers) {
  int calls = 0;
  auto& srv = server(timing_app(calls));
  auto& http = client(srv);
  int fetched = 0;
  bool woke = false;
  auto sleeper = [&]() -> awaitable<void> {
    co_await loupe::sleep_for(10s);
    woke = true;
  };
  loupe::spawn(loop, "warm-cache", fetch_root(http, 5, fetched));
  const auto sleeper_id = loupe::spawn(loop, "sleeper", sleeper());
  co_await loupe::testkit::settle();
  EXPECT_EQ(fetched, 5);   // the background requests are done ...
  EXPECT_FALSE(woke);      // ... and the sleeper still sleeps: settle() moves no time
  EXPECT_EQ(elapsed(), 0s);
  co_await loupe::join(loop, sleeper_id);
  EXPECT_TRUE(woke);
  EXPECT_EQ(elapsed(), 10s);
}

LOUPE_TEST(Settle, WorksOnRealTimeToo) {
  int calls = 0;
  auto& srv = server(timing_app(calls));
  auto& http = client(srv);
  int fetched = 0;
  loupe::spawn(loop, "warm-cache", fetch_root(http, 3, fetched));
  co_await loupe::testkit::settle();
  EXPECT_EQ(fetched, 3);
}

TEST(VirtualTimeRun, TheDeadlineIsOnVirtualTime) {
  loupe::virtual_time vt;
  loupe::loop loop;
  const auto start = loupe::clock::now();
  try {
    loupe::testkit::run(
        loop, []() -> awaitable<void> { co_await loupe::sleep_for(1h); }, 30s);
    ADD_FAILURE() << "no deadline_exceeded";
  } catch (const loupe::testkit::deadline_exceeded& e) {
    EXPECT_NE(std::string(e.what()).find("test deadline of 30000 ms of virtual time exceeded"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("'test' suspended"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("its next timer is due at 3600.000 s of virtual time, after the deadline"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(loupe::clock::now() - start, 30s);
  EXPECT_EQ(loop.live_task_count(), 0u);
}

// ---- failing on purpose, each run in a child process -----------------------

LOUPE_TEST_F(VirtualTime, DISABLED_TwoTasksJoinEachOther) {
  std::uint64_t alpha_id = 0;
  auto beta = [&]() -> awaitable<void> {
    co_await loupe::join(loop, alpha_id);  // BETA-JOINS-ALPHA
  };
  auto alpha = [&]() -> awaitable<void> {
    alpha_id = loupe::current_task_context().id;
    const auto beta_id = loupe::spawn(loop, "beta", beta());
    co_await loupe::join(loop, beta_id);  // ALPHA-JOINS-BETA
  };
  co_await loupe::join(loop, loupe::spawn(loop, "alpha", alpha()));
}

LOUPE_TEST_F(VirtualTime, DISABLED_AHandlerAwaitsAChannelNobodyWrites) {
  set_leak_check(false);  // the handler is left waiting: the deadlock is what is shown
  boost::asio::experimental::channel<void(boost::system::error_code, int)> orders(loop.context());
  loupe::application app;
  app.get("/next-order", [&orders](request&) -> awaitable<response> {
    const int n = co_await orders.async_receive(loupe::here());  // NOBODY-WRITES
    co_return response::text(std::to_string(n));
  });
  auto& srv = server(std::move(app));
  auto& http = client(srv, {.request_timeout = 0ms});  // no client timeout: only the deadlock can end it
  (void)co_await http.get("/next-order");
}

namespace {

using loupe_test::run_child;

// The line of this file that holds `marker`, as "virtual_time_test.cpp:N".
std::string line_of(const std::string& marker) {
  std::ifstream in(__FILE__);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.find("// " + marker) != std::string::npos) return "virtual_time_test.cpp:" + std::to_string(n);
  }
  return "(no line with " + marker + ")";
}

}  // namespace

TEST(VirtualTimeChecks, TwoTasksJoiningEachOtherFailAtOnceAsACycle) {
  const auto r = run_child("VirtualTime.DISABLED_TwoTasksJoinEachOther");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("deadlock on loop 'main'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("test deadline"), std::string::npos) << r.out;  // found before any deadline
  EXPECT_NE(r.out.find("a cycle of tasks awaiting each other:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'alpha' awaits #"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'beta' awaits #"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(line_of("ALPHA-JOINS-BETA")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(line_of("BETA-JOINS-ALPHA")), std::string::npos) << r.out;
}

TEST(VirtualTimeChecks, AHandlerAwaitingAChannelNobodyWritesFailsAtOnceAsADeadlock) {
  const auto r = run_child("VirtualTime.DISABLED_AHandlerAwaitsAChannelNobodyWrites");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("deadlock on loop 'main'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("test deadline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'http.request' suspended"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("async_receive on channel at "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(line_of("NOBODY-WRITES")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("serving GET /next-order"), std::string::npos) << r.out;
}
