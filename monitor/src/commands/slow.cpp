// slow: the slow callbacks and watchdog stalls the loops recorded, oldest first.
#include "table.hpp"
#include "text.hpp"

#include <loupe/runtime/loop.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace loupe::monitor::detail {

std::string slow(const command_call& call) {
  const bool as_json = call.json;
  struct row {
    std::string loop;
    slow_event e;
  };
  std::vector<row> rows;
  loop::for_each([&](const loop& l) {
    for (auto& e : l.slow_events()) rows.push_back({l.name(), std::move(e)});
  });
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.e.when < b.e.when; });
  if (as_json) {
    json::array a;
    for (const auto& r : rows) {
      json::object o{{"loop", r.loop},
                     {"kind", r.e.type == slow_event::kind::stall ? "stall" : "slow_callback"},
                     {"when", wall_time(r.e.when)},
                     {"duration_ms", millis(r.e.duration)},
                     {"task_id", r.e.task_id},
                     {"task", r.e.task_name},
                     {"resumed_from", wait_text(r.e.resumed_from)},
                     {"resumed_at", location(r.e.resumed_from.file, r.e.resumed_from.line, true)},
                     {"stack", r.e.stack}};
      if (!r.e.request.method.empty()) o["request"] = request_json(r.e.request);
      a.push_back(std::move(o));
    }
    return json::serialize(a) + "\n";
  }
  if (rows.empty()) return "no slow callbacks or stalls recorded\n";
  std::string out;
  for (const auto& r : rows) {
    const bool stall = r.e.type == slow_event::kind::stall;
    out += fmt::format("{} loop '{}' {} {} task #{} '{}'{}", wall_time(r.e.when), r.loop,
                       stall ? "STALL (still blocked after)" : "slow callback", human(r.e.duration), r.e.task_id,
                       r.e.task_name, r.e.request.method.empty() ? "" : " serving " + request_text(r.e.request));
    if (r.e.resumed_from.operation)
      out += fmt::format(", resumed from {} at {}", wait_text(r.e.resumed_from),
                         location(r.e.resumed_from.file, r.e.resumed_from.line, false));
    out += "\n";
    if (stall && !r.e.stack.empty()) out += r.e.stack;
  }
  return out;
}

}  // namespace loupe::monitor::detail
