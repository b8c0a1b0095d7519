// runtime_bench — the router and the task registry under size.
//
//   build/tests/runtime_bench [--benchmark_min_time=0.5]
//
// Router: matching a static path, a {parameter} path and a {name:regex} path
// (the last route added, so the worst case of the table) with 10, 100 and
// 1,000 routes of that kind. Registry: a snapshot (loop::tasks(), what the
// console's `ps` reads) with 10,000 and 100,000 live tasks, and one task's
// lookup. After the table it prints each figure against the 10-route (or
// 10,000-task) one of the same run.
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/router.hpp>
#include <loupe/runtime/timer.hpp>

#include <benchmark/benchmark.h>

#include "recording_reporter.hpp"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

namespace http = boost::beast::http;

enum kind { static_path = 0, param_path = 1, regex_path = 2 };

loupe::router make_router(kind k, int n) {
  loupe::router r;
  auto h = [](loupe::request&) -> loupe::awaitable<loupe::response> { co_return loupe::response::text("x"); };
  for (int i = 0; i < n; ++i) {
    const std::string base = "/api/v1/resource" + std::to_string(i);
    if (k == static_path) r.add(http::verb::get, base + "/list", h);
    else if (k == param_path) r.add(http::verb::get, base + "/{id}", h);
    else r.add(http::verb::get, base + R"(/{id:\d+})", h);
  }
  return r;
}

void router_match(benchmark::State& state) {
  const auto k = static_cast<kind>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const auto r = make_router(k, n);
  const std::string last = "/api/v1/resource" + std::to_string(n - 1) + (k == static_path ? "/list" : "/12345");
  for (auto _ : state) {
    auto m = r.match(http::verb::get, "GET", last);
    benchmark::DoNotOptimize(m.route);
  }
}
BENCHMARK(router_match)
    ->ArgNames({"kind", "routes"})
    ->ArgsProduct({{static_path, param_path, regex_path}, {10, 100, 1000}});

loupe::awaitable<void> wait_forever() { co_await loupe::sleep_for(std::chrono::hours(1)); }

// A loop with `n` tasks suspended on timers (started, then left waiting).
struct populated_loop {
  explicit populated_loop(int n) : lp("bench") {
    for (int i = 0; i < n; ++i) first = loupe::spawn(lp, "sleeper", wait_forever());
    lp.run_for(std::chrono::milliseconds(1));
    while (lp.run_for(std::chrono::milliseconds(0)) > 0) {
    }
  }
  loupe::loop lp;
  std::uint64_t first = 0;
};

void registry_snapshot(benchmark::State& state) {
  populated_loop p(static_cast<int>(state.range(0)));
  std::size_t seen = 0;
  for (auto _ : state) {
    auto tasks = p.lp.tasks();
    seen = tasks.size();
    benchmark::DoNotOptimize(tasks.data());
  }
  state.counters["tasks"] = static_cast<double>(seen);
}
BENCHMARK(registry_snapshot)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

void registry_find_one(benchmark::State& state) {
  populated_loop p(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto t = p.lp.find_task(p.first);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(registry_find_one)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// The router against its 10-route table, the registry against 10,000 tasks.
void print_ratios(const loupe_bench::recording_reporter& reporter) {
  std::printf("\nagainst the smallest size of the same kind, this run:\n");
  for (const char* k : {"0", "1", "2"}) {
    const std::string base = std::string("router_match/kind:") + k + "/routes:";
    const auto* ten = reporter.find(base + "10");
    if (!ten) continue;
    for (const char* n : {"100", "1000"})
      if (const auto* r = reporter.find(base + n))
        std::printf("  %-34s %8.1f ns  %5.2fx the 10-route table\n", (base + n).c_str(), r->real_ns,
                    r->real_ns / ten->real_ns);
  }
  for (const char* b : {"registry_snapshot", "registry_find_one"}) {
    const auto* small = reporter.find(std::string(b) + "/10000");
    const auto* big = reporter.find(std::string(b) + "/100000");
    if (small && big)
      std::printf("  %-34s %8.1f us  %5.2fx the 10,000-task loop (%.0f ns per task)\n",
                  (std::string(b) + "/100000").c_str(), big->real_ns / 1e3, big->real_ns / small->real_ns,
                  big->real_ns / 100000);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  loupe_bench::recording_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_ratios(reporter);
  benchmark::Shutdown();
}
