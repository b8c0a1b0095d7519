// loupe/testkit/server.hpp — servers for functional tests.
//
//   loupe::testkit::test_server srv(loop, app);           // 127.0.0.1, a port the kernel picks
//   srv.url("/orders?page=2");                            // "http://127.0.0.1:PORT/orders?page=2"
//   srv.metric("http_server_requests_total", {{"http_route", "/orders"}});
//
//   loupe::testkit::test_server mem(loop, app, {}, loupe::testkit::network::memory);
//   mem.url("/orders");                                   // "http://server-1.memory/orders": no port
//
//   loupe::testkit::raw_test_server echo(loop, [](loupe::request& req) -> loupe::awaitable<loupe::response> {
//     co_return loupe::response::text(std::string(req.target()));   // every method and path
//   });
//
// Inside a loupe test, `server(app)` and `raw_server(handler)` make these and
// close them at the end (see test.hpp).
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/testkit/metrics.hpp>
#include <loupe/testkit/network.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace loupe::testkit {

class test_server {
 public:
  /// Starts serving `app` (which must outlive the server) on 127.0.0.1,
  /// port 0, or on the in-memory network under a name of its own
  /// ("server-N.memory").
  test_server(loop& l, application& app, server_options opts = {}, network net = network::tcp);
  virtual ~test_server();
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  /// The TCP port and endpoint (0 and empty on the in-memory network).
  unsigned short port() const noexcept { return where_.tcp.port(); }
  const boost::asio::ip::tcp::endpoint& endpoint() const noexcept { return where_.tcp; }
  /// Where it listens, on either network.
  const address& where() const noexcept { return where_; }
  network net() const noexcept { return where_.in_memory() ? network::memory : network::tcp; }
  /// "http://127.0.0.1:PORT" (or "http://NAME") + path; `scheme` "ws" for
  /// WebSocket routes. A TLS server's are https:// (and wss://).
  std::string url(std::string_view path = "/", std::string_view scheme = "http") const {
    if (secure_ && scheme == "http") scheme = "https";
    if (secure_ && scheme == "ws") scheme = "wss";
    return where_.url(path, scheme);
  }
  /// Serving HTTPS (server_options::tls).
  bool secure() const noexcept { return secure_; }
  application& app() noexcept { return app_; }
  loupe::server& native() noexcept { return *srv_; }

  /// A value from what this application's /metrics would serve (see metrics.hpp).
  std::optional<double> metric(std::string_view name, const metric_labels& labels = {}) const;

  /// Graceful shutdown (idempotent).
  awaitable<void> close(std::chrono::milliseconds grace = std::chrono::seconds(1));
  bool closed() const noexcept { return closed_; }

 private:
  application& app_;
  bool secure_ = false;
  std::unique_ptr<loupe::server> srv_;
  address where_;
  bool closed_ = false;
};

namespace detail {
struct raw_app_holder {
  explicit raw_app_holder(handler h);  // installs `h` as the one middleware, which never calls next
  application app;
};
}  // namespace detail

/// A server around one handler: every request, whatever its method and path,
/// goes to it (aiohttp's RawTestServer).
class raw_test_server : private detail::raw_app_holder, public test_server {
 public:
  raw_test_server(loop& l, handler h, server_options opts = {}, network net = network::tcp);
};

}  // namespace loupe::testkit
