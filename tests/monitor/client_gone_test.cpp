// The console shows a request whose client has gone: `ps` while its handler
// runs on, `ps-terminated` once it has ended.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <gtest/gtest.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::test_support::console_client;
using namespace std::chrono_literals;

LOUPE_TEST_F(Console, PsShowsARequestWhoseClientHasGone) {
  console.start();
  loupe::application app;
  loupe::steady_timer gate(loop.get_executor(), loupe::steady_timer::time_point::max());
  bool started = false;
  app.get("/report", [&](request&) -> awaitable<response> {
    started = true;
    (void)co_await gate.async_wait(boost::asio::as_tuple(loupe::here()));
    co_return response::text("late");
  });
  loupe::server_options opts;
  opts.header_timeout = 200ms;  // a sweep every 20 ms
  auto& srv = server(app, opts);
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.endpoint());
  co_await c.send("GET /report?year=2026 HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await loupe::testkit::wait_until([&] { return started; });
  console_client con(loop.get_executor());
  co_await con.connect(console.port());
  const auto before = co_await con.command("ps http.request");
  EXPECT_NE(before.find("GET /report?year=2026 (route /report)"), std::string::npos) << before;
  EXPECT_EQ(before.find("client gone"), std::string::npos) << before;

  c.close();
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.request.client_gone) return true;
    return false;
  });
  const auto during = co_await con.command("ps http.request");
  EXPECT_NE(during.find("GET /report?year=2026 (route /report), client gone"), std::string::npos) << during;

  gate.cancel();
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; });
  const auto ended = co_await con.command("ps-terminated http.request");
  EXPECT_NE(ended.find("client gone"), std::string::npos) << ended;
}
