// app_runner: one server per loop, worker threads, a drain across all loops.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/runner.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <thread>

namespace loupe {

namespace asio = boost::asio;

namespace {

// Drains one loop's server on that loop; the last one to finish wakes the main
// loop. (A function, not a lambda: a coroutine's parameters live in its frame.)
awaitable<void> drain(server& srv, loop& main, asio::steady_timer& all_done,
                      std::shared_ptr<std::atomic<std::size_t>> pending, std::chrono::milliseconds grace) {
  set_cancel_policy({"it drains a worker loop's server in a graceful shutdown; the grace period bounds it", {}});
  co_await srv.shutdown(grace);
  if (pending->fetch_sub(1) == 1) asio::post(main.context(), [&all_done] { all_done.cancel(); });
}

}  // namespace

struct app_runner::impl {
  using guard_type = asio::executor_work_guard<loop::executor_type>;

  loop& main;
  application& app;
  runner_options opts;
  std::vector<std::unique_ptr<loop>> workers;   // loops 1..N-1
  std::vector<std::unique_ptr<server>> servers;  // one per loop, index = loop index
  std::vector<guard_type> guards;
  std::vector<std::thread> threads;

  loop& loop_at(std::size_t i) { return i == 0 ? main : *workers[i - 1]; }

  void join() {
    guards.clear();  // worker loops may now run out of work and return
    for (auto& w : workers) w->stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }
};

app_runner::app_runner(loop& main, application& app, runner_options opts)
    : impl_(std::make_unique<impl>(impl{main, app, std::move(opts), {}, {}, {}, {}})) {
  if (impl_->opts.workers == 0) impl_->opts.workers = 1;
  for (std::size_t i = 1; i < impl_->opts.workers; ++i)
    impl_->workers.push_back(std::make_unique<loop>("worker-" + std::to_string(i)));
}

app_runner::~app_runner() {
  impl_->join();
  impl_->servers.clear();  // before their loops
}

std::size_t app_runner::loop_count() const noexcept { return impl_->opts.workers; }
loop& app_runner::loop_at(std::size_t i) { return impl_->loop_at(i); }
server& app_runner::server_at(std::size_t i) { return *impl_->servers.at(i); }

awaitable<asio::ip::tcp::endpoint> app_runner::start() {
  auto& s = *impl_;
  co_await s.app.startup();
  server_options so = s.opts.server;
  so.reuse_port = s.opts.workers > 1;
  asio::ip::tcp::endpoint bound;
  for (std::size_t i = 0; i < s.opts.workers; ++i) {
    s.servers.push_back(std::make_unique<server>(s.loop_at(i), s.app, so));
    // Port 0: the first listener picks the port and the others share it.
    const auto ep = s.servers.back()->listen(s.opts.host, i == 0 ? s.opts.port : bound.port());
    if (i == 0) bound = ep;
  }
  for (std::size_t i = 1; i < s.opts.workers; ++i) {
    loop& l = s.loop_at(i);
    if (s.opts.lag_sampling) l.enable_lag_sampling();
    s.guards.emplace_back(asio::make_work_guard(l.get_executor()));
    s.threads.emplace_back([&l] { l.run(); });
  }
  co_return bound;
}

awaitable<bool> app_runner::stop(std::chrono::milliseconds grace) {
  auto& s = *impl_;
  // Every loop drains its own server on its own thread; the last to finish
  // wakes the main loop.
  asio::steady_timer all_done(s.main.context(), asio::steady_timer::time_point::max());
  auto pending = std::make_shared<std::atomic<std::size_t>>(s.servers.size());
  for (std::size_t i = 0; i < s.servers.size(); ++i) {
    loop& l = s.loop_at(i);
    server& srv = *s.servers[i];
    asio::post(l.context(), [&l, &srv, &all_done, &main = s.main, pending, grace] {
      spawn(l, "runner.drain", drain(srv, main, all_done, pending, grace));
    });
  }
  if (!s.servers.empty()) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));

  bool ok = true;
  try {
    co_await s.app.shutdown();
  } catch (const std::exception& e) {
    log::runtime().error("shutdown hook failed: {}", e.what());
    ok = false;
  }
  try {
    co_await s.app.cleanup();
  } catch (const std::exception& e) {
    log::runtime().error("cleanup hook failed: {}", e.what());
    ok = false;
  }
  s.join();
  co_return ok;
}

}  // namespace loupe
