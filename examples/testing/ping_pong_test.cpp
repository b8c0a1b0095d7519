// The pattern to copy: functional tests of two services in one loop.
//
// "ping" is an application whose handler calls another service, "pong", over
// HTTP at http://pong.test. The test starts both on 127.0.0.1 (ports the
// kernel picks) or on the in-memory network (no ports at all), tells the loop
// that pong.test is the pong server (no DNS, no fixed port), and talks to
// ping like a user would; a chaos link in front of pong makes it slow. Everything runs on the
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

// A coroutine test body on a fresh loop (deadline: 30 s), as a fixture's
// member so that it runs on both networks below.
class PingPong : public loupe::testkit::test {
 protected:
  awaitable<void> ping_reaches_pong() {
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
};

// Over TCP on 127.0.0.1, ports the kernel picks.
LOUPE_TEST_F(PingPong, PingReachesPongInTheSameLoop) { co_await ping_reaches_pong(); }

// The same test on the in-memory network: no ports, no TCP, the same code.
LOUPE_TEST_F(PingPong, PingReachesPongInMemory) {
  use_memory_network();
  co_await ping_reaches_pong();
}

// Through a bad network, on virtual time: pong's answers cross a chaos link
// that splits them into 69-byte segments and delays them 3 s, past ping's 2 s
// timeout. The test takes no real time, and the link's seed is in the log.
LOUPE_TEST_F(PingPong, PingSaysWhenPongIsTooSlow) {
  use_memory_network();
  use_virtual_time();
  auto& pong = server(make_pong_service());
  auto& slow_pong = chaos(pong, {.to_client = {.delay = 3s, .segment_bytes = 69}});
  map_host("pong.test", slow_pong);
  auto& ping = server(make_ping_service());
  auto& user = client(ping);

  const auto start = loupe::clock::now();
  auto res = co_await user.get("/ping");
  EXPECT_EQ(res.status_code(), 502u);
  EXPECT_EQ(loupe::clock::now() - start, 2s);  // ping's timeout, on virtual time
  expect_log({.level = spdlog::level::warn, .message = "pong is unreachable"});
}

// When pong dies half-way through its answer, ping says so instead of hanging.
LOUPE_TEST_F(PingPong, PingReportsABrokenPong) {
  loupe::testkit::fault_server broken_pong(loop, loupe::testkit::fault::close_mid_response());
  map_host("pong.test", broken_pong);
  auto& ping = server(make_ping_service());
  auto& user = client(ping);

  auto res = co_await user.get("/ping");
  EXPECT_EQ(res.status_code(), 502u);
  EXPECT_EQ(logs({.level = spdlog::level::warn, .message = "pong is unreachable"}).size(), 1u);
}
