// WebSocket routes and client: echo, ping/pong, close codes, size limit, shutdown.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/websocket.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/fixture.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include <gtest/gtest.h>

namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::websocket;
using namespace std::chrono_literals;

namespace {

class WebSocket : public loupe::testkit::server_fixture {
 protected:
  void SetUp() override {
    app.websocket("/echo",
                  [](websocket& ws, request&) -> awaitable<void> {
                    while (auto m = co_await ws.receive()) co_await ws.send(m->data, m->binary);
                  },
                  {.max_message_bytes = 1024});
    app.websocket("/bye", [](websocket& ws, request&) -> awaitable<void> {
      co_await ws.send("goodbye");
      co_await ws.close(4000, "bye now");
    });
    app.websocket("/wait", [this](websocket& ws, request&) -> awaitable<void> {
      ++waiting;
      while (co_await ws.receive()) {
      }
    });
    start();
    base = url("", "ws");
  }

  std::string base;
  int waiting = 0;
};

}  // namespace

TEST_F(WebSocket, EchoesTextAndBinaryAndAnswersPings) {
  run([&]() -> awaitable<void> {
    auto ws = co_await websocket::connect(loop, base + "/echo");
    co_await ws->send("hello");
    auto a = co_await ws->receive();
    EXPECT_TRUE(a && a->data == "hello" && !a->binary);
    co_await ws->send(std::string("\x00\x01\xff", 3), true);
    auto b = co_await ws->receive();
    EXPECT_TRUE(b && b->data == std::string("\x00\x01\xff", 3) && b->binary);
    co_await ws->ping("are you there");
    co_await ws->send("after ping");
    auto c = co_await ws->receive();  // the pong is handled while reading
    EXPECT_TRUE(c && c->data == "after ping");
    EXPECT_EQ(ws->pongs(), 1u);
    co_await ws->close(1000, "done");
    EXPECT_EQ(ws->close_code(), 1000);
  });
}

TEST_F(WebSocket, ServerCloseCodeAndReasonReachTheClient) {
  run([&]() -> awaitable<void> {
    auto ws = co_await websocket::connect(loop, base + "/bye");
    auto m = co_await ws->receive();
    EXPECT_TRUE(m && m->data == "goodbye");
    EXPECT_FALSE(co_await ws->receive());
    EXPECT_EQ(ws->close_code(), 4000);
    EXPECT_EQ(ws->close_reason(), "bye now");
  });
}

TEST_F(WebSocket, MessagePastTheLimitClosesWith1009) {
  run([&]() -> awaitable<void> {
    auto ws = co_await websocket::connect(loop, base + "/echo");
    co_await ws->send(std::string(2048, 'x'));
    EXPECT_FALSE(co_await ws->receive());
    EXPECT_EQ(ws->close_code(), 1009);
  });
}

TEST_F(WebSocket, PlainGetIs426AndTheServerGoesOn) {
  run([&]() -> awaitable<void> {
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect(ep);
    auto res = co_await c.request(http::verb::get, "/echo");
    EXPECT_EQ(res.result_int(), 426);
    auto ws = co_await websocket::connect(loop, base + "/echo");
    co_await ws->send("still here");
    auto m = co_await ws->receive();
    EXPECT_TRUE(m && m->data == "still here");
    co_await ws->close();
  });
}

TEST_F(WebSocket, ShutdownClosesOpenWebSockets) {
  run([&]() -> awaitable<void> {
    auto ws = co_await websocket::connect(loop, base + "/wait");
    co_await loupe::testkit::wait_until([&] { return waiting == 1; });
    bool shut = false;
    auto stopper = [&]() -> awaitable<void> {
      co_await srv->shutdown(5s);
      shut = true;
    };
    loupe::spawn(loop, "shutdown", stopper());
    EXPECT_FALSE(co_await ws->receive());
    EXPECT_NE(ws->close_code(), 0);
    co_await loupe::testkit::wait_until([&] { return shut; });
    EXPECT_EQ(srv->connection_count(), 0u);
  });
}

TEST_F(WebSocket, ConnectToANonWebSocketPathIsAClearError) {
  run([&]() -> awaitable<void> {
    bool failed = false;
    try {
      (void)co_await websocket::connect(loop, base + "/nothing-here");
    } catch (const loupe::client_error& e) {
      failed = e.code() == loupe::client_errc::bad_response;
    }
    EXPECT_TRUE(failed);
  });
}

// A handshake that came with a body does not hold the body's share of the
// request-body budget for the (possibly hours-long) session.
TEST_F(WebSocket, AHandshakeBodyIsNotHeldForTheSession) {
  run([&]() -> awaitable<void> {
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send(
        "GET /wait HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5000\r\n\r\n" +
        std::string(5000, 'x'));
    const auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 101);
    co_await loupe::testkit::wait_until([&] { return waiting == 1; });
    EXPECT_EQ(loupe::server::body_bytes_in_flight(), 0u);
    c.close();
    co_await loupe::testkit::wait_until([&] { return srv->connection_count() == 0; });
  });
}
