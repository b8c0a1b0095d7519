// stacktrace: the native stack of each loop's thread, now, and the callback it runs.
#include "registry.hpp"
#include "table.hpp"
#include "text.hpp"

#include <loupe/runtime/loop.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace loupe::monitor::detail {

std::string stacktrace(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  const std::string only = args.empty() ? std::string() : args[0];
  const auto now_tasks = all_tasks();
  json::array a;
  std::string out;
  loop::for_each([&](const loop& l) {
    if (!only.empty() && l.name() != only) return;
    std::string header = "loop '" + l.name() + "'";
    json::object o{{"loop", l.name()}, {"running", l.running()}};
    if (!l.running()) {
      out += header + ": not running\n";
      a.push_back(std::move(o));
      return;
    }
    if (auto cb = l.current_callback()) {
      std::string name;
      for (const auto& t : now_tasks)
        if (t.id == cb->task_id) name = t.name;
      header += fmt::format(": running a callback of task #{} '{}' for {}", cb->task_id, name, human(cb->running_for));
      o["task_id"] = cb->task_id;
      o["callback_ms"] = millis(cb->running_for);
    } else {
      header += ": waiting for events";
    }
    const std::string stack = l.native_stack();
    o["stack"] = stack;
    a.push_back(std::move(o));
    out += header + "\n" + (stack.empty() ? "  (not captured)\n" : stack);
  });
  if (as_json) return json::serialize(a) + "\n";
  return out.empty() ? "no such loop\n" : out;
}

}  // namespace loupe::monitor::detail
