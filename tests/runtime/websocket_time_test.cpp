// WebSocket timeouts on loupe::clock, under virtual time: an idle peer is
// pinged at half the idle timeout and dropped at all of it; a peer that
// answers the pings stays; the client's handshake timeout.
#include <loupe/runtime/websocket.hpp>
#include <loupe/testkit/test.hpp>

#include <boost/beast/http/verb.hpp>

using namespace std::chrono_literals;
using loupe::awaitable;
using loupe::request;
using loupe::websocket;

namespace {

class WebSocketTime : public loupe::testkit::test {
 protected:
  WebSocketTime() {
    use_virtual_time();
    start_ = loupe::clock::now();
    app.websocket("/echo",
                  [this](websocket& ws, request&) -> awaitable<void> {
                    while (auto m = co_await ws.receive()) co_await ws.send(m->data, m->binary);
                    server_code = ws.close_code();
                  },
                  {.idle_timeout = 60s});
  }
  std::chrono::nanoseconds elapsed() const { return loupe::clock::now() - start_; }

  loupe::application app;
  std::uint16_t server_code = 0;
  loupe::clock::time_point start_;
};

const char* const upgrade = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

}  // namespace

LOUPE_TEST_F(WebSocketTime, APeerThatNeverAnswersIsPingedThenDroppedAtTheIdleTimeout) {
  auto& srv = server(app);
  loupe::testkit::raw_client c(loop.get_executor(), 10min);
  co_await c.connect(srv.where());
  co_await c.send(upgrade);
  CO_ASSERT_EQ((co_await c.read_response()).result_int(), 101u);
  // The first bytes after the handshake: the server's ping, at 30 s.
  const std::string frame = co_await c.read_some();
  CO_ASSERT_GE(frame.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(frame[0]), 0x89u);  // FIN + ping
  EXPECT_EQ(elapsed(), 30s);
  // Never answered (this client reads frames but sends no pong): dropped at 60 s.
  EXPECT_TRUE(co_await c.closed_by_peer());
  EXPECT_EQ(elapsed(), 60s);
  co_await loupe::testkit::wait_until([&] { return server_code != 0; }, 100ms);
  EXPECT_EQ(server_code, 1006u);  // abnormal: no close handshake
}

LOUPE_TEST_F(WebSocketTime, APeerThatAnswersPingsStaysPastTheIdleTimeout) {
  auto& srv = server(app);
  auto ws = co_await websocket::connect(loop, srv.url("/echo", "ws"));
  // A reader on the client answers the server's pings as they come.
  std::vector<std::string> got;
  auto reader = [&]() -> awaitable<void> {
    while (auto m = co_await ws->receive()) got.push_back(m->data);
  };
  const auto reading = loupe::spawn(loop, "reader", reader());
  co_await loupe::sleep_for(200s);  // silent for over three idle timeouts
  co_await ws->send("still here");
  co_await loupe::testkit::wait_until([&] { return !got.empty(); }, 100ms);
  EXPECT_EQ(got, std::vector<std::string>{"still here"});
  EXPECT_EQ(srv.native().connection_count(), 1u);  // never dropped
  co_await ws->close(1000, "done");
  co_await loupe::join(loop, reading);
  EXPECT_EQ(ws->close_code(), 1000u);
}

LOUPE_TEST_F(WebSocketTime, TheClientsHandshakeTimeoutRunsOnVirtualTime) {
  loupe::testkit::fault_server silent(loop, loupe::testkit::fault::no_response());
  loupe::websocket_options o{.handshake_timeout = 30s};
  try {
    co_await websocket::connect(loop, "ws://127.0.0.1:" + std::to_string(silent.port()) + "/ws", o);
    ADD_FAILURE() << "no client_error";
  } catch (const loupe::client_error& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_EQ(elapsed(), 30s);
}
