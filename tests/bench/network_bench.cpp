// network_bench — requests per second over the in-memory network against loopback TCP.
//
//   build/tests/network_bench [--benchmark_min_time=1]
//
// One loop serves GET / (a loupe server, access log off) and a
// client_session on the same loop sends the requests one after another on
// one keep-alive connection (`sequential`), or from 16 tasks at once on 16
// connections (`concurrent`): first over 127.0.0.1, then over the in-memory
// network (AF_UNIX socket pairs, memory_network.hpp). Everything else —
// parser, router, tracking, metrics, client — is the same code. After the
// table it prints the in-memory figure against TCP's of the same run.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/server.hpp>

#include <benchmark/benchmark.h>

#include "recording_reporter.hpp"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

void requests(benchmark::State& state, bool memory, int tasks) {
  loupe::loop loop("bench");
  loupe::application app;
  app.get("/",
          [](loupe::request&) -> loupe::awaitable<loupe::response> { co_return loupe::response::text("Hello, world!"); });
  loupe::server srv(loop, app, {.access_log = false});
  std::string url;
  if (memory) {
    url = "http://" + srv.listen_memory("bench-" + std::to_string(tasks) + ".memory").name + "/";
  } else {
    url = "http://127.0.0.1:" + std::to_string(srv.listen("127.0.0.1", 0).port()) + "/";
  }
  loupe::client_session http(loop);
  std::int64_t left = 0;
  bool failed = false;
  auto worker = [&]() -> loupe::awaitable<void> {
    while (left > 0) {
      --left;
      auto res = co_await http.get(url);
      if (res.status_code() != 200) failed = true;
    }
  };
  auto body = [&]() -> loupe::awaitable<void> {
    for (auto _ : state) {
      // One batch of `tasks` requests per iteration.
      left = tasks;
      std::vector<std::uint64_t> ids;
      for (int i = 0; i < tasks; ++i) ids.push_back(loupe::spawn(loop, "worker", worker()));
      for (auto id : ids) co_await loupe::join(loop, id);
    }
    co_await http.close();
    co_await srv.shutdown(1s);
  };
  loupe::spawn(loop, "bench", body(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  loop.run();
  if (failed) state.SkipWithError("a request failed");
  state.SetItemsProcessed(state.iterations() * tasks);
}

BENCHMARK_CAPTURE(requests, sequential_tcp, false, 1)->UseRealTime();
BENCHMARK_CAPTURE(requests, sequential_memory, true, 1)->UseRealTime();
BENCHMARK_CAPTURE(requests, concurrent_tcp, false, 16)->UseRealTime();
BENCHMARK_CAPTURE(requests, concurrent_memory, true, 16)->UseRealTime();

void print_ratios(const loupe_bench::recording_reporter& reporter) {
  std::printf("\nin memory against loopback TCP, this run:\n");
  for (const char* k : {"sequential", "concurrent"}) {
    // (UseRealTime() names them ".../real_time".)
    const auto* tcp = reporter.find(std::string("requests/") + k + "_tcp/real_time");
    const auto* mem = reporter.find(std::string("requests/") + k + "_memory/real_time");
    if (!tcp || !mem) continue;
    const double t = tcp->counter("items_per_second"), m = mem->counter("items_per_second");
    std::printf("  %-11s tcp %9.0f req/s   memory %9.0f req/s   %.2fx\n", k, t, m, m / t);
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
