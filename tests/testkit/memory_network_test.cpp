// The in-memory network: the same functional tests on TCP and in memory
// (keep-alive, pipelining, half-close, large bodies, WebSockets, map_host),
// and what only the in-memory network does (no ports, names).
#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/websocket.hpp>
#include <loupe/testkit/test.hpp>

#include "support/clock_mode.hpp"

#include <boost/beast/http/verb.hpp>

using namespace std::chrono_literals;
using loupe::awaitable;
using loupe::request;
using loupe::response;
namespace http = boost::beast::http;
using loupe::testkit::network;

namespace {

loupe::application shop() {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  app.get("/n/{n}", [](request& req) -> awaitable<response> {
    co_return response::text("item " + std::string(req.match_info().get("n").value_or("")));
  });
  app.post("/echo", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
  app.get("/big", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(std::stoul(std::string(req.query().get("bytes").value_or("0"))), 'b'));
  });
  app.get("/remote", [](request& req) -> awaitable<response> {
    co_return response::text(req.remote().address().to_string() + ":" + std::to_string(req.remote().port()));
  });
  app.websocket("/ws", [](loupe::websocket& ws, request&) -> awaitable<void> {
    while (auto msg = co_await ws.receive()) co_await ws.send(msg->data, msg->binary);
  });
  return app;
}

class Networks : public loupe::testkit::test, public ::testing::WithParamInterface<network> {
 protected:
  void SetUp() override { use_network(GetParam()); }
};

std::string network_name(const ::testing::TestParamInfo<network>& i) {
  return i.param == network::memory ? "Memory" : "Tcp";
}

}  // namespace

TEST_P(Networks, KeepAliveServesManyRequestsOnOneConnection) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    auto& http = client(srv);
    for (int i = 0; i < 5; ++i) {
      auto res = co_await http.get("/n/" + std::to_string(i));
      EXPECT_EQ(res.text(), "item " + std::to_string(i));
    }
    EXPECT_EQ(http.session().connections_opened(), 1u);
    EXPECT_EQ(srv.native().connection_count(), 1u);
    EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/n/{n}"}}), 5);
  });
}

TEST_P(Networks, PipelinedRequestsAreAnsweredInOrder) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect(srv.where());
    co_await c.send("GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /n/3 HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 1; i <= 3; ++i) EXPECT_EQ((co_await c.read_response()).body(), "item " + std::to_string(i));
  });
}

TEST_P(Networks, AHalfClosedConnectionIsAnsweredThenClosed) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect(srv.where());
    co_await c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    c.shutdown_send();  // the server reads end of stream after the request
    auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "hello");
    EXPECT_TRUE(co_await c.closed_by_peer());
  });
}

TEST_P(Networks, LargeBodiesCrossBothWays) {
  run_test_body([&]() -> awaitable<void> {
    auto app = shop();
    app.set_client_max_size(32 * 1024 * 1024);
    auto& srv = server(std::move(app));
    auto& http = client(srv);
    std::string up(8 * 1024 * 1024, 'u');
    for (std::size_t i = 0; i < up.size(); i += 4096) up[i] = static_cast<char>('a' + (i / 4096) % 26);
    loupe::request_options post{.body = up};
    auto echoed = co_await http.post("/echo", std::move(post));
    EXPECT_EQ(echoed.text().size(), up.size());
    EXPECT_TRUE(echoed.text() == up);
    auto big = co_await http.get("/big?bytes=16777216");
    EXPECT_EQ(big.text().size(), 16u * 1024 * 1024);
  });
}

TEST_P(Networks, AWebSocketClientReachesTheServer) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    auto ws = co_await loupe::websocket::connect(loop, srv.url("/ws", "ws"));
    co_await ws->send("ping");
    auto reply = co_await ws->receive();
    CO_ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->data, "ping");
    co_await ws->close(1000, "done");
  });
}

TEST_P(Networks, MapHostSendsAnAppsClientToTheServer) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    map_host("pong.test", srv);
    loupe::client_session http(loop);  // as application code would call it
    auto res = co_await http.get("http://pong.test:8080/n/7");
    EXPECT_EQ(res.text(), "item 7");
    co_await http.close();
  });
}

