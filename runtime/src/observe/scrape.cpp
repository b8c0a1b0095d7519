// What a scrape of /metrics sees: the collectors that read loops, tasks, the
// log writer and the process at scrape time, and the text exposition (and its
// parser, for tests and the console).
#include "observe/http_metrics.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace loupe {

namespace metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric with_labels(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

template <std::size_t N, class Bounds>
ClientMetric::Histogram histogram(const std::array<std::uint64_t, N>& counts, const Bounds& bounds, double sum) {
  ClientMetric::Histogram h;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    total += counts[i];
    const double upper = i < bounds.size() ? std::chrono::duration<double>(bounds[i]).count()
                                           : std::numeric_limits<double>::infinity();
    h.bucket.push_back({total, upper});
  }
  h.sample_count = total;  // the +Inf bucket, so that the two always agree
  h.sample_sum = sum;
  return h;
}

// /proc/self/stat fields after the command name (field 3 onwards).
std::vector<std::string> self_stat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> out;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 1));
  for (std::string f; rest >> f;) out.push_back(std::move(f));
  return out;
}

double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

double max_open_files() {
  std::ifstream in("/proc/self/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return std::numeric_limits<double>::infinity();
    return std::strtod(soft.c_str(), nullptr);
  }
  return 0;
}

double open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

void collect_process(std::vector<MetricFamily>& out) {
  const auto stat = self_stat();
  // Fields (1-based in proc(5)): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  auto field = [&](std::size_t n) { return n - 3 < stat.size() ? std::strtod(stat[n - 3].c_str(), nullptr) : 0.0; };
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  auto one = [&](const char* name, const char* help, MetricType type, double v) {
    auto f = family(name, help, type);
    ClientMetric m;
    if (type == MetricType::Counter) m.counter.value = v;
    else m.gauge.value = v;
    f.metric.push_back(std::move(m));
    out.push_back(std::move(f));
  };
  one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", MetricType::Counter,
      (field(14) + field(15)) / ticks);
  one("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge, field(24) * page);
  one("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge, field(23));
  one("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, open_fds());
  one("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge, max_open_files());
  static const double start = boot_time() + field(22) / ticks;
  one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", MetricType::Gauge, start);
}

void collect_loops(std::vector<MetricFamily>& out) {
  auto callbacks = family("loupe_loop_callback_duration_seconds", "Time each callback (handler) ran on a loop.",
                          MetricType::Histogram);
  auto slow = family("loupe_loop_slow_callbacks_total", "Callbacks that ran past the slow-callback threshold.",
                     MetricType::Counter);
  auto stalls = family("loupe_loop_stalls_total", "Times the watchdog found a loop still blocked.", MetricType::Counter);
  auto lag = family("loupe_loop_lag_seconds", "How late the loop's sampling timer fired (event-loop lag).",
                    MetricType::Histogram);
  auto live = family("loupe_tasks", "Tasks alive on a loop.", MetricType::Gauge);
  auto spawned = family("loupe_tasks_spawned_total", "Tasks started on a loop.", MetricType::Counter);
  auto finished = family("loupe_tasks_finished_total", "Tasks finished on a loop, by outcome.", MetricType::Counter);
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    const ClientMetric::Label name{"loop", l.name()};
    auto m = with_labels({name});
    m.histogram = histogram(s.callback_buckets, loop_stats::callback_bucket_bounds,
                            std::chrono::duration<double>(s.busy).count());
    callbacks.metric.push_back(std::move(m));
    m = with_labels({name});
    m.counter.value = static_cast<double>(s.slow_callbacks);
    slow.metric.push_back(std::move(m));
    m = with_labels({name});
    m.counter.value = static_cast<double>(s.stalls);
    stalls.metric.push_back(std::move(m));
    m = with_labels({name});
    m.histogram = histogram(s.lag_buckets, loop_stats::lag_bucket_bounds,
                            std::chrono::duration<double>(s.lag_sum).count());
    lag.metric.push_back(std::move(m));
    m = with_labels({name});
    m.gauge.value = static_cast<double>(s.live_tasks);
    live.metric.push_back(std::move(m));
    m = with_labels({name});
    m.counter.value = static_cast<double>(s.tasks_spawned);
    spawned.metric.push_back(std::move(m));
    for (std::size_t i = 0; i < s.tasks_finished_by_outcome.size(); ++i) {
      m = with_labels({name, {"outcome", to_string(static_cast<task_outcome>(i))}});
      m.counter.value = static_cast<double>(s.tasks_finished_by_outcome[i]);
      finished.metric.push_back(std::move(m));
    }
  });
  for (auto* f : {&callbacks, &slow, &stalls, &lag, &live, &spawned, &finished}) out.push_back(std::move(*f));
}

void collect_log(std::vector<MetricFamily>& out) {
  auto f = family("loupe_log_records_dropped_total", "Log records dropped because the log writer's queue was full.",
                  MetricType::Counter);
  ClientMetric m;
  m.counter.value = static_cast<double>(log::dropped_records());
  f.metric.push_back(std::move(m));
  out.push_back(std::move(f));
}

std::string exposition_of(std::vector<prometheus::MetricFamily> families) {
  auto shared = process_registry().Collect();
  families.insert(families.end(), std::make_move_iterator(shared.begin()), std::make_move_iterator(shared.end()));
  collect_loops(families);
  collect_log(families);
  collect_process(families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace

prometheus::Registry& process_registry() {
  static prometheus::Registry* r = new prometheus::Registry;  // outlives every client session
  return *r;
}

std::string exposition(const prometheus::Registry& app_registry) { return exposition_of(app_registry.Collect()); }

std::vector<sample> parse_exposition(std::string_view text) {
  std::vector<sample> out;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string key, value;
        while (i < line.size() && line[i] != '=') key += line[i++];
        i += 2;  // ="
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels.emplace(std::move(key), std::move(value));
      }
      ++i;  // closing brace
    }
    if (i >= line.size()) continue;
    const std::string value(line.substr(i + 1, line.find(' ', i + 1) - (i + 1)));
    s.value = std::strtod(value.c_str(), nullptr);  // also +Inf, -Inf, NaN
    out.push_back(std::move(s));
  }
  return out;
}


}  // namespace metrics

namespace detail {

std::string exposition(const app_metrics& m) {
  auto families = m.registry->Collect();
  for (const auto& r : m.mounted) {
    for (auto& f : r->Collect()) {
      auto same = std::find_if(families.begin(), families.end(), [&](const auto& g) { return g.name == f.name; });
      if (same == families.end()) families.push_back(std::move(f));
      else
        same->metric.insert(same->metric.end(), std::make_move_iterator(f.metric.begin()),
                            std::make_move_iterator(f.metric.end()));
    }
  }
  return metrics::exposition_of(std::move(families));
}

}  // namespace detail
}  // namespace loupe
