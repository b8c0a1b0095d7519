// app_runner: worker loops on SO_REUSEPORT sockets, one drain across all of them.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/runner.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include <gtest/gtest.h>

#include <atomic>

namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::testkit::http_response;
using loupe::testkit::raw_client;
using namespace std::chrono_literals;

namespace {

struct hook_counts {
  std::atomic<int> startup{0}, shutdown{0}, cleanup{0};
};

void add_routes(loupe::application& app, hook_counts& hooks, std::atomic<int>& sleeping) {
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  app.get("/where", [](request&) -> awaitable<response> {
    co_return response::text(loupe::loop::current() ? loupe::loop::current()->name() : "?");
  });
  app.get("/sleep", [&sleeping](request&) -> awaitable<response> {
    ++sleeping;
    co_await loupe::sleep_for(300ms);
    co_return response::text("slept");
  });
  app.on_startup([&hooks](loupe::application&) -> awaitable<void> {
    ++hooks.startup;
    co_return;
  });
  app.on_shutdown([&hooks](loupe::application&) -> awaitable<void> {
    ++hooks.shutdown;
    co_return;
  });
  app.on_cleanup([&hooks](loupe::application&) -> awaitable<void> {
    ++hooks.cleanup;
    co_return;
  });
}

}  // namespace

TEST(Runner, TwoWorkerLoopsBothServeUnderConcurrentLoadAndDrainTogether) {
  loupe::loop main("main");
  loupe::application app;
  hook_counts hooks;
  std::atomic<int> sleeping{0};
  add_routes(app, hooks, sleeping);
  loupe::app_runner runner(main, app, {.host = "127.0.0.1", .port = 0, .workers = 2});

  loupe::testkit::run(main, [&]() -> awaitable<void> {
    const auto ep = co_await runner.start();
    EXPECT_EQ(runner.loop_count(), 2u);
    // 32 connections, 5 requests each: the kernel spreads them over both sockets.
    std::vector<raw_client> clients;
    for (int i = 0; i < 32; ++i) {
      clients.emplace_back(main.get_executor());
      co_await clients.back().connect(ep);
    }
    std::set<std::string> loops_seen;
    for (auto& c : clients)
      for (int r = 0; r < 5; ++r) {
        auto res = co_await c.request(http::verb::get, r == 0 ? "/where" : "/");
        EXPECT_EQ(res.result_int(), 200);
        if (r == 0) loops_seen.insert(res.body());
      }
    EXPECT_EQ(loops_seen, (std::set<std::string>{"main", "worker-1"}));
    // A worker counts a request once its write completes, which may be just after the client has read it.
    co_await loupe::testkit::wait_until([&] {
      return runner.server_at(0).requests_served() + runner.server_at(1).requests_served() == 160u;
    });
    EXPECT_GT(runner.server_at(0).requests_served(), 0u);
    EXPECT_GT(runner.server_at(1).requests_served(), 0u);

    // Requests in flight on both loops when the drain starts: all answered.
    std::vector<std::optional<http_response>> slow(8);
    std::vector<raw_client> slow_clients;
    for (int i = 0; i < 8; ++i) {
      slow_clients.emplace_back(main.get_executor());
      co_await slow_clients.back().connect(ep);
    }
    auto slow_task = [&](std::size_t i) -> awaitable<void> {
      slow[i] = co_await slow_clients[i].request(http::verb::get, "/sleep");
    };
    for (std::size_t i = 0; i < 8; ++i) loupe::spawn(main, "client", slow_task(i));
    co_await loupe::testkit::wait_until([&] { return sleeping.load() == 8; });
    clients.clear();
    EXPECT_TRUE(co_await runner.stop(10s));
    for (auto& r : slow) {
      EXPECT_TRUE(r.has_value());
      if (r) {
        EXPECT_EQ(r->result_int(), 200);
      }
    }
    co_await loupe::testkit::wait_until([&] {
      return std::all_of(slow.begin(), slow.end(), [](auto& r) { return r.has_value(); });
    });
    EXPECT_EQ(runner.server_at(0).connection_count() + runner.server_at(1).connection_count(), 0u);
  });
  EXPECT_EQ(hooks.startup.load(), 1);
  EXPECT_EQ(hooks.shutdown.load(), 1);
  EXPECT_EQ(hooks.cleanup.load(), 1);
}
