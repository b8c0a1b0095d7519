// A client that gives up mid-request: the access record says 499 "client
// closed request" (with the handler's own status as a field), the metrics
// count a 499, nothing is written, request::client_gone() tells the handler,
// and with server_options::cancel_on_client_gone the handler is cancelled.
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/test.hpp>

#include <gtest/gtest.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

// Short timeouts: the server's sweep (which notices gone clients) ticks
// every 20 ms.
loupe::server_options quick() {
  loupe::server_options o;
  o.header_timeout = 200ms;
  return o;
}

struct slow_app {
  loupe::application app;
  bool started = false;
  bool finished = false;
  bool cancelled = false;
  slow_app() {
    app.get("/slow", [this](request&) -> awaitable<response> {
      started = true;
      try {
        co_await loupe::sleep_for(600ms);
      } catch (...) {
        cancelled = true;
        throw;
      }
      finished = true;
      co_return response::text("done");
    });
  }
};

}  // namespace

LOUPE_TEST(ClientGone, TheRequestIsRecordedAs499AndTheHandlerRunsOn) {
  slow_app s;
  auto& srv = server(s.app, quick());
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return s.started; });
  c.close();  // the client gives up
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  // Off by default: the handler ran to its end.
  EXPECT_TRUE(s.finished);
  EXPECT_FALSE(s.cancelled);
  const auto recs = logs({.logger = "loupe.access"});
  CO_ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].field("status"), "499");
  EXPECT_EQ(recs[0].field("client_gone"), "true");
  EXPECT_EQ(recs[0].field("handler_status"), "200");
  EXPECT_EQ(recs[0].field("response_bytes"), "0");
  EXPECT_EQ(recs[0].field("route"), "/slow");
  EXPECT_NE(recs[0].msg.find("499 (client closed request)"), std::string::npos) << recs[0].line;
  EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/slow"}, {"http_response_status_code", "499"}}), 1);
  EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/slow"}, {"http_response_status_code", "200"}}),
            std::nullopt);
}

LOUPE_TEST(ClientGone, CancelOnClientGoneCancelsTheHandler) {
  slow_app s;
  auto opts = quick();
  opts.cancel_on_client_gone = true;
  auto& srv = server(s.app, opts);
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return s.started; });
  c.close();
  co_await loupe::testkit::wait_until([&] { return s.cancelled; });
  EXPECT_FALSE(s.finished);
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  const auto recs = logs({.logger = "loupe.access"});
  CO_ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].field("status"), "499");
  // How the request's task ended: cancelled, by the client.
  bool found = false;
  for (const auto& f : loop.finished_tasks())
    if (f.info.name == "http.request" && f.info.request.route == "/slow") {
      found = true;
      EXPECT_EQ(f.outcome, loupe::task_outcome::cancelled);
      EXPECT_EQ(f.cancelled_by, loupe::cancel_source::client);
      EXPECT_TRUE(f.info.request.client_gone);
    }
  EXPECT_TRUE(found);
}

// The handler can ask: a long poll stops when its client has left.
LOUPE_TEST(ClientGone, TheHandlerCanAskWhetherItsClientIsThere) {
  loupe::application app;
  bool was_there = false;
  bool saw_gone = false;
  int polls = 0;
  app.get("/poll", [&](request& req) -> awaitable<response> {
    was_there = !req.client_gone();
    while (!req.client_gone()) {
      ++polls;
      co_await loupe::sleep_for(5ms);
    }
    saw_gone = true;
    co_return response::text("nobody");
  });
  auto& srv = server(app);
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /poll HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return polls >= 3; });  // it asked, and asked again
  EXPECT_TRUE(was_there);
  EXPECT_FALSE(saw_gone);
  c.close();
  co_await loupe::testkit::wait_until([&] { return saw_gone; });
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  const auto recs = logs({.logger = "loupe.access"});
  CO_ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].field("status"), "499");
}

// A client that stays gets its answer, and one whose next request is already
// buffered (pipelined) is not taken for gone.
LOUPE_TEST(ClientGone, ClientsThatStayAreAnswered) {
  slow_app s;
  auto& srv = server(s.app, quick());
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  const auto first = co_await c.read_response();
  EXPECT_EQ(first.result_int(), 200u);
  const auto second = co_await c.read_response();
  EXPECT_EQ(second.result_int(), 200u);
  for (const auto& r : logs({.logger = "loupe.access"})) EXPECT_EQ(r.field("status"), "200") << r.line;
}
