// testkit's own tests: what a loupe test gives (servers, clients, the host map,
// fault injection, metric and log lookups), and — in child processes — each
// check failing when it should: a leaked task, a connection left open, a slow
// callback, an unexpected ERROR log, a hung handler hitting the deadline.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/process.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/test.hpp>

#include <gtest/gtest.h>

#include "support/child_test.hpp"

#include <thread>

namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

// The seed's pair: ping answers by asking pong, through the runtime's client,
// at a name (no DNS, no fixed port).
loupe::application make_pong() {
  loupe::application app;
  app.get("/pong", [](request&) -> awaitable<response> { co_return response::text("pong"); });
  return app;
}

loupe::application make_ping() {
  loupe::application app;
  app.get("/ping", [](request&) -> awaitable<response> {
    loupe::client_session upstream(*loupe::loop::current());
    try {
      auto res = co_await upstream.get("http://pong.test/pong", {.timeout = 2s});
      co_return response::text("ping -> " + res.text());
    } catch (const loupe::client_error& e) {
      co_return response::text(std::string("pong failed: ") + e.what(), http::status::bad_gateway);
    }
  });
  return app;
}

}  // namespace

LOUPE_TEST(Testkit, PingAndPongInOneLoopThroughTheHostMap) {
  auto& pong = server(make_pong());
  auto& ping = server(make_ping());
  map_host("pong.test", pong);
  auto& http = client(ping);
  auto res = co_await http.get("/ping");
  CO_ASSERT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "ping -> pong");
  // Both servers counted their request (recorded just after the write).
  co_await loupe::testkit::wait_until([&] { return pong.metric("http_server_requests_total").value_or(0) == 1; });
  EXPECT_EQ(pong.metric("http_server_requests_total", {{"http_route", "/pong"}, {"http_response_status_code", "200"}}),
            1);
  co_await loupe::testkit::wait_until([&] { return ping.metric("http_server_requests_total").value_or(0) == 1; });
  // The access records of both, in one captured log.
  EXPECT_EQ(logs({.logger = "loupe.access", .fields = {{"route", "/pong"}}}).size(), 1u);
  EXPECT_EQ(logs({.logger = "loupe.access", .fields = {{"route", "/ping"}}}).size(), 1u);
}

LOUPE_TEST(Testkit, AnUpstreamDyingMidResponseIsA502NotAHang) {
  loupe::testkit::fault_server pong(loop, loupe::testkit::fault::close_mid_response(1000, 10));
  map_host("pong.test", pong);
  auto& http = client(server(make_ping()));
  auto res = co_await http.get("/ping");
  EXPECT_EQ(res.status_code(), 502u);
  EXPECT_NE(res.text().find("bad response"), std::string::npos) << res.text();
  EXPECT_EQ(pong.requests(), 1u);
}

LOUPE_TEST(Testkit, OtherFaultsGiveClearClientErrors) {
  using loupe::testkit::fault;
  loupe::client_session http(loop, {.request_timeout = 300ms});
  for (auto f : {fault::close_before_response(), fault::garbage(), fault::no_response()}) {
    loupe::testkit::fault_server peer(loop, f);
    std::optional<loupe::client_errc> code;
    try {
      (void)co_await http.get(peer.url("/"));
    } catch (const loupe::client_error& e) {
      code = static_cast<loupe::client_errc>(e.code().value());
    }
    EXPECT_EQ(code, f.what == fault::kind::no_response ? loupe::client_errc::timeout : loupe::client_errc::bad_response);
  }
}

