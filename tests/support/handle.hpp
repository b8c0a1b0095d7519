// Test support: calling an application's handle() directly, without a server.
//
//   auto res = loupe::test_support::call(app, http::verb::get, "/users/7");
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/testkit/run.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace loupe::test_support {

/// A request as the server would hand it over (HTTP/1.1, with `body`).
inline request make_request(boost::beast::http::verb method, std::string target, std::string body = {}) {
  request::message_type msg{method, target, 11};
  msg.body() = std::move(body);
  return request(std::move(msg));
}

/// Runs app.handle() for one request on a fresh loop (5 s deadline).
inline response call(application& app, boost::beast::http::verb method, std::string target, std::string body = {}) {
  loop lp;
  auto req = make_request(method, std::move(target), std::move(body));
  return testkit::run(
      lp, [&]() { return app.handle(req); }, std::chrono::seconds(5));
}

}  // namespace loupe::test_support
