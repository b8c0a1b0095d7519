// metrics_bench — what metrics and the access log cost per request, and what
// a /metrics scrape of an application with 1,000 routes costs.
//
//   build/tests/metrics_bench [--benchmark_min_time=0.5]
//
// After google-benchmark's table it prints each per-request cost against the
// baseline measured in the same run (two clock reads, which any request
// timing needs anyway), and the naive way (Family::Add per request) against
// the series cache the server uses.
#include "observe/http_metrics.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/metrics.hpp>

#include <benchmark/benchmark.h>
#include <spdlog/sinks/null_sink.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double elapsed(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Baseline: timing a request at all.
void request_baseline(benchmark::State& state) {
  for (auto _ : state) {
    const auto a = clock_type::now();
    const auto b = clock_type::now();
    benchmark::DoNotOptimize(elapsed(a, b));
  }
}
BENCHMARK(request_baseline);

// What the server does per request: one cached lookup, a counter and three histograms.
void request_metrics_cached(benchmark::State& state) {
  auto m = std::make_shared<loupe::detail::app_metrics>();
  loupe::detail::http_server_series series(m->server);
  const std::string route = "/users/{id}";
  for (auto _ : state) {
    const auto a = clock_type::now();
    const auto b = clock_type::now();
    series.observe(&route, 0, 200, elapsed(a, b), 0, 13);
  }
}
BENCHMARK(request_metrics_cached);

// The same across 1,000 routes and 3 statuses, round robin (a cold cache).
void request_metrics_cached_1000_routes(benchmark::State& state) {
  auto m = std::make_shared<loupe::detail::app_metrics>();
  loupe::detail::http_server_series series(m->server);
  std::vector<std::string> routes;
  for (int i = 0; i < 1000; ++i) routes.push_back("/r" + std::to_string(i) + "/{id}");
  const unsigned statuses[] = {200, 404, 500};
  std::size_t i = 0;
  for (auto _ : state) {
    const auto a = clock_type::now();
    const auto b = clock_type::now();
    series.observe(&routes[i % routes.size()], 0, statuses[i % 3], elapsed(a, b), 0, 13);
    ++i;
  }
}
BENCHMARK(request_metrics_cached_1000_routes);

// The naive way: resolve every family's series (Family::Add) on each request.
void request_metrics_add_per_request(benchmark::State& state) {
  auto m = std::make_shared<loupe::detail::app_metrics>();
  auto& f = m->server;
  for (auto _ : state) {
    const auto a = clock_type::now();
    const auto b = clock_type::now();
    const prometheus::Labels labels{
        {"http_request_method", "GET"}, {"http_route", "/users/{id}"}, {"http_response_status_code", "200"}};
    f.requests.Add(labels).Increment();
    f.duration.Add(labels, loupe::detail::duration_buckets()).Observe(elapsed(a, b));
    f.request_size.Add(labels, loupe::detail::size_buckets()).Observe(0);
    f.response_size.Add(labels, loupe::detail::size_buckets()).Observe(13);
  }
}
BENCHMARK(request_metrics_add_per_request);

// One access log record as the server writes it (to a null sink: the
// caller's cost, formatting included; the writer thread does the rest).
void request_access_log_record(benchmark::State& state) {
  loupe::log::options o;
  o.sinks = {std::make_shared<spdlog::sinks::null_sink_mt>()};
  loupe::log::configure(o);
  const std::string remote = "127.0.0.1";
  for (auto _ : state) {
    loupe::log::write(loupe::log::access(), spdlog::level::info, "127.0.0.1 GET /users/42 200",
                      {{"method", "GET"},
                       {"path", "/users/42"},
                       {"route", "/users/{id}"},
                       {"status", 200u},
                       {"response_bytes", std::size_t{9}},
                       {"duration_ms", 0.123},
                       {"remote", remote},
                       {"user_agent", "wrk"}},
                      {1234, "http.request", "5f0c3a1e9b7d4c2a8e6f1b3d5a7c9e0f"});
  }
  state.counters["dropped"] = static_cast<double>(loupe::log::dropped_records());
  loupe::log::flush();
  loupe::log::configure({});
}
BENCHMARK(request_access_log_record);

// A scrape of an application with 1,000 routes, each with one request served.
void scrape_1000_routes(benchmark::State& state) {
  auto m = std::make_shared<loupe::detail::app_metrics>();
  loupe::detail::http_server_series series(m->server);
  std::vector<std::string> routes;
  for (int i = 0; i < 1000; ++i) routes.push_back("/r" + std::to_string(i) + "/{id}");
  for (auto& r : routes) series.observe(&r, 0, 200, 0.001, 0, 13);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = loupe::metrics::exposition(*m->registry);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(scrape_1000_routes)->Unit(benchmark::kMillisecond);

// Keeps each run's time per iteration for the ratios printed at the end.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred)
        ns_[r.benchmark_name()] = r.GetAdjustedRealTime() * (r.time_unit == benchmark::kMillisecond ? 1e6 : 1.0);
    ConsoleReporter::ReportRuns(runs);
  }
  void print_ratios() const {
    auto get = [&](const char* n) {
      auto it = ns_.find(n);
      return it == ns_.end() ? 0.0 : it->second;
    };
    const double base = get("request_baseline");
    const double cached = get("request_metrics_cached");
    const double naive = get("request_metrics_add_per_request");
    std::printf("\nper request, against the baseline of two clock reads (%.1f ns):\n", base);
    for (const char* n : {"request_metrics_cached", "request_metrics_cached_1000_routes",
                          "request_metrics_add_per_request", "request_access_log_record"})
      if (get(n) > 0) std::printf("  %-36s %8.1f ns  (+%.1f ns over baseline)\n", n, get(n), get(n) - base);
    if (cached > 0 && naive > 0)
      std::printf("  Family::Add per request costs %.2fx the cached series\n", (naive - base) / (cached - base));
    if (get("scrape_1000_routes") > 0)
      std::printf("scrape with 1,000 routes: %.2f ms\n", get("scrape_1000_routes") / 1e6);
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
