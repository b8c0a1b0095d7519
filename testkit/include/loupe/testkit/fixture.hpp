// loupe/testkit/fixture.hpp — a GoogleTest fixture: a fresh loop, an application, a server.
//
//   class Orders : public loupe::testkit::server_fixture {
//    protected:
//     void SetUp() override {
//       app.get("/orders", list_orders);
//       start();                                   // 127.0.0.1, port 0
//     }
//   };
//   TEST_F(Orders, Lists) {
//     run([&]() -> loupe::awaitable<void> {
//       loupe::client_session http(loop);
//       auto res = co_await http.get(url("/orders"));
//       EXPECT_EQ(res.status_code(), 200u);
//     });
//   }
//
// `run` drives the loop on the test's thread under a deadline (see run.hpp).
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/testkit/run.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

namespace loupe::testkit {

class server_fixture : public ::testing::Test {
 protected:
  /// Serves `app` on 127.0.0.1 at a port the kernel picks.
  void start(server_options opts = {}) {
    srv = std::make_unique<server>(loop, app, std::move(opts));
    ep = srv->listen("127.0.0.1", 0);
  }
  /// "http://127.0.0.1:PORT" + path (or another scheme, e.g. "ws").
  std::string url(std::string_view path = "", std::string_view scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(ep.port()) + std::string(path);
  }
  template <class F>
  auto run(F&& f, std::chrono::steady_clock::duration deadline = std::chrono::seconds(20)) {
    return testkit::run(loop, std::forward<F>(f), deadline);
  }

  loupe::loop loop;
  loupe::application app;
  std::unique_ptr<server> srv;
  boost::asio::ip::tcp::endpoint ep;
};

}  // namespace loupe::testkit
