// client_session against the loupe server: pooling, timeouts, refused
// connections, redirects, JSON and form bodies.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/testkit/fixture.hpp>
#include <loupe/testkit/run.hpp>

#include <gtest/gtest.h>

#include "support/clock_mode.hpp"

namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::client_errc;
using loupe::client_error;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

class Client : public loupe::testkit::server_fixture {
 protected:
  void SetUp() override {
    app.get("/port", [](request& req) -> awaitable<response> {
      co_return response::text(std::to_string(req.remote().port()));  // one client port per connection
    });
    app.get("/sleep", [](request&) -> awaitable<response> {
      co_await loupe::sleep_for(2s);
      co_return response::text("late");
    });
    app.post("/echo", [](request& req) -> awaitable<response> {
      boost::json::object o;
      o["type"] = std::string(req.header("Content-Type").value_or(""));
      o["body"] = req.text();
      o["q"] = std::string(req.query().get("q").value_or(""));
      co_return response::json(o);
    });
    app.get("/hop/{n:\\d+}", [](request& req) -> awaitable<response> {
      const int n = std::stoi(std::string(req.match_info().at("n")));
      if (n == 0) co_return response::text("landed");
      co_return response::redirect("/hop/" + std::to_string(n - 1));
    });
    app.post("/see-other",
             [](request&) -> awaitable<response> { co_return response::redirect("/port", http::status::see_other); });
    start();
    base = url();
  }

  std::string base;
};

// The code of the client_error `body` throws, or none.
template <class F>
awaitable<std::optional<client_errc>> error_of(F body) {
  try {
    co_await body();
  } catch (const client_error& e) {
    co_return static_cast<client_errc>(e.code().value());
  }
  co_return std::nullopt;
}

}  // namespace

TEST_F(Client, KeepAliveConnectionsAreReused) {
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    std::set<std::string> ports;
    for (int i = 0; i < 5; ++i) {
      auto res = co_await http.get(base + "/port");
      EXPECT_EQ(res.status_code(), 200u);
      ports.insert(res.text());
    }
    EXPECT_EQ(ports.size(), 1u);  // one connection served all five
    EXPECT_EQ(http.connections_opened(), 1u);
    EXPECT_EQ(http.idle_connections(), 1u);
  });
}

TEST_F(Client, JsonFormAndQueryBodies) {
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    // (Options built outside the co_await: GCC 12 cannot build string-literal lists inside one.)
    loupe::request_options with_json{.query = {{"q", "a b"}}, .json = boost::json::object{{"n", 1}}};
    auto j = (co_await http.post(base + "/echo", with_json)).json();
    EXPECT_EQ(j.at("type"), "application/json");
    EXPECT_EQ(j.at("body"), "{\"n\":1}");
    EXPECT_EQ(j.at("q"), "a b");
    loupe::request_options with_form{.form = {{"name", "Zoë & co"}}};
    auto f = (co_await http.post(base + "/echo", with_form)).json();
    EXPECT_EQ(f.at("type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(f.at("body"), "name=Zo%C3%AB+%26+co");
  });
}

class ClientTimes : public loupe_test::on_both_clocks<Client> {};
INSTANTIATE_TEST_SUITE_P(Clock, ClientTimes, loupe_test::both_clocks, loupe_test::clock_mode_name);

TEST_P(ClientTimes, TimeoutFiresAndTheSessionGoesOn) {
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    auto code = co_await error_of([&]() -> awaitable<void> {
      (void)co_await http.get(base + "/sleep", {.timeout = 100ms});
    });
    EXPECT_EQ(code, client_errc::timeout);
    EXPECT_EQ((co_await http.get(base + "/port")).status_code(), 200u);
    // The server's handler is still sleeping for the client that gave up:
    // end it, or the test would leave that request (and its connection) behind.
    for (const auto& t : loop.tasks())
      if (t.request.route == "/sleep") loop.cancel(t.id);
    co_await loupe::testkit::wait_until([&] { return srv->requests_in_flight() == 0; });
  });
}

TEST_F(Client, RefusedConnectionIsAClearError) {
  run([&]() -> awaitable<void> {
    // A port that was just free: bind, note, close.
    boost::asio::ip::tcp::acceptor a(loop.context(), {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto port = a.local_endpoint().port();
    a.close();
    loupe::client_session http(loop);
    std::string what;
    auto code = co_await error_of([&]() -> awaitable<void> {
      try {
        (void)co_await http.get("http://127.0.0.1:" + std::to_string(port) + "/");
      } catch (const client_error& e) {
        what = e.what();
        throw;
      }
    });
    EXPECT_EQ(code, client_errc::connection_failed);
    EXPECT_NE(what.find("refused"), std::string::npos) << what;
    EXPECT_EQ(co_await error_of([&]() -> awaitable<void> { (void)co_await http.get("not a url"); }),
              client_errc::invalid_url);
  });
}

TEST_F(Client, RedirectsAreFollowedAndBounded) {
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop, {.max_redirects = 3});
    auto res = co_await http.get(base + "/hop/3");
    EXPECT_EQ(res.text(), "landed");
    EXPECT_EQ(res.redirects(), 3u);
    EXPECT_EQ(res.url(), base + "/hop/0");
    EXPECT_EQ(co_await error_of([&]() -> awaitable<void> { (void)co_await http.get(base + "/hop/4"); }),
              client_errc::too_many_redirects);
    auto no = co_await http.get(base + "/hop/1", {.follow_redirects = false});
    EXPECT_EQ(no.status_code(), 302u);
    EXPECT_EQ(no.header("Location").value_or(""), "/hop/0");
    loupe::request_options with_body{.body = std::string("x")};
    auto see_other = co_await http.post(base + "/see-other", with_body);  // 303: continues as GET
    EXPECT_EQ(see_other.status_code(), 200u);
  });
}

TEST_F(Client, EveryRequestRunsAsANamedTask) {
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    (void)co_await http.get(base + "/port");
    bool seen = false;
    for (const auto& f : loop.finished_tasks()) seen = seen || f.info.name == "http.client";
    EXPECT_TRUE(seen);
  });
}

TEST_F(Client, StreamingReadsTheBodyInPieces) {
  run([&]() -> awaitable<void> {
    loupe::application big;
    big.get("/big", [](request&) -> awaitable<response> { co_return response::text(std::string(300 * 1024, 'z')); });
    loupe::server s2(loop, big);
    const auto ep2 = s2.listen("127.0.0.1", 0);
    loupe::client_session http(loop);
    const auto url = "http://127.0.0.1:" + std::to_string(ep2.port()) + "/big";
    auto st = co_await http.stream(http::verb::get, url);
    EXPECT_EQ(st->status_code(), 200u);
    EXPECT_EQ(st->header("Content-Length").value_or(""), "307200");
    std::size_t total = 0, pieces = 0;
    while (auto chunk = co_await st->read_chunk()) {
      EXPECT_LE(chunk->size(), 64u * 1024);
      total += chunk->size();
      ++pieces;
    }
    EXPECT_EQ(total, 300u * 1024);
    EXPECT_GE(pieces, 5u);
    EXPECT_EQ(http.idle_connections(), 1u);  // back in the pool after the last piece
    co_await s2.shutdown(0ms);
  });
}
