// cancel over a live loop: it reports how the task ended, and the ring of
// finished tasks (ps-terminated, where-terminated) keeps it.
#include <loupe/monitor/console.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <gtest/gtest.h>

#include <vector>

using loupe::test_support::console_client;
using loupe::test_support::nap;
using namespace std::chrono_literals;
namespace http = boost::beast::http;

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

// Cancelling a connection's task closes that connection cleanly: an idle one
// at once (the client reads its end, no reset); a busy one's request is
// cancelled and answered 503 with Connection: close, then it closes.
LOUPE_TEST_F(Console, CancellingAConnectionClosesItCleanly) {
  console.start();
  loupe::application app;
  loupe::steady_timer gate(loop.get_executor(), loupe::steady_timer::time_point::max());
  app.get("/", [](loupe::request&) -> loupe::awaitable<loupe::response> { co_return loupe::response::text("hi"); });
  app.get("/wait", [&](loupe::request&) -> loupe::awaitable<loupe::response> {
    co_await gate.async_wait(loupe::here());  // throws when cancelled
    co_return loupe::response::text("answered");
  });
  auto& srv = server(app);
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto connection_ids = [&] {
    std::vector<std::uint64_t> ids;
    for (const auto& t : loop.tasks())
      if (t.name == "http.connection") ids.push_back(t.id);
    return ids;
  };

  // Idle, after one request.
  loupe::testkit::raw_client idle(loop.get_executor());
  co_await idle.connect(srv.endpoint());
  EXPECT_EQ((co_await idle.request(http::verb::get, "/")).result_int(), 200u);
  CO_ASSERT_EQ(connection_ids().size(), 1u);
  const auto said = co_await c.command("cancel " + std::to_string(connection_ids()[0]));
  EXPECT_NE(said.find("instead, this closes the connection"), std::string::npos) << said;
  EXPECT_TRUE(co_await idle.closed_by_peer());
  co_await loupe::testkit::wait_until([&] { return connection_ids().empty(); });

  // Busy: the request in flight is cancelled and answered, then the connection closes.
  loupe::testkit::raw_client busy(loop.get_executor());
  co_await busy.connect(srv.endpoint());
  co_await busy.send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return srv.native().requests_in_flight() == 1; });
  (void)co_await c.command("cancel " + std::to_string(connection_ids()[0]));
  const auto res = co_await busy.read_response();
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(co_await busy.closed_by_peer());
}
