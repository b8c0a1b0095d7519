// Private: the runtime's own way into its public classes (a friend of loop,
// websocket, application, request and response), so that their headers show
// users nothing of the plumbing.
#pragma once

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/websocket.hpp>

#include <memory>
#include <string>

namespace loupe::detail {

struct access {
  static loop::impl& of(loop& l) noexcept { return *l.impl_; }
  static websocket::impl& of(websocket& w) noexcept { return *w.impl_; }
  static const std::shared_ptr<app_metrics>& metrics(application& a) { return a.metrics_internals(); }
  static void set_match(request& r, application* app, const std::string* route, const std::string* route_name,
                        match_info m) {
    r.set_match(app, route, route_name, std::move(m));
  }
  static void set_upgrade(response& r, std::shared_ptr<const websocket_upgrade> u) noexcept { r.upgrade_ = std::move(u); }
  static const std::string* route_template_of(application& a, const request& r) { return a.route_template_of(r); }
  static void set_connection(request& r, int socket, bool* gone) noexcept {
    r.socket_ = socket;
    r.gone_ = gone;
  }
};

}  // namespace loupe::detail
