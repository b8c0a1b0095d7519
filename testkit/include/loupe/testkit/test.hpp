// loupe/testkit/test.hpp — functional tests of loupe applications, for GoogleTest.
//
//   LOUPE_TEST(Orders, ListsThem) {                  // a coroutine, on a fresh loop
//     auto& srv = server(make_shop_app());           // 127.0.0.1, port 0; the test keeps the app
//     auto& http = client(srv);
//     auto res = co_await http.get("/orders");
//     CO_ASSERT_EQ(res.status_code(), 200u);         // fatal: ends the test body
//     EXPECT_EQ(res.json().at("count"), 3);
//     EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/orders"}}), 1);
//   }
//
//   class Shop : public loupe::testkit::test { ... };   // a fixture of your own
//   LOUPE_TEST_F(Shop, Checkout) { ... co_await ...; }
//
//   TEST_F(Shop, Simplest) {                         // no coroutine at all
//     auto& srv = server(make_shop_app());
//     EXPECT_EQ(fetch(srv, "/health").text(), "ok");
//   }
//
// What every test gets, with nothing to set up:
// - A fresh loop (`loop`), driven on the test's own thread: no second thread.
//   The body runs as the task "test" under a deadline (30 s; set_deadline()).
//   use_virtual_time() puts the test on virtual time: timeouts of seconds or
//   minutes take none of real time, and a deadlock fails it at once.
//   Past it the test fails with the live tasks, what each waits on (operation,
//   object, the co_await's file:line), for how long, and the request it serves.
//   A body that never gives the thread back (a blocking call, or a loop that
//   swallows the cancellation) is ended 10 s past the deadline by a backstop
//   thread that prints the tasks and the loop thread's stack and exits 1.
// - The application's on_startup/on_shutdown hooks are not run by server();
//   call them in the body if the test needs them.
// - Servers and clients: server(app), raw_server(handler), client(srv) or
//   client(url); several servers in one loop, and map_host("pong.test", srv)
//   so that application code calling http://pong.test/... through any client
//   session on this loop reaches that server, with no DNS and no fixed port.
//   use_memory_network() puts the servers on the in-memory network (no
//   ports, no TCP); chaos(srv, faults) puts a chaos link in front of one
//   (network.hpp). One body can run on both networks, e.g. from a
//   parameterized fixture's SetUp.
// - Teardown in order: clients closed; then every server must have no open
//   connection (a test that leaves one open fails, naming it); servers shut
//   down gracefully; then no task may be left alive (a leaked task fails the
//   test with its name, spawn site and wait).
// - Log capture: every record as JSON (logs(), expect_log(), see logs.hpp). An
//   ERROR record nobody expected — an exception escaping a handler logs one —
//   fails the test; the captured log is printed when a test fails.
// - forbid_slow_callbacks(limit): any callback slower than `limit` during the
//   test fails it, naming the task, the request's route and what it resumed from.
//
// Inside a coroutine body use CO_ASSERT_* (GoogleTest's ASSERT_* `return`,
// which a coroutine cannot); EXPECT_* work as usual. With GCC 12, call
// server() and client() in statements of their own, not inside a co_await
// expression: GCC 12 destroys the temporaries of such a call (their default
// options) twice. `auto& http = client(srv); co_await http.get("/")` is fine.
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/clock.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/client.hpp>
#include <loupe/testkit/faults.hpp>
#include <loupe/testkit/logs.hpp>
#include <loupe/testkit/network.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/server.hpp>
#include <loupe/testkit/tls.hpp>
#include <loupe/testkit/wait.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::testkit {

class test : public ::testing::Test {
 public:
  /// Runs a coroutine test body under the deadline (what LOUPE_TEST calls).
  template <class F>
  void run_test_body(F&& make) {
    try {
      testkit::run(loop, std::forward<F>(make), deadline_);
    } catch (...) {
      report_body_exception(std::current_exception());
    }
  }

 protected:
  test();  // installs the log capture
  ~test() override;
  void SetUp() override;
  void TearDown() override;

