// HTTPS: the server over TLS on both networks, the client's checks and the
// code each failure has, the handshake's bounds, plain HTTP to an HTTPS port,
// and a certificate reloaded without dropping a connection.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/tls.hpp>
#include <loupe/runtime/websocket.hpp>
#include <loupe/testkit/test.hpp>
#include <loupe/testkit/tls.hpp>

#include <optional>
#include <string>

using namespace std::chrono_literals;
using loupe::awaitable;
using loupe::client_errc;
using loupe::client_error;
using loupe::request;
using loupe::response;
using loupe::testkit::network;
using loupe::testkit::server_tls;
using loupe::testkit::test_ca;

namespace {

loupe::application shop() {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  app.post("/echo", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
  app.get("/big", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(std::stoul(std::string(req.query().get("bytes").value_or("0"))), 'b'));
  });
  app.websocket("/ws", [](loupe::websocket& ws, request&) -> awaitable<void> {
    while (auto msg = co_await ws.receive()) co_await ws.send(msg->data, msg->binary);
  });
  return app;
}

// The code and message of the client_error `body` throws (none: nullopt).
struct failure {
  std::optional<client_errc> code;
  std::string what;
};
template <class F>
awaitable<failure> failure_of(F body) {
  try {
    co_await body();
  } catch (const client_error& e) {
    co_return failure{static_cast<client_errc>(e.code().value()), e.what()};
  }
  co_return failure{};
}

class TlsNetworks : public loupe::testkit::test, public ::testing::WithParamInterface<network> {
 protected:
  void SetUp() override { use_network(GetParam()); }
};

std::string network_name(const ::testing::TestParamInfo<network>& i) {
  return i.param == network::memory ? "Memory" : "Tcp";
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Both, TlsNetworks, ::testing::Values(network::tcp, network::memory), network_name);

TEST_P(TlsNetworks, ServesHttpsOnKeepAliveConnections) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop(), {.tls = server_tls()});
    EXPECT_TRUE(srv.url("/").starts_with("https://")) << srv.url("/");
    auto& http = client(srv);
    for (int i = 0; i < 3; ++i) {
      auto res = co_await http.get("/");
      EXPECT_EQ(res.status_code(), 200u);
      EXPECT_EQ(res.text(), "Hello, world!");
    }
    EXPECT_EQ(http.session().connections_opened(), 1u);
    EXPECT_EQ(srv.metric("http_server_tls_handshakes_total", {{"tls_protocol_version", "TLSv1.3"}}), 1);
    EXPECT_EQ(srv.metric("http_server_requests_total", {{"http_route", "/"}}), 3);
  });
}

TEST_P(TlsNetworks, LargeBodiesCrossBothWays) {
  run_test_body([&]() -> awaitable<void> {
    auto app = shop();
    app.set_client_max_size(16 * 1024 * 1024);
    auto& srv = server(std::move(app), {.tls = server_tls()});
    auto& http = client(srv);
    std::string up(4 * 1024 * 1024, 'u');
    for (std::size_t i = 0; i < up.size(); i += 4096) up[i] = static_cast<char>('a' + (i / 4096) % 26);
    loupe::request_options post{.body = up};
    auto echoed = co_await http.post("/echo", std::move(post));
    EXPECT_TRUE(echoed.text() == up);
    auto big = co_await http.get("/big?bytes=8388608");
    EXPECT_EQ(big.text().size(), 8u * 1024 * 1024);
  });
}

TEST_P(TlsNetworks, StreamedResponseBodiesArriveInPieces) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop(), {.tls = server_tls()});
    auto& http = client(srv);
    auto s = co_await http.session().stream(boost::beast::http::verb::get, srv.url("/big?bytes=300000"));
    EXPECT_EQ(s->status_code(), 200u);
    std::size_t total = 0;
    while (auto piece = co_await s->read_chunk()) total += piece->size();
    EXPECT_EQ(total, 300000u);
  });
}

