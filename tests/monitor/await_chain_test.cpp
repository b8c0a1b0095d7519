// What a task awaits names the user's co_await, through the console: a
// handler stuck on an HTTP call (handler -> helper -> client call), a task
// awaiting executor::run, gather and a WebSocket receive; `where` follows the
// await chain from the handler into the client request's task.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/executor.hpp>
#include <loupe/runtime/gather.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/websocket.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::test_support::console_client;
using namespace std::chrono_literals;

namespace {

// "await_chain_test.cpp:<line>", as ps's LOCATION column writes it.
std::string here_at(int line) { return "await_chain_test.cpp:" + std::to_string(line); }

std::uint64_t task_named(loupe::loop& l, std::string_view name) {
  for (const auto& t : l.tasks())
    if (t.name == name) return t.id;
  return 0;
}

// The helper between the handler and the client call: its co_await is the
// line the handler's wait must name.
int helper_line = 0;
awaitable<std::string> fetch_upstream(loupe::client_session& s, std::string url) {
  helper_line = __LINE__ + 1;
  auto res = co_await s.get(url);
  co_return res.text();
}

}  // namespace

// The commonest stuck wait of a web service: a handler awaiting an upstream
// that does not answer. ps names the helper's line, where follows the chain
// into the client request's task ("GET http://…/never").
LOUPE_TEST_F(Console, AHandlerStuckOnAnHttpCallNamesTheCallersLine) {
  console.start();
  loupe::steady_timer gate(loop.get_executor(), loupe::steady_timer::time_point::max());
  loupe::application upstream_app;
  upstream_app.get("/never", [&](request&) -> awaitable<response> {
    (void)co_await gate.async_wait(boost::asio::as_tuple(loupe::here()));
    co_return response::text("late");
  });
  auto& upstream = server(upstream_app);
  loupe::client_session session(loop);
  const std::string upstream_url = "http://127.0.0.1:" + std::to_string(upstream.port()) + "/never";
  loupe::application app;
  app.get("/proxy", [&](request&) -> awaitable<response> {
    co_return response::text(co_await fetch_upstream(session, upstream_url));
  });
  auto& front = server(app);
  auto& http = client(front);
  std::optional<unsigned> status;
  // Named: a coroutine lambda's captures live in the lambda, which must outlive the task.
  auto caller = [&]() -> awaitable<void> { status = (co_await http.get("/proxy")).status_code(); };
  loupe::spawn(loop, "caller", caller());

  // The proxy's request task waits on the upstream's request task.
  std::uint64_t handler = 0;
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.name == "http.request" && t.request.route == "/proxy" && t.awaiting != 0) handler = t.id;
    return handler != 0 && task_named(loop, "http.client") != 0 && [&] {
      for (const auto& t : loop.tasks())
        if (t.request.route == "/never" && t.name == "http.request" && t.state == loupe::task_state::suspended)
          return true;
      return false;
    }();
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());

  const auto ps = co_await c.command("ps http.request");
  // The handler's row: awaiting a task, at the helper's co_await (not at loupe's client code).
  std::string row;
  for (std::size_t at = 0, nl; (nl = ps.find('\n', at)) != std::string::npos; at = nl + 1) {
    const auto line = ps.substr(at, nl - at);
    if (line.find("/proxy") != std::string::npos) row = line;
  }
  EXPECT_NE(row.find("await on task #"), std::string::npos) << ps;
  EXPECT_NE(row.find(" suspended "), std::string::npos) << ps;  // not "running": it gave the thread up
  EXPECT_NE(row.find(here_at(helper_line)), std::string::npos) << ps;
  EXPECT_EQ(ps.find("session.cpp"), std::string::npos) << ps;

  // The client task says what it does, and was spawned at the caller's line.
  // (The other http.client task is the test's own request to /proxy.)
  const auto client_ps = co_await c.command("ps http.client --json");
  const auto client_tasks = boost::json::parse(client_ps);
  const boost::json::object* ct = nullptr;
  for (const auto& t : client_tasks.as_array())
    if (t.as_object().contains("what") && t.at("what").as_string() == "GET " + upstream_url) ct = &t.as_object();
  EXPECT_TRUE(ct) << client_ps;
  if (ct) {
    EXPECT_NE(std::string(ct->at("spawn_site").as_string()).find(here_at(helper_line)), std::string::npos) << client_ps;
  }

  // where: the chain from the handler into the client's task, each level with its file:line.
  const auto where = co_await c.command("where " + std::to_string(handler));
  EXPECT_NE(where.find("await chain"), std::string::npos) << where;
  EXPECT_NE(where.find("'http.request': await on task #"), std::string::npos) << where;
  EXPECT_NE(where.find(here_at(helper_line)), std::string::npos) << where;
  EXPECT_NE(where.find("'http.client' GET " + upstream_url), std::string::npos) << where;
  const auto where_json = boost::json::parse(co_await c.command("where " + std::to_string(handler) + " --json"));
  EXPECT_GE(where_json.at("await_chain").as_array().size(), 2u);

  gate.cancel();
  co_await loupe::testkit::wait_until([&] { return status.has_value(); });
  EXPECT_EQ(*status, 200u);
  co_await session.close();
}