LOUPE_TEST(Testkit, ClientSendsJsonFormQueryAndHeaders) {
  auto& srv = raw_server([](request& req) -> awaitable<response> {
    boost::json::object o;
    o["method"] = std::string(req.method_name());
    o["target"] = std::string(req.target());
    o["type"] = std::string(req.header("Content-Type").value_or(""));
    o["x"] = std::string(req.header("X-Test").value_or(""));
    o["body"] = req.text();
    co_return response::json(o);
  });
  auto& http = client(srv);
  loupe::request_options json_body;
  json_body.json = boost::json::object{{"item", "tea"}};
  auto a = (co_await http.post("/orders", json_body)).json().as_object();
  EXPECT_EQ(a.at("method"), "POST");
  EXPECT_EQ(a.at("type"), "application/json");
  EXPECT_EQ(a.at("body"), R"({"item":"tea"})");
  loupe::request_options form;
  form.form = {{"user", "ann b"}, {"pw", "a&b"}};
  auto b = (co_await http.put("/login", form)).json().as_object();
  EXPECT_EQ(b.at("type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(b.at("body"), "user=ann+b&pw=a%26b");
  loupe::request_options query;
  query.query = {{"page", "2"}, {"q", "a b"}};
  query.headers = {{"X-Test", "yes"}};
  auto c = (co_await http.patch("/search", query)).json().as_object();
  EXPECT_EQ(c.at("method"), "PATCH");
  EXPECT_EQ(c.at("target"), "/search?page=2&q=a%20b");
  EXPECT_EQ(c.at("x"), "yes");
  auto d = (co_await http.del("/orders/7")).json().as_object();
  EXPECT_EQ(d.at("method"), "DELETE");
}

LOUPE_TEST(Testkit, CookieJarKeepsAndSendsCookies) {
  loupe::application app;
  app.post("/login", [](request&) -> awaitable<response> {
    auto res = response::redirect("/me", http::status::see_other);
    res.set_cookie("session", "s3cr3t", {.path = "/"});
    res.set_cookie("scoped", "only-admin", {.path = "/admin"});
    co_return res;
  });
  app.get("/me", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(req.cookie("session").value_or("anonymous")) + " " +
                             std::string(req.cookie("scoped").value_or("-")));
  });
  app.get("/admin/me", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(req.cookie("scoped").value_or("-")));
  });
  app.post("/logout", [](request&) -> awaitable<response> {
    auto res = response::text("bye");
    res.del_cookie("session");
    co_return res;
  });
  auto& http = client(server(std::move(app)));
  // The cookie set on the redirect is sent to where it leads.
  auto me = co_await http.post("/login");
  EXPECT_EQ(me.text(), "s3cr3t -");
  EXPECT_EQ(me.redirects(), 1u);
  EXPECT_EQ((co_await http.get("/admin/me")).text(), "only-admin");  // path-scoped
  EXPECT_EQ(http.cookies().size(), 2u);
  co_await http.post("/logout");
  EXPECT_EQ((co_await http.get("/me")).text(), "anonymous -");
  EXPECT_EQ(http.cookies().size(), 1u);
}

LOUPE_TEST(Testkit, RedirectsFollowedOrNot) {
  loupe::application app;
  app.get("/old",
          [](request&) -> awaitable<response> { co_return response::redirect("/new", http::status::moved_permanently); });
  app.get("/new", [](request&) -> awaitable<response> { co_return response::text("new"); });
  auto& http = client(server(std::move(app)));
  EXPECT_EQ((co_await http.get("/old")).text(), "new");
  loupe::request_options stay;
  stay.follow_redirects = false;
  auto res = co_await http.get("/old", stay);
  EXPECT_EQ(res.status_code(), 301u);
  EXPECT_EQ(res.header("Location").value_or(""), "/new");
}

LOUPE_TEST(Testkit, WebSocketAndStreamingReads) {
  loupe::application app;
  app.websocket("/ws", [](loupe::websocket& ws, request&) -> awaitable<void> {
    while (auto msg = co_await ws.receive()) co_await ws.send("echo: " + msg->data);
  });
  app.get("/big", [](request&) -> awaitable<response> { co_return response::text(std::string(300000, 'b')); });
  auto& http = client(server(std::move(app)));
  auto ws = co_await http.ws_connect("/ws");
  co_await ws->send("hi");
  auto reply = co_await ws->receive();
  CO_ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->data, "echo: hi");
  co_await ws->close();
  auto body = co_await http.stream(http::verb::get, "/big");
  std::size_t got = 0, pieces = 0;
  while (auto chunk = co_await body->read_chunk()) {
    got += chunk->size();
    ++pieces;
  }
  EXPECT_EQ(got, 300000u);
  EXPECT_GT(pieces, 1u);
}

LOUPE_TEST(Testkit, ASlowReaderIsCutOffByTheServersWriteTimeout) {
  loupe::application app;
  app.get("/big", [](request&) -> awaitable<response> { co_return response::text(std::string(16 << 20, 'x')); });
  auto& srv = server(std::move(app), {.write_timeout = 300ms});
  loupe::testkit::raw_client slow(loop.get_executor());
  slow.set_receive_buffer(4096);
  co_await slow.connect(srv.endpoint());
  co_await slow.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  // 3 MB/s: the 16 MiB response takes the server longer than its write
  // timeout. What the kernel buffered still arrives, then the end.
  auto got = co_await slow.read_slowly(16 * 1024, 5ms, 16 << 20);
  EXPECT_TRUE(got.closed_by_peer);
  EXPECT_LT(got.bytes, std::size_t{16 << 20});
}

