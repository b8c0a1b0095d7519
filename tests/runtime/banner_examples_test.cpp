// The examples in the banners of client.hpp, testkit/client.hpp,
// memory_network.hpp, testkit/network.hpp, tls.hpp and testkit/tls.hpp, as they
// are written there, compiled (GCC in the main build, clang in the sanitizer
// build) and run against a small application. The documented
// `co_await http.post(url, {.json = {...}})` did not compile on GCC 12.
// Also: client_response::json() parses once and returns a reference, and
// application state takes move-only types.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/tls.hpp>
#include <loupe/testkit/test.hpp>
#include <loupe/testkit/tls.hpp>

#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>

using loupe::awaitable;
using loupe::request;
using loupe::response;

namespace {

loupe::application shop() {
  loupe::application app;
  app.get("/json", [](request&) -> awaitable<response> { co_return response::json({{"ok", true}}); });
  app.post("/items", [](request& req) -> awaitable<response> { co_return response::json(req.json()); });
  app.get("/orders", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(req.query().get("page").value_or("1")));
  });
  app.post("/orders", [](request& req) -> awaitable<response> { co_return response::json(req.json()); });
  app.post("/login", [](request& req) -> awaitable<response> {
    auto res = response::text("hello " + std::string(req.text()));
    res.set_header("Set-Cookie", "session=1; Path=/");
    co_return res;
  });
  app.get("/old", [](request&) -> awaitable<response> {
    auto res = response::text("moved", response::status_type::found);
    res.set_header("Location", "/json");
    co_return res;
  });
  return app;
}

}  // namespace

LOUPE_TEST(BannerExamples, ClientHpp) {
  auto& srv = server(shop());
  map_host("api.test", srv);
  const std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  // ---- as in loupe/runtime/client.hpp (the URLs point at this test's server) ----
  loupe::client_session http(loop);
  auto res = co_await http.get(base + "/json");
  boost::json::value v = res.json();
  loupe::request_options item{.json = {{"name", "x"}}};
  auto created = co_await http.post("http://api.test/items", std::move(item));
  // ---------------------------------------------------------------------------
  EXPECT_EQ(v.at("ok"), true);
  EXPECT_EQ(created.json().at("name"), "x");
  // json() parses once: the same value each time, a reference that stays valid.
  const boost::json::value& first = created.json();
  EXPECT_EQ(&first, &created.json());
  co_await http.close();
}

LOUPE_TEST(BannerExamples, TestkitClientHpp) {
  auto& srv = server(shop());
  auto& http = client(srv);
  // ---- as in loupe/testkit/client.hpp ----
  loupe::request_options page{.query = {{"page", "2"}}};
  auto res = co_await http.get("/orders", std::move(page));
  EXPECT_EQ(res.status_code(), 200u);
  loupe::request_options tea{.json = {{"item", "tea"}}};
  auto made = co_await http.post("/orders", std::move(tea));
  loupe::request_options ann{.form = {{"user", "ann"}}};
  auto form = co_await http.post("/login", std::move(ann));  // its cookies are kept
  auto moved = co_await http.get("/old", {.follow_redirects = false});
  // ----------------------------------------------------------------------------
  EXPECT_EQ(res.text(), "2");
  EXPECT_EQ(made.json().at("item"), "tea");
  EXPECT_EQ(form.text(), "hello user=ann");
  EXPECT_EQ(http.cookies().size(), 1u);
  EXPECT_EQ(moved.status_code(), 302u);
}

// A move-only value as application state (std::any alone rejected it).
LOUPE_TEST(BannerExamples, ApplicationStateTakesMoveOnlyTypes) {
  static const loupe::app_key<std::unique_ptr<int>> answer_key("answer");
  loupe::application app;
  app.set(answer_key, std::make_unique<int>(42));
  app.get("/answer",
          [](request& req) -> awaitable<response> { co_return response::text(std::to_string(*req.config(answer_key))); });
  EXPECT_EQ(**app.find(answer_key), 42);
  auto& srv = server(app);
  auto& http = client(srv);
  EXPECT_EQ((co_await http.get("/answer")).text(), "42");
}

