// workers — one application served by N event loops, one thread each.
//
//   ./example-workers --port 8080              # 4 loops here; --workers N to change
//   for i in 1 2 3 4 5 6 7 8; do curl -s localhost:8080/; echo; done
//   {"loop":"worker-2","served":1} {"loop":"main","served":2} ...
//
// Loop 0 ("main") runs the start-up and shutdown hooks and serves too; loops
// 1..N-1 ("worker-1", ...) each accept on their own SO_REUSEPORT socket on
// the same port, so the kernel spreads connections across them (gunicorn's
// workers, in one process). A connection stays on the loop that accepted it.
// Routes and middlewares are shared read-only; state the handlers share is
// touched from N threads at once and must be safe for it (an atomic here).
// SIGTERM drains every loop.
#include <loupe/runtime.hpp>

#include <atomic>
#include <cstdint>

using loupe::awaitable, loupe::request, loupe::response;

int main(int argc, char** argv) {
  std::atomic<std::uint64_t> served{0};
  loupe::application app;
  app.get("/", [&served](request&) -> awaitable<response> {
    const auto n = served.fetch_add(1, std::memory_order_relaxed) + 1;
    co_return response::json({{"loop", loupe::loop::current()->name()}, {"served", n}});
  });
  app.on_startup([](loupe::application&) -> awaitable<void> {
    loupe::log::info(loupe::log::app(), "start-up hook", {{"loop", loupe::loop::current()->name()}});
    co_return;
  });

  loupe::flag_set flags("example-workers", "One application on several event loops.");
  loupe::run_options opts;
  opts.workers = 4;  // the default; --workers overrides it
  return loupe::run_main(app, argc, argv, flags, opts);
}
