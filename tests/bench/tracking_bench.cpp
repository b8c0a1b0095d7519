// Per-callback cost of loupe's handler tracking (google-benchmark).
//
// Built twice from this file: `tracking_bench` with loupe's tracking hooks
// (BOOST_ASIO_CUSTOM_HANDLER_TRACKING, as the runtime always runs) and
// `tracking_bench_untracked` with plain Asio. The difference per iteration is
// what tracking costs one callback. Run: tests/bench/tracking_cost.sh
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#ifdef LOUPE_TRACKING
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>
#endif

namespace asio = boost::asio;

namespace {

#ifdef LOUPE_TRACKING
using bench_loop = loupe::loop;
asio::io_context& context_of(bench_loop& l) { return l.context(); }
void run_all(bench_loop& l) {
  l.run();  // returns when out of work
  l.restart();
}
#else
struct bench_loop {
  explicit bench_loop(const char*) {}
  asio::io_context ctx{1};
};
asio::io_context& context_of(bench_loop& l) { return l.ctx; }
void run_all(bench_loop& l) {
  l.ctx.run();
  l.ctx.restart();
}
#endif

// Plain callbacks posted and run: each is one handler creation, completion
// and invocation. 1000 per iteration, so run()'s own cost is amortised.
void BM_PostedCallback(benchmark::State& state) {
  bench_loop loop("bench");
  auto& ctx = context_of(loop);
  const std::int64_t per_run = 1000;
  std::int64_t n = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < per_run; ++i) asio::post(ctx, [&n] { ++n; });
    run_all(loop);
  }
  benchmark::DoNotOptimize(n);
  state.SetItemsProcessed(state.iterations() * per_run);
}
BENCHMARK(BM_PostedCallback)->Unit(benchmark::kMicrosecond);

// A coroutine that yields to the loop: one resumption of a (tracked) task per iteration.
void BM_TaskResume(benchmark::State& state) {
  bench_loop loop("bench");
  auto& ctx = context_of(loop);
  const std::int64_t per_run = 1000;
  auto body = [&]() -> asio::awaitable<void> {
    for (std::int64_t i = 0; i < per_run; ++i) co_await asio::post(ctx, asio::use_awaitable);
  };
  for (auto _ : state) {
#ifdef LOUPE_TRACKING
    loupe::spawn(loop, "bench", body());  // a tracked task, as the runtime runs them
#else
    asio::co_spawn(ctx, body(), asio::detached);
#endif
    run_all(loop);
  }
  state.SetItemsProcessed(state.iterations() * per_run);
}
BENCHMARK(BM_TaskResume)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