LOUPE_TEST(Tls, EachVerificationFailureHasItsOwnCode) {
  // Untrusted: self-signed, or signed by a CA the client does not trust.
  auto& stranger = server(shop(), {.tls = server_tls(loupe::testkit::self_signed())});
  auto& expired = server(shop(), {.tls = server_tls({.valid_from = -7200s, .valid_until = -60s})});
  auto& elsewhere = server(shop(), {.tls = server_tls({.hosts = {"other.test"}})});
  auto& plain = server(shop());

  loupe::client_options trusting;
  trusting.tls = loupe::testkit::trust_test_ca();
  loupe::client_session http(loop, trusting);
  const auto get = [&](std::string url) {
    return failure_of([&http, url]() -> awaitable<void> { (void)co_await http.get(url); });
  };
  auto untrusted = co_await get(stranger.url("/"));
  EXPECT_EQ(untrusted.code, client_errc::certificate_untrusted) << untrusted.what;
  EXPECT_NE(untrusted.what.find("self-signed"), std::string::npos) << untrusted.what;
  EXPECT_NE(untrusted.what.find(std::to_string(stranger.port())), std::string::npos) << untrusted.what;

  auto old = co_await get(expired.url("/"));
  EXPECT_EQ(old.code, client_errc::certificate_expired) << old.what;
  EXPECT_NE(old.what.find("expired"), std::string::npos) << old.what;

  auto wrong = co_await get(elsewhere.url("/"));  // https://127.0.0.1:PORT/ against other.test
  EXPECT_EQ(wrong.code, client_errc::certificate_wrong_host) << wrong.what;

  // https:// to a plain HTTP server: no TLS at all.
  auto not_tls = co_await get("https://127.0.0.1:" + std::to_string(plain.port()) + "/");
  EXPECT_EQ(not_tls.code, client_errc::tls_handshake_failed) << not_tls.what;

  // The system's CA store (the default) does not know the test CA.
  auto& site = server(shop(), {.tls = server_tls()});
  loupe::client_session system_store(loop);
  auto unknown = co_await failure_of([&]() -> awaitable<void> { (void)co_await system_store.get(site.url("/")); });
  EXPECT_EQ(unknown.code, client_errc::certificate_untrusted) << unknown.what;

  // verify = false accepts anything (test rigs only).
  loupe::client_options lax;
  lax.tls.verify = false;
  loupe::client_session anything(loop, lax);
  EXPECT_EQ((co_await anything.get(stranger.url("/"))).status_code(), 200u);
  EXPECT_EQ((co_await anything.get(elsewhere.url("/"))).status_code(), 200u);

  // The servers counted the handshakes their clients broke off; nothing was an error.
  EXPECT_GE(stranger.metric("http_server_tls_handshake_failures_total", {{"reason", "certificate_rejected"}}).value_or(0),
            1);
  EXPECT_EQ(stranger.metric("http_server_requests_total", {{"http_route", "/"}}), 1);
}

LOUPE_TEST(Tls, TheHostNameIsCheckedAndSentAsSni) {
  // A name mapped to the server: the certificate must be for that name.
  auto& shop_server = server(shop(), {.tls = server_tls({.hosts = {"shop.test"}})});
  map_host("shop.test", shop_server);
  map_host("other.test", shop_server);
  auto& http = client("https://shop.test");
  EXPECT_EQ((co_await http.get("/")).text(), "Hello, world!");
  loupe::client_options trusting;
  trusting.tls = loupe::testkit::trust_test_ca();
  loupe::client_session session(loop, trusting);
  auto wrong = co_await failure_of([&]() -> awaitable<void> { (void)co_await session.get("https://other.test/"); });
  EXPECT_EQ(wrong.code, client_errc::certificate_wrong_host) << wrong.what;
  EXPECT_NE(wrong.what.find("other.test"), std::string::npos) << wrong.what;
}

LOUPE_TEST(Tls, PlainHttpToTheHttpsPortIsToldSo) {
  auto& srv = server(shop(), {.tls = server_tls()});
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(srv.where());
  co_await c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto res = co_await c.read_response();
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find("https://"), std::string::npos) << res.body();
  EXPECT_TRUE(co_await c.closed_by_peer());
  EXPECT_EQ(srv.metric("http_server_tls_handshake_failures_total", {{"reason", "http_on_https_port"}}), 1);
  // The server goes on. (The client made outside the co_await: GCC 12.)
  auto& http = client(srv);
  EXPECT_EQ((co_await http.get("/")).status_code(), 200u);
}

LOUPE_TEST(Tls, AStalledHandshakeIsCutOffAtTheHeaderTimeout) {
  use_virtual_time();
  use_memory_network();
  auto& srv = server(shop(), {.header_timeout = 5s, .tls = server_tls()});
  loupe::testkit::raw_client c(loop.get_executor(), 60s);
  co_await c.connect(srv.where());
  co_await c.send(std::string("\x16\x03\x01", 3));  // the start of a ClientHello, and no more
  const auto t0 = loupe::clock::now();
  EXPECT_TRUE(co_await c.closed_by_peer());
  const auto took = loupe::clock::now() - t0;
  EXPECT_GE(took, 4s);
  EXPECT_LE(took, 6s);
  EXPECT_EQ(srv.metric("http_server_tls_handshake_failures_total", {{"reason", "timeout"}}), 1);
}

