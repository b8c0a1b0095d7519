// help and quit, and the banner a session opens with: all three read the
// table, so a command added to it is listed without another edit.
#include "table.hpp"

#include <loupe/runtime/loop.hpp>

#include <fmt/format.h>

#include <unistd.h>

namespace loupe::monitor::detail {

namespace {

// "cancel and log-level LEVEL": the built-ins read-only mode refuses, a
// command refused only with arguments written with them.
std::string refused_in_read_only(const command_table& table) {
  std::vector<std::string> names;
  for (const auto& c : table.builtins()) {
    if (c.changes_state == state_change::always) names.push_back(c.name);
    if (c.changes_state == state_change::with_arguments) {
      std::string usage = c.usage;  // "log-level [LEVEL]" -> "log-level LEVEL"
      std::erase_if(usage, [](char ch) { return ch == '[' || ch == ']'; });
      names.push_back(std::move(usage));
    }
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out;
}

}  // namespace

std::string help(const command_call& call) {
  const auto& table = call.ctx.table;
  if (!call.args.empty()) {
    if (const auto* c = table.find(call.args[0])) return fmt::format("usage: {}\n  {}\n", c->usage, c->help);
    return "unknown command '" + call.args[0] + "' (type help)\n";
  }
  std::string out = "commands:\n";
  for (const auto& c : table.all()) out += fmt::format("  {:<18} {}\n", c.name, c.help);
  out += "listings take --json; ";
  out += call.ctx.opts.read_only ? "this console is read-only (" + refused_in_read_only(table) + " are refused)\n"
                                 : "help COMMAND shows its usage\n";
  return out;
}

end_session quit(const command_call&) { return {"bye\n"}; }

std::string banner(const command_table& table) {
  std::size_t loops = 0, tasks = 0;
  loop::for_each([&](const loop& l) {
    ++loops;
    tasks += l.live_task_count();
  });
  return "loupe monitor: pid " + std::to_string(::getpid()) + ", " + std::to_string(loops) + " loop(s), " +
         std::to_string(tasks) + " live task(s)" + (table.options().read_only ? " (read-only)" : "") +
         "\ntype help for commands, quit to leave\n";
}

}  // namespace loupe::monitor::detail
