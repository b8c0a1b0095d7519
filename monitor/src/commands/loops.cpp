// loops: per loop, its tasks, callbacks per second, lag and busy ratio; the
// rates come from the samples the console's sampler takes every second.
#include "table.hpp"
#include "text.hpp"

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/tracking.hpp>

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
    fresh.emplace_back(l.name(), sample{now, s.callbacks, s.busy_now});
  });
  std::lock_guard lock(m_);
  std::map<std::string, std::deque<sample>> next;
  for (auto& [name, f] : fresh) {
    auto& q = next[name];
    if (auto it = samples_.find(name); it != samples_.end()) q = std::move(it->second);
    q.push_back(f);
    while (q.size() > kept) q.pop_front();
  }
  samples_ = std::move(next);
}

std::optional<loop_samples::sample> loop_samples::base(const std::string& name, std::chrono::seconds age) const {
  std::lock_guard lock(m_);
  const auto it = samples_.find(name);
  if (it == samples_.end() || it->second.empty()) return std::nullopt;
  const auto cutoff = clock_type::now() - age;
  for (auto s = it->second.rbegin(); s != it->second.rend(); ++s)
    if (s->at <= cutoff) return *s;
  return it->second.front();
}

namespace {

struct window_rates {
  double callbacks_per_second = 0;
  double busy = 0;  // 0..1
  bool known = false;
};

// From the sample about `age` old to now; the busy time includes the
// callback running now (loop_stats::busy_now).
window_rates rates_over(const command_call& call, const loop& l, const loop_stats& s, clock_type::time_point now,
                        std::chrono::seconds age) {
  window_rates r;
  const auto base = call.ctx.samples.base(l.name(), age);
  if (!base) return r;
  const double secs = std::chrono::duration<double>(now - base->at).count();
  if (secs < 0.05) return r;
  r.known = true;
  r.callbacks_per_second = static_cast<double>(s.callbacks - base->callbacks) / secs;
  r.busy = std::clamp(std::chrono::duration<double>(s.busy_now - base->busy).count() / secs, 0.0, 1.0);
  return r;
}

json::object lag_json(const lag_window& w) {
  return {{"samples", w.samples},
          {"p50_ms", millis(w.p50)},
          {"p99_ms", millis(w.p99)},
          {"max_ms", millis(w.max)},
          {"blocked_now", w.blocked_now}};
}

}  // namespace

std::string loops(const command_call& call) {
  const bool as_json = call.json;
  const auto now = clock_type::now();
  const auto slow = get_tracking_options().slow_callback;
  json::array a;
  std::string out = fmt::format("{:<12} {:<14} {:>6} {:>12} {:>8} {:>8} {:>10} {:>10} {:>10} {:>6} {:>6}\n", "LOOP",
                                "STATE", "TASKS", "CALLBACKS/S", "BUSY 10s", "BUSY 1m", "LAG P50", "LAG P99",
                                "LAG MAX 1m", "SLOW", "STALLS");
  std::string notes;
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    const auto r10 = rates_over(call, l, s, now, std::chrono::seconds(10));
    const auto r60 = rates_over(call, l, s, now, std::chrono::seconds(60));
    const auto lag10 = l.lag_over(std::chrono::seconds(10));
    const auto lag60 = l.lag_over(std::chrono::seconds(60));
    // What runs now: a callback running past the slow-callback threshold is a blocked loop.
    const auto cur = l.running() ? l.current_callback() : std::nullopt;
    std::optional<task_info> task;
    if (cur && cur->task_id) task = l.find_task(cur->task_id);
    const std::chrono::nanoseconds running_for = cur ? cur->running_for : std::chrono::nanoseconds(0);
    const bool blocked = cur && slow.count() > 0 && running_for >= slow;
    const char* state = !l.running() ? "stopped" : blocked ? "blocked" : cur ? "running" : "waiting";
    std::string doing;
    if (cur) {
      doing = cur->task_id ? fmt::format("task #{}", cur->task_id) : "a callback outside any task";
      if (task) {
        doing += fmt::format(" '{}'", task->name);
        if (!task->request.method.empty()) doing += " serving " + to_string(task->request);
      }
    }
    if (as_json) {
      json::object o{{"loop", l.name()},
                     {"running", l.running()},
                     {"state", state},
                     {"live_tasks", s.live_tasks},
                     {"callbacks_per_second", r10.callbacks_per_second},
                     {"busy_ratio", r10.busy},
                     {"busy_ratio_10s", r10.busy},
                     {"busy_ratio_60s", r60.busy},
                     {"lag_10s", lag_json(lag10)},
                     {"lag_60s", lag_json(lag60)},
                     {"lag_p50_ms", millis(lag10.p50)},
                     {"lag_p99_ms", millis(lag10.p99)},
                     {"lag_max_ms", millis(s.lag_max)},
                     {"callbacks", s.callbacks},
                     {"slow_callbacks", s.slow_callbacks},
                     {"stalls", s.stalls}};
      if (cur) {
        json::object c{{"task_id", cur->task_id}, {"running_ms", millis(running_for)}};
        if (task) {
          c["task"] = task->name;
          if (!task->request.method.empty()) c["request"] = request_json(task->request);
        }
        o["current_callback"] = std::move(c);
      }
      a.push_back(std::move(o));
      return;
    }
    const auto pct = [](const window_rates& w) { return w.known ? fmt::format("{:.0f}%", w.busy * 100) : "-"; };
    const auto lag = [](const lag_window& w, std::chrono::nanoseconds v) { return w.samples ? human(v) : "-"; };
    out += fmt::format("{:<12} {:<14} {:>6} {:>12} {:>8} {:>8} {:>10} {:>10} {:>10} {:>6} {:>6}\n", l.name(),
                       blocked ? "blocked " + human(running_for) : std::string(state), s.live_tasks,
                       r10.known ? fmt::format("{:.1f}", r10.callbacks_per_second) : "-", pct(r10), pct(r60),
                       lag(lag10, lag10.p50), lag(lag10, lag10.p99), lag(lag60, lag60.max), s.slow_callbacks, s.stalls);
    if (cur && (blocked || task))
      notes += fmt::format("  {}: {} {} for {}\n", l.name(), blocked ? "blocked by" : "running", doing,
                           human(running_for));
  });
  if (as_json) return json::serialize(a) + "\n";
  out += notes;
  out += "(rates and busy over the last 10 s and 1 min, the callback running now included; lag over the last 10 s "
         "from raw samples)\n";
  return out;
}

}  // namespace loupe::monitor::detail