LOUPE_TEST(Tls, AReloadedCertificateServesNewConnectionsAndKeepsOpenOnes) {
  auto tls = server_tls();
  auto& srv = server(shop(), {.tls = tls});
  auto& before = client(srv);
  EXPECT_EQ((co_await before.get("/")).status_code(), 200u);  // one pooled connection, old certificate

  const test_ca other("another CA");
  auto next = other.issue();
  tls->reload({.cert_pem = next.cert_pem, .key_pem = next.key_pem});
  EXPECT_EQ(tls->generation(), 1u);

  // The open connection goes on with the certificate it was made with.
  EXPECT_EQ((co_await before.get("/")).status_code(), 200u);
  EXPECT_EQ(before.session().connections_opened(), 1u);
  // A new connection gets the new one: untrusted by the old CA's clients, trusted by the new CA's.
  loupe::client_options old_ca;
  old_ca.tls = loupe::testkit::trust_test_ca();
  loupe::client_session stale(loop, old_ca);
  auto refused = co_await failure_of([&]() -> awaitable<void> { (void)co_await stale.get(srv.url("/")); });
  EXPECT_EQ(refused.code, client_errc::certificate_untrusted) << refused.what;
  loupe::client_options new_ca;
  new_ca.tls.ca_pem = other.cert_pem();
  loupe::client_session fresh(loop, new_ca);
  EXPECT_EQ((co_await fresh.get(srv.url("/"))).status_code(), 200u);

  // A bad reload throws and keeps the current certificate.
  EXPECT_THROW(tls->reload({.cert_pem = "not a certificate"}), loupe::tls_config_error);
  auto wrong_key = test_ca::shared().issue();
  EXPECT_THROW(tls->reload({.cert_pem = next.cert_pem, .key_pem = wrong_key.key_pem}), loupe::tls_config_error);
  EXPECT_EQ(tls->generation(), 1u);
  loupe::client_session again(loop, new_ca);
  EXPECT_EQ((co_await again.get(srv.url("/"))).status_code(), 200u);
}

TEST(TlsConfig, BadCertificatesAreClearErrors) {
  try {
    (void)loupe::tls_context::server({.cert_file = "/nonexistent/site.crt"});
    ADD_FAILURE() << "no error";
  } catch (const loupe::tls_config_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/site.crt"), std::string::npos) << e.what();
  }
  auto a = test_ca::shared().issue();
  auto b = test_ca::shared().issue();
  try {
    (void)loupe::tls_context::server({.cert_pem = a.cert_pem, .key_pem = b.key_pem});
    ADD_FAILURE() << "no error";
  } catch (const loupe::tls_config_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  auto ok = loupe::tls_context::server({.cert_pem = a.cert_pem, .key_pem = a.key_pem});
  EXPECT_NE(ok->describe().find("CN=localhost"), std::string::npos) << ok->describe();
}

TEST_P(TlsNetworks, WebSocketsOverTlsEchoAndVerifyTheServer) {
  run_test_body([&]() -> awaitable<void> {
    auto& srv = server(shop(), {.tls = server_tls()});
    EXPECT_TRUE(srv.url("/ws", "ws").starts_with("wss://")) << srv.url("/ws", "ws");
    loupe::websocket_options trusting{.tls = loupe::testkit::trust_test_ca()};
    auto ws = co_await loupe::websocket::connect(loop, srv.url("/ws", "ws"), trusting);
    co_await ws->send("over tls");
    auto reply = co_await ws->receive();
    CO_ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->data, "over tls");
    co_await ws->send(std::string(100000, 'b'), true);  // larger than one TLS record
    auto big = co_await ws->receive();
    CO_ASSERT_TRUE(big.has_value());
    EXPECT_EQ(big->data.size(), 100000u);
    EXPECT_TRUE(big->binary);
    co_await ws->close(1000, "done");
    EXPECT_EQ(ws->close_code(), 1000);
    // Without the CA: the system store does not trust the test CA.
    auto refused = co_await failure_of([&]() -> awaitable<void> {
      (void)co_await loupe::websocket::connect(loop, srv.url("/ws", "ws"));
    });
    EXPECT_EQ(refused.code, client_errc::certificate_untrusted) << refused.what;
  });
}