TEST_P(Networks, TheAccessLogSaysWhereTheClientIs) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    auto& http = client(srv);
    auto res = co_await http.get("/remote");
    const auto recs = logs({.logger = "loupe.access"});
    CO_ASSERT_EQ(recs.size(), 1u);
    if (GetParam() == network::memory) {
      EXPECT_EQ(res.text(), "0.0.0.0:0");  // no address: the empty endpoint
      EXPECT_EQ(recs[0].json.at("remote"), "memory");
    } else {
      EXPECT_EQ(res.text().rfind("127.0.0.1:", 0), 0u) << res.text();
      EXPECT_EQ(recs[0].json.at("remote"), "127.0.0.1");
    }
  });
}

TEST_P(Networks, TheDefault75sKeepAliveTimeoutRunsOnVirtualTime) {
  use_virtual_time();
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop());
    loupe::testkit::raw_client c(loop.get_executor(), 10min);
    co_await c.connect(srv.where());
    EXPECT_EQ((co_await c.request(http::verb::get, "/")).result_int(), 200u);
    const auto from = loupe::clock::now();
    EXPECT_TRUE(co_await c.closed_by_peer());
    EXPECT_GE(loupe::clock::now() - from, 75s);
    EXPECT_LE(loupe::clock::now() - from, 76s);
  });
}

INSTANTIATE_TEST_SUITE_P(Network, Networks, ::testing::Values(network::tcp, network::memory), network_name);

LOUPE_TEST(MemoryNetwork, AServerTakesNoPort) {
  use_memory_network();
  auto& srv = server(shop());
  EXPECT_EQ(srv.port(), 0u);
  EXPECT_TRUE(srv.native().endpoints().empty());
  CO_ASSERT_EQ(srv.native().memory_endpoints().size(), 1u);
  EXPECT_EQ(srv.url("/x"), "http://" + srv.where().memory + "/x");
  EXPECT_TRUE(loupe::memory_listening(srv.where().memory));
  auto& http = client(srv);
  auto res = co_await http.get("/");
  EXPECT_EQ(res.text(), "Hello, world!");
}

LOUPE_TEST(MemoryNetwork, ANameNobodyListensUnderIsRefused) {
  // (A host that is no listener's name is looked up in DNS as usual; one
  // mapped to the in-memory network is refused like a closed port.)
  loupe::map_host(loop, "api.test", loupe::memory_endpoint{"nobody.memory"});
  auto& http = client("http://api.test");
  try {
    co_await http.get("/");
    ADD_FAILURE() << "no client_error";
  } catch (const loupe::client_error& e) {
    EXPECT_EQ(e.code(), loupe::client_errc::connection_failed);
    EXPECT_NE(std::string(e.what()).find("no server listens on the in-memory network under 'nobody.memory'"),
              std::string::npos)
        << e.what();
  }
}

LOUPE_TEST(MemoryNetwork, AClosedServersNameIsFreeAgainAndRefused) {
  loupe::application app = shop();
  {
    loupe::server srv(loop, app);
    srv.listen_memory("again.test");
    EXPECT_THROW(srv.listen_memory("again.test"), boost::system::system_error);  // taken
    co_await srv.shutdown(1s);
  }
  EXPECT_FALSE(loupe::memory_listening("again.test"));
  EXPECT_THROW(loupe::memory_connect(loop.get_executor(), "again.test"), boost::system::system_error);
  loupe::server next(loop, app);
  next.listen_memory("again.test");  // free again
  EXPECT_TRUE(loupe::memory_listening("again.test"));
  co_await next.shutdown(1s);
}

LOUPE_TEST(MemoryNetwork, AServerListensOnBothNetworksAtOnce) {
  loupe::application app = shop();
  loupe::server srv(loop, app);
  const auto ep = srv.listen("127.0.0.1", 0);
  srv.listen_memory("both.test");
  loupe::client_session http(loop);
  EXPECT_EQ((co_await http.get("http://both.test/n/1")).text(), "item 1");
  EXPECT_EQ((co_await http.get("http://127.0.0.1:" + std::to_string(ep.port()) + "/n/2")).text(), "item 2");
  co_await http.close();
  co_await srv.shutdown(1s);
}
