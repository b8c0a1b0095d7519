// Graceful shutdown and cancellation: requests in flight finish, what
// outlives the grace period is cancelled, a cancelled request answers 503.
#include "support/server_fixture.hpp"

TEST_P(ServerTimes, GracefulShutdownFinishesTheRequestInFlight) {
  start();
  run([&]() -> awaitable<void> {
    auto busy = co_await connect();
    auto idle = co_await connect();
    EXPECT_EQ((co_await idle.request(http::verb::get, "/")).result_int(), 200);
    std::optional<http_response> busy_res;
    // A named lambda: the coroutine refers to its captures, so it must outlive the task.
    auto client_task = [&]() -> awaitable<void> { busy_res = co_await busy.request(http::verb::get, "/sleep?ms=300"); };
    loupe::spawn(loop, "client", client_task());
    co_await until([&] { return handlers_started == 1; });
    EXPECT_EQ(srv->requests_in_flight(), 1u);
    bool shut = false;
    // A named lambda: the coroutine refers to its captures, so it must outlive the task.
    auto shutdown_task = [&]() -> awaitable<void> {
      co_await srv->shutdown(10s);
      shut = true;
    };
    loupe::spawn(loop, "shutdown", shutdown_task());
    // The idle keep-alive connection is closed at once; no new connections.
    EXPECT_TRUE(co_await idle.closed_by_peer());
    raw_client late(loop.get_executor(), 2s);
    bool refused = false;
    try {
      co_await late.connect(ep);
    } catch (const boost::system::system_error&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    co_await until([&] { return shut; });
    EXPECT_TRUE(busy_res.has_value());
    if (!busy_res) co_return;
    EXPECT_EQ(busy_res->result_int(), 200);
    EXPECT_EQ(busy_res->body(), "slept 300");
    EXPECT_FALSE(busy_res->keep_alive());  // "Connection: close"
    EXPECT_EQ(srv->connection_count(), 0u);
  });
}

TEST_P(ServerTimes, ShutdownCancelsWhatOutlivesTheGracePeriod) {
  start();
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    std::optional<http_response> res;
    bool closed = false;
    // A named lambda: the coroutine refers to its captures, so it must outlive the task.
    auto client_task = [&]() -> awaitable<void> {
      try {
        res = co_await c.request(http::verb::get, "/sleep?ms=60000");
      } catch (const boost::system::system_error&) {
        closed = true;
      }
    };
    loupe::spawn(loop, "client", client_task());
    co_await until([&] { return handlers_started == 1; });
    co_await srv->shutdown(100ms);
    co_await until([&] { return res.has_value() || closed; });
    if (res) {
      EXPECT_EQ(res->result_int(), 503);
    }
    EXPECT_EQ(srv->connection_count(), 0u);
    EXPECT_EQ(srv->requests_in_flight(), 0u);
  });
}

TEST_P(ServerTimes, ShutdownCancelsTasksAwaitedByTheRequest) {
  std::uint64_t child_id = 0;
  app.get("/nested", [&](request&) -> awaitable<response> {
    auto child = [&]() -> awaitable<void> {
      child_id = loupe::detail::current_task_id();
      co_await sleep_for(60s);
    };
    co_await loupe::spawn(loop, "child", child(), asio::use_awaitable);
    co_return response::text("unreachable");
  });
  start();
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    co_await c.send("GET /nested HTTP/1.1\r\nHost: t\r\n\r\n");
    co_await until([&] { return child_id != 0; });
    co_await srv->shutdown(100ms);
    EXPECT_EQ(srv->connection_count(), 0u);
    co_await until([&] { return loop.find_finished(child_id).has_value(); });
    auto f = *loop.find_finished(child_id);
    EXPECT_EQ(f.outcome, loupe::task_outcome::cancelled);
    EXPECT_EQ(f.cancelled_by, loupe::cancel_source::parent);
  });
}

// A request runs as its own task on the connection's coroutine (no co_spawn):
// cancelling it must end that request alone, and cancelling the connection
// must end its request as "cancelled by parent".
TEST_F(Server, CancellingARequestTaskAnswers503AndLeavesItsConnectionTask) {
  start();
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    const auto tasks = co_await sleeping_request(c);
    const auto* req = &tasks.request;
    const auto* conn = &tasks.connection;
    CO_ASSERT_TRUE(req->id != 0 && conn->id != 0);
    EXPECT_EQ(req->parent_id, conn->id);
    EXPECT_EQ(req->request.route, "/sleep");
    EXPECT_EQ(req->state, loupe::task_state::suspended);
    EXPECT_STREQ(req->wait.object, "deadline_timer");
    EXPECT_EQ(conn->state, loupe::task_state::suspended);  // awaiting its request
    EXPECT_STREQ(conn->wait.operation, "await");
    EXPECT_EQ(loop.cancel(req->id, loupe::cancel_source::console), loupe::cancel_result::requested);
    const auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 503);
    co_await until([&] { return loop.find_finished(req->id).has_value(); });
    const auto f = *loop.find_finished(req->id);
    EXPECT_EQ(f.outcome, loupe::task_outcome::cancelled);
    EXPECT_EQ(f.cancelled_by, loupe::cancel_source::console);
    // The connection task answered and closed: it was not cancelled itself.
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return loop.find_finished(conn->id).has_value(); });
    EXPECT_EQ(loop.find_finished(conn->id)->outcome, loupe::task_outcome::ok);
    // And the server goes on.
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}

TEST_F(Server, CancellingAConnectionTaskCancelsItsRequestAsParent) {
  start();
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    const auto tasks = co_await sleeping_request(c);
    const auto* req = &tasks.request;
    const auto* conn = &tasks.connection;
    CO_ASSERT_TRUE(req->id != 0 && conn->id != 0);
    // A connection's cancel policy: its request is cancelled (by its parent)
    // and answered 503 with Connection: close, then the connection closes.
    // (Cancelled outright, the connection's own cancellation aborted the
    // 503's write: the client saw the connection drop with no answer.)
    EXPECT_EQ(loop.cancel(conn->id, loupe::cancel_source::console), loupe::cancel_result::redirected);
    const auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 503u);
    EXPECT_FALSE(res.keep_alive());
    co_await until([&] { return loop.find_finished(conn->id).has_value(); });
    CO_ASSERT_TRUE(loop.find_finished(req->id).has_value());
    EXPECT_EQ(loop.find_finished(req->id)->outcome, loupe::task_outcome::cancelled);
    EXPECT_EQ(loop.find_finished(req->id)->cancelled_by, loupe::cancel_source::parent);
    EXPECT_EQ(loop.find_finished(conn->id)->outcome, loupe::task_outcome::ok);
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->requests_in_flight() == 0; });
  });
}