LOUPE_TEST(Testkit, LogAndMetricLookups) {
  loupe::application app;
  app.get("/work", [](request&) -> awaitable<response> {
    loupe::log::info(loupe::log::app(), "worked", {{"units", 3}});
    co_return response::text("ok");
  });
  auto& srv = server(std::move(app));
  auto& http = client(srv);
  for (int i = 0; i < 3; ++i) co_await http.get("/work");
  co_await http.get("/nope");
  co_await loupe::testkit::wait_until([&] { return srv.native().requests_served() == 4; });
  EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/work"}}), 3);
  EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "_unmatched"}}), 1);
  EXPECT_EQ(srv.metric("no_such_metric"), std::nullopt);
  const auto worked = logs({.level = spdlog::level::info, .message = "worked", .fields = {{"units", "3"}}});
  CO_ASSERT_EQ(worked.size(), 3u);
  EXPECT_EQ(worked[0].field("task"), "http.request");
  EXPECT_TRUE(worked[0].field("request_id"));
  EXPECT_EQ(logs({.logger = "loupe.access", .fields = {{"status", "404"}}}).size(), 1u);
}

LOUPE_TEST(Testkit, ExpectedErrorLogsDoNotFailTheTest) {
  loupe::application app;
  app.get("/boom", [](request&) -> awaitable<response> {
    throw std::runtime_error("kaboom");
    co_return response::text("unreachable");
  });
  expect_log({.level = spdlog::level::err, .message = "kaboom"});
  auto& http = client(server(std::move(app)));
  auto res = co_await http.get("/boom");
  EXPECT_EQ(res.status_code(), 500u);
}

class TestkitSync : public loupe::testkit::test {};

// The simplest form: no coroutine, one request run to completion.
TEST_F(TestkitSync, FetchRunsOneRequestOnTheTestsLoop) {
  loupe::application app;
  app.get("/health", [](request&) -> awaitable<response> { co_return response::text("ok"); });
  auto& srv = server(std::move(app));
  const auto res = fetch(srv, "/health");
  EXPECT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "ok");
  EXPECT_EQ(fetch(srv, "/missing").status_code(), 404u);
}

// ---- checks that must fail --------------------------------------------------
// Each DISABLED_ test below breaks one rule. TestkitChecks runs it in a child
// process (this same binary) and reads the failure it reports.

namespace {
awaitable<void> forever() { co_await loupe::sleep_for(1h); }
}  // namespace

LOUPE_TEST(TestkitFailing, DISABLED_LeaksATask) {
  loupe::spawn(loop, "leaky-background-job", forever());
  co_return;
}

class TestkitFailingFixture : public loupe::testkit::test {
 protected:
  std::optional<loupe::testkit::raw_client> kept;  // outlives the body: a leaked connection
};

LOUPE_TEST_F(TestkitFailingFixture, DISABLED_LeavesAConnectionOpen) {
  auto& srv = raw_server([](request&) -> awaitable<response> { co_return response::text("hi"); });
  kept.emplace(loop.get_executor());
  co_await kept->connect(srv.endpoint());
  (void)co_await kept->request(http::verb::get, "/");
}

LOUPE_TEST(TestkitFailing, DISABLED_SlowCallback) {
  forbid_slow_callbacks(20ms);
  loupe::application app;
  app.get("/block", [](request&) -> awaitable<response> {
    std::this_thread::sleep_for(60ms);  // blocks the loop
    co_return response::text("done");
  });
  auto& http = client(server(std::move(app)));
  (void)co_await http.get("/block");
}

LOUPE_TEST(TestkitFailing, DISABLED_UnexpectedErrorLog) {
  loupe::application app;
  app.get("/boom", [](request&) -> awaitable<response> {
    throw std::runtime_error("unexpected kaboom");
    co_return response::text("unreachable");
  });
  auto& http = client(server(std::move(app)));
  (void)co_await http.get("/boom");
}

LOUPE_TEST(TestkitFailing, DISABLED_HungHandlerHitsTheDeadline) {
  set_deadline(500ms);
  loupe::application app;
  app.get("/hang", [](request&) -> awaitable<response> {
    co_await loupe::sleep_for(1h);
    co_return response::text("never");
  });
  auto& http = client(server(std::move(app)));
  (void)co_await http.get("/hang");
}

