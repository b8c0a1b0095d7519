// loupe/testkit/client.hpp — a client bound to one server, for functional tests.
//
//   loupe::testkit::test_client http(loop, srv.url());     // inside a loupe test: client(srv)
//   loupe::request_options page{.query = {{"page", "2"}}};   // a statement of its own (below)
//   auto res = co_await http.get("/orders", std::move(page));
//   EXPECT_EQ(res.status_code(), 200u);
//   loupe::request_options tea{.json = {{"item", "tea"}}};
//   auto made = co_await http.post("/orders", std::move(tea));
//   loupe::request_options ann{.form = {{"user", "ann"}}};
//   auto form = co_await http.post("/login", std::move(ann));   // its cookies are kept
//   auto moved = co_await http.get("/old", {.follow_redirects = false});
//
// GCC 11.2-12 reject a braced list anywhere inside a co_await expression
// ("array used as initializer"), so options holding lists are built in a
// statement of their own; `{.follow_redirects = false}` has none and is fine.
// tests/runtime/banner_examples_test.cpp compiles these lines.
//   auto ws = co_await http.ws_connect("/ws");
//   auto body = co_await http.stream(boost::beast::http::verb::get, "/big");  // read_chunk() ...
//
// Paths are relative to the server's URL; a full "http://..." URL is used as
// it is (through the loop's host map, so "http://pong.test/" works too). It is
// the runtime's client_session underneath: keep-alive pool, cookie jar,
// redirects, timeouts, JSON and form bodies.
#pragma once

#include <loupe/runtime/client.hpp>
#include <loupe/runtime/websocket.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace loupe::testkit {

// Each call carries the caller's file:line into the request's task (its
// spawn site) and the caller's wait, as with client_session.
class test_client {
 public:
  test_client(loop& l, std::string base_url, client_options opts = {});
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  awaitable<client_response> request(boost::beast::http::verb method, std::string_view path, request_options opts = {},
                                     std::source_location at = std::source_location::current());
  awaitable<client_response> get(std::string_view path, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> post(std::string_view path, request_options opts = {},
                                  std::source_location at = std::source_location::current());
  awaitable<client_response> put(std::string_view path, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> patch(std::string_view path, request_options opts = {},
                                   std::source_location at = std::source_location::current());
  awaitable<client_response> del(std::string_view path, request_options opts = {},
                                 std::source_location at = std::source_location::current());
  awaitable<client_response> head(std::string_view path, request_options opts = {},
                                  std::source_location at = std::source_location::current());
  /// The response after its headers; read the body with read_chunk().
  awaitable<std::unique_ptr<client_stream>> stream(boost::beast::http::verb method, std::string_view path,
                                                   request_options opts = {},
                                                   std::source_location at = std::source_location::current());
  /// Opens a WebSocket to the server's ws:// (wss:// for https) URL for
  /// `path`; over wss it trusts what the session trusts. (Two overloads:
  /// see websocket::connect.)
  awaitable<std::unique_ptr<websocket>> ws_connect(std::string_view path,
                                                   std::source_location at = std::source_location::current());
  awaitable<std::unique_ptr<websocket>> ws_connect(std::string_view path, websocket_options opts,
                                                   std::source_location at = std::source_location::current());

  /// base URL + path (a full URL is returned as it is).
  std::string url(std::string_view path) const;
  client_session& session() noexcept { return session_; }
  std::vector<client_cookie> cookies() const { return session_.cookies(); }
  awaitable<void> close() { co_await session_.close(); }

 private:
  loop& loop_;
  std::string base_;
  client_tls_options tls_;  // what the session trusts, for ws_connect
  client_session session_;
};

}  // namespace loupe::testkit
