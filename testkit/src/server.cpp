// testkit: test servers.
#include <loupe/testkit/server.hpp>
#include <loupe/testkit/tls.hpp>

#include <loupe/runtime/metrics.hpp>

#include <atomic>

namespace loupe::testkit {

namespace {
std::atomic<unsigned> memory_servers{0};
}

namespace {
// A TLS server in memory is reached under its own name: a context from
// server_tls() gets a certificate for it too.
server_options for_name(server_options opts, const std::string& name) {
  if (opts.tls && !name.empty()) opts.tls = detail::with_host(opts.tls, name);
  return opts;
}
}  // namespace

test_server::test_server(loop& l, application& app, server_options opts, network net)
    : app_(app), secure_(opts.tls != nullptr) {
  const std::string name = net == network::memory ? "server-" + std::to_string(++memory_servers) + ".memory" : "";
  srv_ = std::make_unique<loupe::server>(l, app, for_name(std::move(opts), name));
  if (net == network::memory) where_.memory = srv_->listen_memory(name).name;
  else where_.tcp = srv_->listen("127.0.0.1", 0);
}

test_server::~test_server() = default;

std::optional<double> test_server::metric(std::string_view name, const metric_labels& labels) const {
  return metric_value(metrics::exposition(app_), name, labels);
}

awaitable<void> test_server::close(std::chrono::milliseconds grace) {
  if (closed_) co_return;
  closed_ = true;
  co_await srv_->shutdown(grace);
}

detail::raw_app_holder::raw_app_holder(handler h) {
  app.use([h = std::move(h)](request& req, next_handler) { return h(req); });
}

raw_test_server::raw_test_server(loop& l, handler h, server_options opts, network net)
    : detail::raw_app_holder(std::move(h)), test_server(l, detail::raw_app_holder::app, std::move(opts), net) {}

}  // namespace loupe::testkit