// The demo's case: a handler awaiting a client call to a service that
// accepted the connection and never answers (a listening socket nobody
// accepts on). The handler is suspended, awaiting the client's task — it was
// shown "running" for as long as it waited, with no SUSPENDED time, and
// `where` printed no await chain, when the request came after the server had
// started reading (as curl sends it), so that the callback running the
// handler was the connection's.
LOUPE_TEST_F(Console, AHandlerAwaitingASilentServiceIsSuspended) {
  console.start();
  boost::asio::ip::tcp::acceptor silent(loop.get_executor(), {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/never";
  int get_line = 0;
  loupe::application app;
  app.get("/upstream", [&](request&) -> awaitable<response> {
    loupe::client_session session(loop);
    get_line = __LINE__ + 1;
    auto res = co_await session.get(url);
    co_return response::text(res.text());
  });
  auto& front = server(app);
  std::optional<unsigned> status;
  // As curl does it: connected first; the request comes once the server is reading.
  loupe::testkit::raw_client raw(loop.get_executor());
  auto caller = [&]() -> awaitable<void> {
    co_await raw.connect({boost::asio::ip::make_address("127.0.0.1"), front.port()});
    co_await loupe::testkit::wait_until([&] {
      for (const auto& t : loop.tasks())
        if (t.name == "http.connection" && t.state == loupe::task_state::suspended && t.wait.operation) return true;
      return false;
    });
    co_await raw.send("GET /upstream HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n");
    status = (co_await raw.read_response()).result_int();
  };
  loupe::spawn(loop, "caller", caller());
  std::uint64_t handler = 0;
  co_await loupe::testkit::wait_until([&] {
    bool client_waits = false;
    for (const auto& t : loop.tasks()) {
      if (t.name == "http.request" && t.request.route == "/upstream" && t.awaiting != 0) handler = t.id;
      if (t.name == "http.client" && t.what == "GET " + url && t.wait.operation &&
          std::string_view(t.wait.operation) == "async_receive")
        client_waits = true;
    }
    return handler != 0 && client_waits;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto ps = co_await c.command("ps /upstream");
  EXPECT_NE(ps.find(" suspended "), std::string::npos) << ps;
  EXPECT_EQ(ps.find(" running "), std::string::npos) << ps;
  EXPECT_NE(ps.find("await on task #"), std::string::npos) << ps;
  EXPECT_NE(ps.find(here_at(get_line)), std::string::npos) << ps;
  const auto where = co_await c.command("where " + std::to_string(handler));
  EXPECT_NE(where.find("await chain (each awaits the next)"), std::string::npos) << where;
  EXPECT_NE(where.find("'http.client' GET " + url + ": async_receive"), std::string::npos) << where;
  // Closing the listener resets the connection it never accepted: the client
  // call fails, and the handler's exception is a 500.
  expect_log({.level = spdlog::level::err, .logger = "loupe"});
  silent.close();
  co_await loupe::testkit::wait_until([&] { return status.has_value(); });
  EXPECT_EQ(*status, 500u);
}

// A task awaiting executor::run waits on "run on executor" at its co_await,
// and after the job it is tracked as itself again (its next wait recorded).
LOUPE_TEST_F(Console, ATaskAwaitingTheExecutorShowsItsWait) {
  console.start();
  loupe::executor pool(1);
  std::atomic<bool> release{false};
  int run_line = 0;
  int after_line = 0;
  bool after_job = false;
  auto offload = [&]() -> awaitable<void> {
    auto job = [&] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
      return 7;
    };
    run_line = __LINE__ + 1;
    const int v = co_await pool.run(job);
    EXPECT_EQ(v, 7);
    after_job = true;
    after_line = __LINE__ + 1;
    co_await loupe::sleep_for(1h);
  };
  loupe::spawn(loop, "offload", offload());
  co_await loupe::testkit::wait_until([&] { return run_line != 0 && pool.busy() == 1; });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto during = co_await c.command("ps offload");
  EXPECT_NE(during.find("run on executor"), std::string::npos) << during;
  EXPECT_NE(during.find(here_at(run_line)), std::string::npos) << during;
  EXPECT_NE(during.find("suspended"), std::string::npos) << during;

  release = true;
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.name == "offload" && after_job && t.wait.line == after_line) return true;
    return false;
  });
  const auto after = co_await c.command("ps offload");
  EXPECT_NE(after.find("async_wait on deadline_timer"), std::string::npos) << after;
  EXPECT_NE(after.find(here_at(after_line)), std::string::npos) << after;
  loop.cancel(task_named(loop, "offload"));
}

