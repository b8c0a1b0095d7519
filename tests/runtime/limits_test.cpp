// The server's limits: body and header sizes, the process-wide budget of
// request bodies in flight, and the connection cap.
#include "support/server_fixture.hpp"

TEST_F(Server, BodyLargerThanTheLimitIs413) {
  app.set_client_max_size(1024);
  start();
  run([&]() -> awaitable<void> {
    {
      auto c = co_await connect();
      auto ok = co_await c.request(http::verb::post, "/echo", std::string(1024, 'a'));
      EXPECT_EQ(ok.result_int(), 200);
      EXPECT_EQ(ok.body().size(), 1024u);
      auto res = co_await c.request(http::verb::post, "/echo", std::string(1025, 'a'));
      EXPECT_EQ(res.result_int(), 413);
      EXPECT_TRUE(co_await c.closed_by_peer());
    }
    {
      // Chunked: the size is only known while reading.
      auto c = co_await connect();
      co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
      co_await c.send("400\r\n" + std::string(1024, 'b') + "\r\n");
      co_await c.send("10\r\n" + std::string(16, 'c') + "\r\n0\r\n\r\n");
      auto res = co_await c.read_response();
      EXPECT_EQ(res.result_int(), 413);
    }
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}

TEST_F(Server, OversizedHeadersAre431) {
  start({.max_header_bytes = 1024});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    co_await c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2048, 'x') + "\r\n\r\n");
    auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 431);
  });
}

// A declared Content-Length reserves nothing: 200 connections that each
// declare 1 MiB and send 1 KB hold about 200 KB of bodies, not 200 MiB. (3,000
// of them grew the demo's virtual size by 3.1 GB.)
TEST_F(Server, ADeclaredContentLengthIsNotReservedBeforeTheBodyArrives) {
  start();
  run([&]() -> awaitable<void> {
    const auto before = vm_size_kb();
    std::vector<raw_client> held;
    for (int i = 0; i < 200; ++i) {
      auto c = co_await connect();
      co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n" + std::string(1024, 'x'));
      held.push_back(std::move(c));
    }
    // All 200 admitted: their declared lengths are accounted for, not allocated.
    co_await until([&] { return loupe::server::body_bytes_in_flight() == 200u * 1048576; });
    const auto grown_mb = (vm_size_kb() - before) / 1024;
    EXPECT_LT(grown_mb, 50) << "virtual size grew by " << grown_mb << " MiB for 200 KB of bodies";
  });
}

// Body bytes held at once by all requests are bounded
// (max_body_bytes_in_flight). A body with a Content-Length that does not fit
// waits, unread, for room: once the request before it is answered, it is
// read and served. (Without the bound, 1,000 concurrent 900 KB uploads took
// the demo to 1.2 GB of RSS.)
TEST_F(Server, ABodyThatDoesNotFitTheBudgetWaitsForRoomThenIsServed) {
  start({.max_body_bytes_in_flight = 64 * 1024});
  run([&]() -> awaitable<void> {
    const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n";
    auto a = co_await connect();
    co_await a.send(head + std::string(40000, 'a'));
    co_await until([&] { return loupe::server::body_bytes_in_flight() == 50000; });  // admitted: reserved
    auto b = co_await connect();
    co_await b.send(head + std::string(50000, 'b'));
    co_await sleep_for(100ms);
    EXPECT_EQ(loupe::server::body_bytes_in_flight(), 50000u) << "the second body was admitted past the budget";
    co_await a.send(std::string(10000, 'a'));
    const auto first = co_await a.read_response();
    EXPECT_EQ(first.result_int(), 200);
    EXPECT_EQ(first.body(), std::string(40000, 'a') + std::string(10000, 'a'));
    const auto second = co_await b.read_response();  // admitted once the first was over
    EXPECT_EQ(second.result_int(), 200);
    EXPECT_EQ(second.body(), std::string(50000, 'b'));
    co_await until([&] { return loupe::server::body_bytes_in_flight() == 0; });
  });
}

