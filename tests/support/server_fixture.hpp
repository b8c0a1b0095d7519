// Test support: the shared preamble of the server's tests (tests/runtime/
// server_test.cpp, deadlines_test.cpp, limits_test.cpp, shutdown_test.cpp): a
// `Server` fixture serving GET /, GET /sleep?ms=N, POST /echo and GET /boom
// on 127.0.0.1, with raw-connection helpers.
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/fixture.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include "support/clock_mode.hpp"


#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::testkit::http_response;
using loupe::testkit::raw_client;
using namespace std::chrono_literals;

namespace loupe_test {

using loupe::sleep_for;
template <class F>
awaitable<void> until(F cond) {
  return loupe::testkit::wait_until(std::move(cond));
}

class Server : public loupe::testkit::server_fixture {
 protected:
  void SetUp() override {
    app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
    app.get("/sleep", [this](request& req) -> awaitable<response> {
      const int ms = std::stoi(std::string(req.query().get("ms").value_or("0")));
      ++handlers_started;
      co_await sleep_for(std::chrono::milliseconds(ms));
      co_return response::text("slept " + std::to_string(ms));
    });
    app.post("/echo", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
    app.get("/boom", [](request&) -> awaitable<response> {
      throw std::runtime_error("handler bug");
      co_return response();
    });
  }

  awaitable<raw_client> connect() {
    raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_return c;
  }

  // The status a new connection's GET / gets: the server goes on serving.
  awaitable<unsigned> fresh_get_status() {
    auto next = co_await connect();
    co_return (co_await next.request(http::verb::get, "/")).result_int();
  }

  // `bytes` on a new connection: answered `status`, and the connection closed.
  awaitable<http_response> refused_with(std::string bytes, unsigned status) {
    auto c = co_await connect();
    co_await c.send(bytes);
    auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), status) << bytes;
    EXPECT_FALSE(res.keep_alive()) << bytes;
    EXPECT_TRUE(co_await c.closed_by_peer()) << bytes;
    co_return res;
  }

  // A request that sleeps a minute, sent on `c`, and its tasks once it is in
  // its handler: the request's and its connection's.
  struct sleeping {
    loupe::task_info request, connection;
  };
  awaitable<sleeping> sleeping_request(raw_client& c) {
    co_await c.send("GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await loupe::testkit::wait_until([&] { return srv->requests_in_flight() == 1; });
    sleeping out;
    for (auto& t : loop.tasks()) {
      if (t.name == "http.request") out.request = t;
      if (t.name == "http.connection") out.connection = t;
    }
    co_return out;
  }

  // Sends `piece` up to `times` times, `interval` apart; returns how many
  // were sent before the server closed the connection.
  awaitable<std::size_t> trickle(raw_client& c, std::string piece, std::size_t times,
                                 std::chrono::milliseconds interval) {
    std::size_t sent = 0;
    try {
      for (; sent < times; ++sent) {
        co_await c.send(piece);
        co_await sleep_for(interval);
      }
    } catch (const boost::system::system_error&) {
      // The server closed the connection: the next write fails.
    }
    co_return sent;
  }

  static long vm_size_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.starts_with("VmSize:")) return std::stol(line.substr(7));
    return 0;
  }

  int handlers_started = 0;
};

// Server's tests on real time and on virtual time: instantiated in
// deadlines_test.cpp, used there and in limits_test.cpp and shutdown_test.cpp.
class ServerTimes : public on_both_clocks<Server> {};

}  // namespace loupe_test

using namespace loupe_test;