// gather: the caller waits on "gather on tasks" at its line; the gathered
// tasks were spawned there.
LOUPE_TEST_F(Console, GatherNamesTheCallersLine) {
  console.start();
  int gather_line = 0;
  auto fan = [&]() -> awaitable<void> {
    gather_line = __LINE__ + 1;
    (void)co_await loupe::gather(loop, "leg", loupe::sleep_for(1h), loupe::sleep_for(1h));
  };
  loupe::spawn(loop, "fan", fan());
  co_await loupe::testkit::wait_until([&] { return task_named(loop, "leg[1]") != 0; });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  const auto ps = co_await c.command("ps fan");
  EXPECT_NE(ps.find("gather on tasks"), std::string::npos) << ps;
  EXPECT_NE(ps.find(here_at(gather_line)), std::string::npos) << ps;
  const auto legs = co_await c.command("ps leg --sites");
  EXPECT_NE(legs.find("     2  " + here_at(gather_line)), std::string::npos) << legs;
  loop.cancel(task_named(loop, "fan"));
  co_await loupe::testkit::wait_until([&] { return task_named(loop, "leg[0]") == 0 && task_named(loop, "fan") == 0; });
}

// A WebSocket handler waiting for a message: its wait is at its receive() call.
LOUPE_TEST_F(Console, AWebSocketReceiveNamesTheCallersLine) {
  console.start();
  int receive_line = 0;
  loupe::application app;
  app.websocket("/ws", [&](loupe::websocket& ws, request&) -> awaitable<void> {
    receive_line = __LINE__ + 1;
    while (auto m = co_await ws.receive()) co_await ws.send(m->data);
  });
  auto& srv = server(app);
  auto ws = co_await loupe::websocket::connect(loop, "ws://127.0.0.1:" + std::to_string(srv.port()) + "/ws");
  // Until the handler is suspended in receive().
  co_await loupe::testkit::wait_until([&] {
    for (const auto& t : loop.tasks())
      if (t.name == "http.connection" && t.state == loupe::task_state::suspended && receive_line != 0 &&
          t.wait.line == receive_line)
        return true;
    return false;
  });
  console_client c(loop.get_executor());
  co_await c.connect(console.port());
  // (The WebSocket handler runs in its connection's task.)
  const auto ps = co_await c.command("ps http.connection");
  EXPECT_NE(ps.find(here_at(receive_line)), std::string::npos) << ps;
  co_await ws->close();
}
