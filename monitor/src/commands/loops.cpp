// loops: per loop, its tasks, callbacks per second, lag and busy ratio; the
// rates come from the samples the console's sampler takes every second.
#include "table.hpp"
#include "text.hpp"

#include <loupe/runtime/loop.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

namespace loupe::monitor::detail {

void loop_samples::take() {
  const auto now = clock_type::now();
  // The loops are read first, without m_: `loops` takes m_ while visiting the
  // loops, so holding m_ here around the visit would order the locks both ways.
  std::vector<std::pair<std::string, sample>> fresh;
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    fresh.emplace_back(l.name(), sample{now, s.callbacks, s.busy});
  });
  std::lock_guard lock(m_);
  std::map<std::string, std::pair<sample, sample>> next;
  for (auto& [name, f] : fresh) {
    auto it = samples_.find(name);
    next[name] = {it == samples_.end() ? f : it->second.second, f};
  }
  samples_ = std::move(next);
}

std::optional<loop_samples::sample> loop_samples::base(const std::string& name) const {
  std::lock_guard lock(m_);
  const auto it = samples_.find(name);
  if (it == samples_.end()) return std::nullopt;
  return it->second.first;
}

std::string loops(const command_call& call) {
  const bool as_json = call.json;
  const auto now = clock_type::now();
  json::array a;
  std::string out = fmt::format("{:<12} {:<8} {:>6} {:>12} {:>9} {:>9} {:>6} {:>7} {:>7}\n", "LOOP", "STATE", "TASKS",
                                "CALLBACKS/S", "LAG P50", "LAG P99", "BUSY", "SLOW", "STALLS");
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    double rate = 0, busy = 0;
    if (const auto base = call.ctx.samples.base(l.name())) {
      // From the older sample to now: at least a second of history once the sampler has run twice.
      const double secs = std::chrono::duration<double>(now - base->at).count();
      if (secs > 0.05) {
        rate = static_cast<double>(s.callbacks - base->callbacks) / secs;
        busy = std::chrono::duration<double>(s.busy - base->busy).count() / secs;
      }
    }
    const bool running = l.running();
    if (as_json) {
      a.push_back(json::object{{"loop", l.name()},
                               {"running", running},
                               {"live_tasks", s.live_tasks},
                               {"callbacks_per_second", rate},
                               {"lag_p50_ms", millis(s.lag_p50)},
                               {"lag_p99_ms", millis(s.lag_p99)},
                               {"lag_max_ms", millis(s.lag_max)},
                               {"busy_ratio", std::min(busy, 1.0)},
                               {"callbacks", s.callbacks},
                               {"slow_callbacks", s.slow_callbacks},
                               {"stalls", s.stalls}});
    } else {
      out += fmt::format("{:<12} {:<8} {:>6} {:>12.1f} {:>9} {:>9} {:>5.0f}% {:>7} {:>7}\n", l.name(),
                         running ? "running" : "idle", s.live_tasks, rate, s.lag_count ? human(s.lag_p50) : "-",
                         s.lag_count ? human(s.lag_p99) : "-", std::min(busy, 1.0) * 100, s.slow_callbacks, s.stalls);
    }
  });
  return as_json ? json::serialize(a) + "\n" : out;
}

}  // namespace loupe::monitor::detail
