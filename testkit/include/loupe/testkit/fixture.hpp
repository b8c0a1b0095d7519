// loupe/testkit/fixture.hpp — a loupe test (test.hpp) with one application and its server.
//
//   class Orders : public loupe::testkit::server_fixture {
//    protected:
//     void SetUp() override {
//       server_fixture::SetUp();                   // log capture
//       app.get("/orders", list_orders);
//       start();                                   // 127.0.0.1, port 0
//     }
//   };
//   LOUPE_TEST_F(Orders, Lists) {
//     auto res = co_await client(*server_under_test).get("/orders");
//     EXPECT_EQ(res.status_code(), 200u);
//   }
//
// Everything of loupe::testkit::test applies: the deadline, teardown in
// order, and the leak, log and slow-callback checks.
#pragma once

#include <loupe/testkit/test.hpp>

namespace loupe::testkit {

class server_fixture : public test {
 protected:
  /// Serves `app` on 127.0.0.1 at a port the kernel picks.
  void start(server_options opts = {}) {
    server_under_test = &server(app, std::move(opts));
    srv = &server_under_test->native();
    ep = server_under_test->endpoint();
  }
  /// "http://127.0.0.1:PORT" + path (or another scheme, e.g. "ws").
  std::string url(std::string_view path = "", std::string_view scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(ep.port()) + std::string(path);
  }
  /// Runs a coroutine on the loop under the test's deadline (for TEST_F bodies).
  template <class F>
  auto run(F&& f, std::chrono::steady_clock::duration deadline = default_deadline) {
    return testkit::run(loop, std::forward<F>(f), deadline);
  }

  loupe::application app;
  test_server* server_under_test = nullptr;
  loupe::server* srv = nullptr;
  boost::asio::ip::tcp::endpoint ep;
};

}  // namespace loupe::testkit