LOUPE_TEST(BannerExamples, MemoryNetworkHpp) {
  loupe::application app = shop();
  // ---- as in loupe/runtime/memory_network.hpp -------------------------------
  loupe::server srv(loop, app);
  srv.listen_memory("shop.test");  // a name, not a port
  loupe::client_session http(loop);
  auto res = co_await http.get("http://shop.test/orders");  // reaches srv in memory
  loupe::map_host(loop, "api.example.com", loupe::memory_endpoint{"shop.test"});
  // ---------------------------------------------------------------------------
  EXPECT_EQ(res.text(), "1");
  EXPECT_EQ((co_await http.get("http://api.example.com/orders?page=2")).text(), "2");
  co_await http.close();
  co_await srv.shutdown(std::chrono::seconds(1));
}

LOUPE_TEST(BannerExamples, TestkitNetworkHpp) {
  // ---- as in loupe/testkit/network.hpp ----------------------------------------
  use_memory_network();  // servers listen in memory, no ports
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_server = {.segment_bytes = 69}, .seed = 7});
  auto& http = client(link);  // every request crosses the link
  loupe::request_options o{.headers = {{"Cookie", std::string(2048, 'c')}}};
  auto res = co_await http.get("/orders", std::move(o));
  EXPECT_EQ(res.status_code(), 200u);  // read by the server in 69-byte pieces
  // ---------------------------------------------------------------------------
  EXPECT_GE(link.writes_to_server(), 2048u / 69);
}

LOUPE_TEST(BannerExamples, TlsHpp) {
  // The files the example names, made by the test CA in a directory of its own.
  const auto dir = std::filesystem::temp_directory_path() / ("loupe-banner-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  const auto& ca = loupe::testkit::test_ca::shared();
  ca.issue({.hosts = {"api.example.com"}}).write(".", "site");
  ca.write_cert("corp-ca.pem");
  loupe::application app = shop();
  app.get("/items", [](request&) -> awaitable<response> { co_return response::text("items"); });
  const std::string host = "127.0.0.1";
  const unsigned short port = 0;
  // ---- as in loupe/runtime/tls.hpp ------------------------------------------
  auto tls = loupe::tls_context::server({.cert_file = "site.crt", .key_file = "site.key"});
  loupe::server srv(loop, app, {.tls = tls});  // every listener of srv speaks TLS
  srv.listen(host, port);
  tls->reload();  // new certificate; open connections keep theirs

  loupe::client_options co;
  co.tls.ca_file = "corp-ca.pem";  // trusted instead of the system store
  // (the test's own line: the name goes to the server)
  loupe::map_host(loop, "api.example.com", srv.endpoints().front());
  loupe::client_session http(loop, co);
  auto res = co_await http.get("https://api.example.com/items");
  // ---------------------------------------------------------------------------
  EXPECT_EQ(res.text(), "items");
  EXPECT_EQ(tls->generation(), 1u);
  std::filesystem::current_path(cwd);
  std::filesystem::remove_all(dir);
  co_await http.close();
  co_await srv.shutdown(std::chrono::seconds(1));
}

LOUPE_TEST(BannerExamples, TestkitTlsHpp) {
  // ---- as in loupe/testkit/tls.hpp --------------------------------------------
  auto& srv = server(shop(), {.tls = server_tls()});  // https://127.0.0.1:PORT
  auto& http = client(srv);                                          // trusts the test CA
  auto res = co_await http.get("/orders");
  EXPECT_EQ(res.status_code(), 200u);

  using loupe::testkit::test_ca;
  const auto& ca = test_ca::shared();  // one CA for the test process
  auto site = ca.issue();              // localhost and 127.0.0.1, valid 30 days
  auto tls = loupe::tls_context::server({.cert_pem = site.cert_pem, .key_pem = site.key_pem});
  loupe::client_options co;
  co.tls.ca_pem = ca.cert_pem();  // the client trusts this CA only
  auto old = ca.issue({.valid_until = std::chrono::seconds(-60)});  // expired a minute ago
  auto alice = ca.issue({.hosts = {"alice"}, .client = true});      // a client certificate
  // ---------------------------------------------------------------------------
  EXPECT_NE(tls->describe().find("CN=localhost"), std::string::npos);
  EXPECT_NE(old.cert_pem, site.cert_pem);
  EXPECT_FALSE(alice.key_pem.empty());
}
