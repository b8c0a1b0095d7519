// tests/bench: a console reporter that also keeps each run's figures, for the
// comparisons a benchmark program prints after its table (in the same run).
//
//   loupe_bench::recording_reporter reporter;
//   benchmark::RunSpecifiedBenchmarks(&reporter);
//   if (auto* r = reporter.find("requests/sequential_tcp/real_time")) std::printf("%.0f\n", r->counter("items_per_second"));
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace loupe_bench {

class recording_reporter : public benchmark::ConsoleReporter {
 public:
  struct figures {
    double real_ns = 0;  ///< adjusted real time per iteration, in nanoseconds
    std::map<std::string, double> counters;
    double counter(const std::string& name) const {
      auto it = counters.find(name);
      return it == counters.end() ? 0 : it->second;
    }
  };

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      figures f;
      f.real_ns = r.GetAdjustedRealTime() * (r.time_unit == benchmark::kMillisecond   ? 1e6
                                             : r.time_unit == benchmark::kMicrosecond ? 1e3
                                                                                      : 1.0);
      for (const auto& [name, c] : r.counters) f.counters[name] = c.value;
      runs_[r.benchmark_name()] = f;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  /// The figures of the run named `name`, or nullptr if it did not run.
  const figures* find(const std::string& name) const {
    auto it = runs_.find(name);
    return it == runs_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, figures> runs_;
};

}  // namespace loupe_bench