LOUPE_TEST(TestkitFailing, DISABLED_SwallowsCancellationForever) {
  set_deadline(200ms);
  for (;;) {
    try {
      co_await loupe::sleep_for(1h);
    } catch (const std::exception&) {
      // retries at once, forever: the loop never gets its thread back
    }
  }
}

LOUPE_TEST(TestkitFailing, DISABLED_ExpectedLogNeverSeen) {
  expect_log({.level = spdlog::level::warn, .message = "a warning that never comes"});
  co_return;
}

LOUPE_TEST(TestkitFailing, DISABLED_CoAssertEndsTheBody) {
  CO_ASSERT_EQ(1 + 1, 3) << "arithmetic";
  std::puts("AFTER-CO-ASSERT");  // must not run
  co_return;
}

using loupe_test::run_child;

TEST(TestkitChecks, ALeakedTaskFailsTheTestAndIsNamed) {
  const auto r = run_child("TestkitFailing.DISABLED_LeaksATask");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("task(s) left alive at the end of the test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'leaky-background-job' suspended"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spawned at "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("testkit_test.cpp"), std::string::npos) << r.out;
}

TEST(TestkitChecks, AConnectionLeftOpenFailsTheTest) {
  const auto r = run_child("TestkitFailingFixture.DISABLED_LeavesAConnectionOpen");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("connection(s) left open at the end of the test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(idle keep-alive)"), std::string::npos) << r.out;
}

TEST(TestkitChecks, ASlowCallbackFailsTheTestNamingTaskAndRoute) {
  const auto r = run_child("TestkitFailing.DISABLED_SlowCallback");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("slow callback: a callback ran"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(limit 20 ms) in task #"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'http.request', serving GET /block (route /block)"), std::string::npos) << r.out;
}

TEST(TestkitChecks, AnUnexpectedErrorLogFailsTheTest) {
  const auto r = run_child("TestkitFailing.DISABLED_UnexpectedErrorLog");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("unexpected ERROR log record(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unexpected kaboom"), std::string::npos) << r.out;
}

TEST(TestkitChecks, AHungHandlerHitsTheDeadlineAndTheWaitsAreListed) {
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_child("TestkitFailing.DISABLED_HungHandlerHitsTheDeadline");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 25s);  // it did not hang (the child's own wait is 30 s)
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("test deadline of 500 ms exceeded"), std::string::npos) << r.out;
  // The request's task, suspended on its timer at the handler's co_await, serving the route.
  EXPECT_NE(r.out.find("'http.request' suspended"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("serving GET /hang (route /hang)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("timer"), std::string::npos) << r.out;
}

TEST(TestkitChecks, ABodyThatNeverGivesTheThreadBackIsEndedByTheBackstop) {
  const auto r = run_child("TestkitFailing.DISABLED_SwallowsCancellationForever");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("still busy 10 s past its deadline"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'test'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loop thread stack:"), std::string::npos) << r.out;
}

TEST(TestkitChecks, AnExpectedLogThatNeverCameFailsTheTest) {
  const auto r = run_child("TestkitFailing.DISABLED_ExpectedLogNeverSeen");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("expected a log record matching {level=warning, message~=a warning that never comes}, saw none"),
            std::string::npos)
      << r.out;
}

TEST(TestkitChecks, CoAssertEndsTheCoroutineBody) {
  const auto r = run_child("TestkitFailing.DISABLED_CoAssertEndsTheBody");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("arithmetic"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("AFTER-CO-ASSERT"), std::string::npos) << r.out;
}

TEST(TestkitChecks, APassingTestPassesInAChildToo) {
  const auto r = run_child("Testkit.PingAndPongInOneLoopThroughTheHostMap");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(TestkitRun, DeadlineThrowsNamingTheLiveTasksAndDoesNotHang) {
  loupe::loop loop;
  try {
    loupe::testkit::run(
        loop, []() -> awaitable<void> { co_await loupe::sleep_for(60s); }, 100ms);
    ADD_FAILURE() << "no deadline_exceeded";
  } catch (const loupe::testkit::deadline_exceeded& e) {
    EXPECT_NE(std::string(e.what()).find("#"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'test' suspended"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("async_wait on deadline_timer at "), std::string::npos) << e.what();
  }
  EXPECT_EQ(loop.live_task_count(), 0u);  // the test's task was cancelled and unwound
}
