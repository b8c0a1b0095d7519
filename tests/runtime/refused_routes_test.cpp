// Requests refused before their handler (413) or by the router (405) are
// recorded under the route they reached, with the fields of any access
// record, and as a request task that ps-terminated keeps. A 413 for
// POST /echo was counted and logged under _unmatched, with no task id and an
// empty user agent; a 405 was _unmatched too.
#include <loupe/testkit/test.hpp>

#include <gtest/gtest.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;

namespace {
loupe::application echo_app() {
  loupe::application app;
  app.post("/echo/{what}", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
  app.set_client_max_size(16);
  return app;
}
}  // namespace

LOUPE_TEST(RefusedRoutes, A413IsRecordedUnderItsRouteAsARequestTask) {
  auto& srv = server(echo_app());
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send(
      "POST /echo/x HTTP/1.1\r\nHost: t\r\nUser-Agent: uploader/1.0\r\nX-Request-ID: up-1\r\nContent-Length: 1000\r\n\r\n");
  const auto res = co_await c.read_response();
  EXPECT_EQ(res.result_int(), 413u);
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  const auto recs = logs({.logger = "loupe.access"});
  CO_ASSERT_EQ(recs.size(), 1u);
  const auto& r = recs[0];
  EXPECT_EQ(r.field("status"), "413");
  EXPECT_EQ(r.field("route"), "/echo/{what}") << r.line;
  EXPECT_EQ(r.field("user_agent"), "uploader/1.0") << r.line;
  EXPECT_EQ(r.field("request_id"), "up-1") << r.line;
  EXPECT_NE(r.field("task_id").value_or("0"), "0") << r.line;
  EXPECT_EQ(r.field("task"), "http.request") << r.line;
  EXPECT_EQ(srv.metric("http_server_requests_total",
                       {{"http_route", "/echo/{what}"}, {"http_response_status_code", "413"}}),
            1);
  // The request's task ended, and says how.
  bool found = false;
  for (const auto& f : loop.finished_tasks())
    if (f.info.name == "http.request" && f.info.request.route == "/echo/{what}") {
      found = true;
      EXPECT_EQ(f.outcome, loupe::task_outcome::error);
      EXPECT_NE(f.error.find("exceeds"), std::string::npos) << f.error;
      EXPECT_EQ(f.info.request.request_id, "up-1");
    }
  EXPECT_TRUE(found);
}

LOUPE_TEST(RefusedRoutes, A405IsRecordedUnderTheRouteWhosePathMatched) {
  auto& srv = server(echo_app());
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  const auto res = co_await c.request(boost::beast::http::verb::get, "/echo/x");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[boost::beast::http::field::allow], "POST");
  c.close();
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  const auto recs = logs({.logger = "loupe.access"});
  CO_ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].field("route"), "/echo/{what}") << recs[0].line;
  EXPECT_EQ(srv.metric("http_server_requests_total",
                       {{"http_route", "/echo/{what}"}, {"http_response_status_code", "405"}}),
            1);
  // And a path no route has stays _unmatched.
  EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "_unmatched"}}), std::nullopt);
}
