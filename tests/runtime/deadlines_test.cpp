// The server's deadlines: header, keep-alive, body and write timeouts, and
// what does not restart them (blank lines, a trickle of bytes).
#include "support/server_fixture.hpp"

// Every test of ServerTimes (here, limits_test.cpp, shutdown_test.cpp) runs
// twice: on real time, and on virtual time, where it takes no real time.
INSTANTIATE_TEST_SUITE_P(Clock, ServerTimes, both_clocks, clock_mode_name);

TEST_P(ServerTimes, SlowHeadersHitTheHeaderTimeout) {
  start({.header_timeout = 200ms});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    co_await c.send("GET / HTTP/1.1\r\nHost: t\r\n");  // and never the blank line
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
  });
}

TEST_P(ServerTimes, HeadersTrickledAByteAtATimeAreCutOffByTheHeaderTimeout) {
  // Slowloris: every byte arrives before any inactivity timer could fire, but
  // the header deadline counts from the connection's start, not the last byte.
  start({.header_timeout = 300ms});
  run([&]() -> awaitable<void> {
    const std::string header = "GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\nUser-Agent: one-byte-at-a-time\r\n\r\n";
    auto c = co_await connect();
    std::size_t sent = 0;
    try {
      for (; sent < header.size(); ++sent) {
        co_await c.send(std::string_view(header).substr(sent, 1));
        co_await sleep_for(50ms);  // the whole header would take 3.5 s
      }
    } catch (const boost::system::system_error&) {
      // The server closed the connection: the next write fails.
    }
    EXPECT_LT(sent, header.size()) << "the whole header was accepted";
    EXPECT_TRUE(co_await c.closed_by_peer());
    EXPECT_EQ(handlers_started, 0);
    co_await until([&] { return srv->connection_count() == 0; });
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}

// Blank lines before a request line are ignored (RFC 9112 2.2), but they are
// the request's first bytes: a client sending only CRLFs is cut off at the
// header timeout. (They re-armed the 75 s keep-alive timeout: 10,000 such
// connections, 2 bytes a minute each, held the server at its connection
// limit for as long as the attack ran.)
TEST_P(ServerTimes, BlankLinesTrickledBeforeTheFirstRequestAreCutOffByTheHeaderTimeout) {
  start({.header_timeout = 300ms, .keepalive_timeout = 60s});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    const std::size_t sent = co_await trickle(c, "\r\n", 60, 50ms);  // 3 s of CRLFs, unless cut off
    EXPECT_LT(sent, 60u) << "every blank line was accepted";
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}

TEST_P(ServerTimes, BlankLinesTrickledOnAKeepAliveConnectionAreCutOffByTheHeaderTimeout) {
  start({.header_timeout = 300ms, .keepalive_timeout = 60s});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
    const std::size_t sent = co_await trickle(c, "\r\n", 60, 50ms);
    EXPECT_LT(sent, 60u) << "blank lines kept an idle keep-alive connection open";
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
  });
}

// One CRLF after a request (old clients send one after a POST body) leaves
// the connection idle on keep-alive time, not on the header timeout.
TEST_P(ServerTimes, OneCrlfAfterARequestKeepsTheConnectionOnKeepAlive) {
  start({.header_timeout = 300ms, .keepalive_timeout = 60s});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\r\n");
    EXPECT_EQ((co_await c.read_response()).body(), "hi");
    co_await sleep_for(700ms);  // past the header timeout
    EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
  });
}

TEST_P(ServerTimes, DeadlinesCoverReadsAndWritesNotTheHandler) {
  // Deadlines are enforced by a sweeper: a handler that runs longer than every
  // timeout is not cut off, and the connection still times out when idle.
  start({.header_timeout = 100ms, .keepalive_timeout = 100ms, .body_timeout = 100ms, .write_timeout = 100ms});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    EXPECT_EQ((co_await c.request(http::verb::get, "/sleep?ms=350")).result_int(), 200);
    EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
  });
}

TEST_P(ServerTimes, IdleKeepAliveConnectionIsClosedAfterTheTimeout) {
  start({.keepalive_timeout = 100ms});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200);
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
  });
}

TEST_P(ServerTimes, ABodySentTooSlowlyHitsTheBodyTimeout) {
  start({.body_timeout = 300ms});
  run([&]() -> awaitable<void> {
    auto c = co_await connect();
    co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    const std::size_t sent = co_await trickle(c, "0123456789", 10, 50ms);  // 500 ms for the whole body
    EXPECT_LT(sent, 10u) << "the whole body was accepted";
    EXPECT_TRUE(co_await c.closed_by_peer());
    co_await until([&] { return srv->connection_count() == 0; });
    EXPECT_EQ(co_await fresh_get_status(), 200u);
  });
}