// A body that finds no room within the body timeout is answered 503; one
// larger than the whole budget 413; a chunked body (its length unknown) that
// would pass it 503.
TEST_P(ServerTimes, ABodyThatFindsNoRoomInTimeIs503) {
  app.post("/hold", [](request& req) -> awaitable<response> {
    co_await sleep_for(1500ms);  // holds its body's share until answered
    co_return response::text(std::to_string(req.bytes().size()));
  });
  start({.body_timeout = 300ms, .max_body_bytes_in_flight = 64 * 1024});
  run([&]() -> awaitable<void> {
    auto holder = co_await connect();
    co_await holder.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n" + std::string(50000, 'h'));
    co_await until([&] { return srv->requests_in_flight() == 1; });
    auto late = co_await connect();
    co_await late.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n" + std::string(50000, 'x'));
    const auto refused = co_await late.read_response();
    EXPECT_EQ(refused.result_int(), 503);
    EXPECT_NE(refused.body().find("no room for the body within 300 ms"), std::string::npos) << refused.body();
    auto chunked = co_await connect();
    co_await chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4e20\r\n" +
                          std::string(20000, 'c') + "\r\n0\r\n\r\n");
    const auto over = co_await chunked.read_response();
    EXPECT_EQ(over.result_int(), 503);
    EXPECT_NE(over.body().find("request bodies in flight reached 65536 bytes"), std::string::npos) << over.body();
    auto huge = co_await connect();
    co_await huge.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n");
    const auto too_large = co_await huge.read_response();
    EXPECT_EQ(too_large.result_int(), 413);
    EXPECT_NE(too_large.body().find("exceeds max_body_bytes_in_flight (65536)"), std::string::npos) << too_large.body();
    EXPECT_EQ((co_await holder.read_response()).body(), "50000");
    co_await until([&] { return loupe::server::body_bytes_in_flight() == 0; });
    auto next = co_await connect();
    EXPECT_EQ((co_await next.request(http::verb::post, "/echo", std::string(60000, 'n'))).result_int(), 200);
  });
}

TEST_F(Server, PastTheConnectionLimitNewConnectionsAreRefusedWhileExistingOnesAreServed) {
  start({.max_connections = 4});
  run([&]() -> awaitable<void> {
    std::vector<raw_client> held;
    for (int i = 0; i < 4; ++i) {
      auto c = co_await connect();  // named: GCC 12 destroys co_await temporaries twice
      held.push_back(std::move(c));
      EXPECT_EQ((co_await held.back().request(http::verb::get, "/")).result_int(), 200);
    }
    // One of them has a request in flight while the others knock.
    std::optional<http_response> slow;
    auto slow_task = [&]() -> awaitable<void> { slow = co_await held[0].request(http::verb::get, "/sleep?ms=300"); };
    loupe::spawn(loop, "slow", slow_task());
    co_await until([&] { return handlers_started == 1; });
    for (int i = 0; i < 16; ++i) {
      auto extra = co_await connect();
      auto res = co_await extra.read_response();
      EXPECT_EQ(res.result_int(), 503);
      EXPECT_FALSE(res.keep_alive());
      EXPECT_TRUE(co_await extra.closed_by_peer());
    }
    co_await until([&] { return srv->connection_count() == 4; });
    // Every held connection is still served, the busy one included.
    co_await until([&] { return slow.has_value(); });
    EXPECT_EQ(slow->result_int(), 200);
    for (auto& c : held) EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
    // A place freed is a place for the next client.
    held.pop_back();
    co_await until([&] { return srv->connection_count() == 3; });
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}

TEST_F(Server, ConnectionsPastTheLimitGet503) {
  start({.max_connections = 1});
  run([&]() -> awaitable<void> {
    auto first = co_await connect();
    EXPECT_EQ((co_await first.request(http::verb::get, "/")).result_int(), 200);
    auto second = co_await connect();
    auto res = co_await second.read_response();
    EXPECT_EQ(res.result_int(), 503);
    EXPECT_TRUE(co_await second.closed_by_peer());
    // The existing connection is still served.
    EXPECT_EQ((co_await first.request(http::verb::get, "/")).result_int(), 200);
  });
}