  // -- servers and clients --------------------------------------------------
  /// Serves `app` on 127.0.0.1, port 0. The application must outlive the
  /// server (which lasts until the end of the test): a fixture member, or
  /// pass it by value and the test keeps it.
  test_server& server(application& app, server_options opts = {});
  test_server& server(application&& app, server_options opts = {});
  /// Serves one handler for every method and path.
  test_server& raw_server(handler h, server_options opts = {});
  /// A client for `srv` (paths are relative to its URL).
  test_client& client(const test_server& srv, client_options opts = {});
  /// A client whose requests cross the chaos link `link`.
  test_client& client(const chaos_link& link, client_options opts = {});
  /// (An https server's or URL's client trusts the test CA: tls.hpp.)
  test_client& client(std::string base_url, client_options opts = {});
  /// HTTPS: `server(app, {.tls = server_tls()})` (tls.hpp).
  static std::shared_ptr<tls_context> server_tls(const issue_options& o = {}) { return testkit::server_tls(o); }
  static std::shared_ptr<tls_context> server_tls(const tls_identity& id) { return testkit::server_tls(id); }
  /// Connections from this loop to `host` (any port) reach `srv`.
  void map_host(std::string host, const test_server& srv);
  void map_host(std::string host, const fault_server& srv);
  void map_host(std::string host, const chaos_link& link);
  void map_host(std::string host, const address& to);

  /// From now on, server() and raw_server() listen on the in-memory network
  /// (memory_network.hpp) instead of 127.0.0.1: no ports, no TCP, and an
  /// idle loop is exactly idle. Clients reach them by their url() as before.
  void use_memory_network() { network_ = testkit::network::memory; }
  void use_network(testkit::network n) { network_ = n; }
  testkit::network network_in_use() const noexcept { return network_; }
  /// A chaos link in front of `srv` (on its network; see network.hpp),
  /// closed before the servers at the end of the test.
  chaos_link& chaos(const test_server& srv, link_faults faults);
  /// One request run to completion on the test's loop, for tests that are
  /// not coroutines. Call it outside a coroutine body.
  client_response fetch(const test_server& srv, std::string_view path,
                        boost::beast::http::verb method = boost::beast::http::verb::get, request_options opts = {});

  // -- checks -----------------------------------------------------------------
  /// From now to the end of the test (teardown included), loupe::clock on
  /// this thread is virtual: it stands still while anything is ready or in
  /// flight and jumps to the next timer when the loop is idle, so a 75 s
  /// keep-alive timeout takes no real time; the body's deadline is on virtual
  /// time too (an hour by default, and still 30 s of real time at most); a
  /// loop idle with no timer pending fails the test at once as a
  /// deadlock, with the wait graph. Call it in SetUp, a fixture's
  /// constructor, or first thing in the body. See run.hpp for its limits.
  void use_virtual_time() {
    if (virtual_time_) return;
    virtual_time_.emplace();
    if (deadline_.get() == default_deadline) deadline_.set(virtual_default_deadline);
  }
  /// The test's virtual time, or nullptr.
  loupe::virtual_time* virtual_clock() noexcept { return virtual_time_ ? &*virtual_time_ : nullptr; }
  /// The body's deadline, counted from its start (also when set inside it).
  void set_deadline(std::chrono::steady_clock::duration d) { deadline_.set(d); }
  /// Fails the test if any callback runs longer than `limit` from now on.
  void forbid_slow_callbacks(std::chrono::milliseconds limit);
  /// Captured records matching `q` (all of them by default).
  std::vector<log_record> logs(const log_query& q = {}) const;
  /// A record matching `q` is expected: if it is an ERROR it does not fail
  /// the test, and the test fails if no record matches it by the end.
  void expect_log(log_query q);
  /// Whether the leak checks (connections, tasks) run; on by default. The
  /// log and slow-callback checks are not affected.
  void set_leak_check(bool on) { leak_check_ = on; }

 private:
  // Before `loop`: it outlives every timer of the loop.
  std::optional<loupe::virtual_time> virtual_time_;
  // Before `loop`: applications outlive the frames the loop destroys.
  std::deque<application> owned_apps_;

