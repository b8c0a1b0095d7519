// The pattern to copy: functional tests of two services in one loop.
//
// "ping" is an application whose handler calls another service, "pong", over
// HTTP at http://pong.test. The test starts both on 127.0.0.1 (ports the
// kernel picks), tells the loop that pong.test is the pong server (no DNS, no
// fixed port), and talks to ping like a user would. Everything runs on the
// test's thread; the test fails — instead of hanging — if anything waits past
// its deadline, and it checks at the end that nothing was left running and
// that no unexpected ERROR was logged.
//
// Build it against an installed loupe with
//   find_package(loupe) ... target_link_libraries(t loupe::testkit GTest::gtest_main)
#include <loupe/runtime.hpp>
#include <loupe/testkit/test.hpp>

#include <gtest/gtest.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

// -- the services under test -------------------------------------------------

loupe::application make_pong_service() {
  loupe::application app;
  app.get("/pong", [](request& req) -> awaitable<response> {
    co_return response::json({{"pong", true}, {"from", std::string(req.header("User-Agent").value_or(""))}});
  });
  return app;
}

loupe::application make_ping_service() {
  loupe::application app;
  app.get("/ping", [](request&) -> awaitable<response> {
    loupe::client_session pong(*loupe::loop::current(), {.user_agent = "ping-service"});
    try {
      auto answer = co_await pong.get("http://pong.test/pong", {.timeout = 2s});
      co_return response::json({{"ping", true}, {"pong", answer.json()}});
    } catch (const loupe::client_error& e) {
      loupe::log::warn(loupe::log::app(), "pong is unreachable", {{"error", e.what()}});
      co_return response::json({{"error", "pong is unreachable"}}, boost::beast::http::status::bad_gateway);
    }
  });
  return app;
}

// -- the tests ---------------------------------------------------------------

// A coroutine test body on a fresh loop (deadline: 30 s).
LOUPE_TEST(PingPong, PingReachesPongInTheSameLoop) {
  auto& pong = server(make_pong_service());
  auto& ping = server(make_ping_service());
  map_host("pong.test", pong);            // http://pong.test/... now reaches `pong`
  forbid_slow_callbacks(100ms);           // and no callback may block the loop for longer

  auto& user = client(ping);
  auto res = co_await user.get("/ping");
  CO_ASSERT_EQ(res.status_code(), 200u);  // CO_ASSERT_*: the coroutine form of ASSERT_*
  const auto body = res.json().as_object();
  EXPECT_EQ(body.at("pong").at("from"), "ping-service");

  // What production would see: pong's request counter and ping's access log.
  co_await loupe::testkit::wait_until([&] { return pong.metric("http_server_requests_total").has_value(); });
  EXPECT_EQ(pong.metric("http_server_requests_total", {{"http_route", "/pong"}}), 1);
  EXPECT_FALSE(logs({.logger = "loupe.access", .fields = {{"route", "/ping"}}}).empty());
}

// When pong dies half-way through its answer, ping says so instead of hanging.
LOUPE_TEST(PingPong, PingReportsABrokenPong) {
  loupe::testkit::fault_server broken_pong(loop, loupe::testkit::fault::close_mid_response());
  map_host("pong.test", broken_pong);
  auto& ping = server(make_ping_service());
  auto& user = client(ping);

  auto res = co_await user.get("/ping");
  EXPECT_EQ(res.status_code(), 502u);
  EXPECT_EQ(logs({.level = spdlog::level::warn, .message = "pong is unreachable"}).size(), 1u);
}