 protected:
  loupe::loop loop;

 private:
  void report_body_exception(std::exception_ptr e);
  void finish();
  void check_logs();
  void check_slow_callbacks();

  testkit::deadline deadline_{default_deadline};
  std::deque<std::unique_ptr<test_server>> servers_;
  std::deque<std::unique_ptr<test_client>> clients_;
  std::deque<std::unique_ptr<chaos_link>> links_;
  testkit::network network_ = testkit::network::tcp;
  std::vector<log_query> expected_logs_;
  log_capture capture_;
  std::optional<std::chrono::milliseconds> slow_limit_;
  std::chrono::milliseconds saved_slow_{0};
  bool leak_check_ = true;
  bool finished_ = false;
};

namespace detail {
/// Thrown by CO_ASSERT_* after reporting the failure; ends the test body.
struct fatal_failure {};

class co_fatal {
 public:
  co_fatal(const char* file, int line, const char* message)
      : helper_(::testing::TestPartResult::kFatalFailure, file, line, message) {}
  [[noreturn]] void operator=(const ::testing::Message& m) const {
    helper_ = m;
    throw fatal_failure{};
  }

 private:
  ::testing::internal::AssertHelper helper_;
};
}  // namespace detail

}  // namespace loupe::testkit

#define LOUPE_CO_FATAL_(message) ::loupe::testkit::detail::co_fatal(__FILE__, __LINE__, message) = ::testing::Message()

// Fatal assertions for coroutine bodies; a message can be streamed as with ASSERT_*.
#define CO_ASSERT_TRUE(c) GTEST_TEST_BOOLEAN_(c, #c, false, true, LOUPE_CO_FATAL_)
#define CO_ASSERT_FALSE(c) GTEST_TEST_BOOLEAN_(!(c), #c, true, false, LOUPE_CO_FATAL_)
#define CO_ASSERT_EQ(a, b) GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, LOUPE_CO_FATAL_)
#define CO_ASSERT_NE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperNE, a, b, LOUPE_CO_FATAL_)
#define CO_ASSERT_LT(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperLT, a, b, LOUPE_CO_FATAL_)
#define CO_ASSERT_LE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperLE, a, b, LOUPE_CO_FATAL_)
#define CO_ASSERT_GT(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGT, a, b, LOUPE_CO_FATAL_)
#define CO_ASSERT_GE(a, b) GTEST_PRED_FORMAT2_(::testing::internal::CmpHelperGE, a, b, LOUPE_CO_FATAL_)

#define LOUPE_TEST_BASE_(suite, name) suite##_##name##_LoupeBody

// A test whose body is a coroutine, on the fixture `fixture` (derived from loupe::testkit::test).
#define LOUPE_TEST_F(fixture, name)                                                                        \
  class LOUPE_TEST_BASE_(fixture, name) : public fixture {                                                 \
   protected:                                                                                              \
    ::loupe::awaitable<void> loupe_body();                                                                 \
  };                                                                                                       \
  GTEST_TEST_(fixture, name, LOUPE_TEST_BASE_(fixture, name), ::testing::internal::GetTypeId<fixture>()) { \
    this->run_test_body([this] { return this->loupe_body(); });                                            \
  }                                                                                                        \
  ::loupe::awaitable<void> LOUPE_TEST_BASE_(fixture, name)::loupe_body()

// A test whose body is a coroutine, on loupe::testkit::test.
#define LOUPE_TEST(suite, name)                                                                                       \
  class LOUPE_TEST_BASE_(suite, name) : public ::loupe::testkit::test {                                               \
   protected:                                                                                                         \
    ::loupe::awaitable<void> loupe_body();                                                                            \
  };                                                                                                                  \
  GTEST_TEST_(suite, name, LOUPE_TEST_BASE_(suite, name), ::testing::internal::GetTypeId<::loupe::testkit::test>()) { \
    this->run_test_body([this] { return this->loupe_body(); });                                                       \
  }                                                                                                                   \
  ::loupe::awaitable<void> LOUPE_TEST_BASE_(suite, name)::loupe_body()
