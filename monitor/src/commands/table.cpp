// The console's command table: the built-ins in one list, the extra commands
// after them, and the dispatch of a line (words, --json, read-only refusal).
#include "table.hpp"

#include <algorithm>
#include <exception>

namespace loupe::monitor::detail {

// The built-ins, one function each, defined in the file named beside it.
std::string ps(const command_call&);                // tasks.cpp
std::string where(const command_call&);             // tasks.cpp
std::string pstree(const command_call&);            // tasks.cpp
cancel_reply cancel(const command_call&);           // cancel.cpp
std::string ps_terminated(const command_call&);     // terminated.cpp
std::string where_terminated(const command_call&);  // terminated.cpp
std::string slow(const command_call&);              // slow.cpp
std::string loops(const command_call&);             // loops.cpp
std::string stacktrace(const command_call&);        // stacktrace.cpp
std::string log_level(const command_call&);         // log_level.cpp
std::string metrics(const command_call&);           // metrics.cpp
std::string help(const command_call&);              // help.cpp
end_session quit(const command_call&);              // help.cpp

namespace {
command builtin(std::string name, std::string usage, std::string help, std::function<reply(const command_call&)> run,
                state_change changes_state = state_change::none, std::vector<std::string> aliases = {}) {
  return {std::move(name), std::move(usage), std::move(help), std::move(run), changes_state, {}, std::move(aliases)};
}
}  // namespace

std::vector<command> builtin_commands() {
  using enum state_change;
  return {
      builtin("ps",
              "ps [FILTER] [--state running|scheduled|suspended] [--loop NAME] [--limit N | --all] [--sites] [--json]",
              "live tasks, longest-suspended first, one page (100) unless --limit N or --all; FILTER matches the name or "
              "the route; --sites: a summary by spawn site",
              ps),
      builtin("where", "where ID [--json]",
              "what task ID waits on (operation, object, the co_await's file:line), for how long, its spawn site, "
              "parents and request",
              where),
      builtin("pstree", "pstree [--json]", "live tasks as a tree by parent", pstree),
      builtin("cancel", "cancel ID", "cancels task ID and reports how it ended (refused in read-only mode)", cancel,
              always),
      builtin("ps-terminated", "ps-terminated [FILTER] [--json]",
              "recently finished tasks, newest last, with their outcome", ps_terminated),
      builtin("where-terminated", "where-terminated ID [--json]",
              "one finished task: outcome, error, spawn site, request", where_terminated),
      builtin("slow", "slow [--json]", "recent slow callbacks and watchdog stalls (stalls with the loop thread's stack)",
              slow),
      builtin("loops", "loops [--json]", "per loop: live tasks, callbacks per second, lag p50/p99, busy ratio", loops),
      builtin("stacktrace", "stacktrace [LOOP] [--json]", "the native stacks of the loop threads, now", stacktrace),
      builtin("log-level", "log-level [LEVEL]",
              "shows the log level, or sets it (trace debug info warning error critical off)", log_level, with_arguments),
      builtin("metrics", "metrics [PREFIX] [--json]", "current metric values (samples whose name starts with PREFIX)",
              metrics),
      builtin("help", "help [COMMAND]", "this list, or one command's usage", help, none, {"?"}),
      builtin("quit", "quit", "closes this console (also: exit, Ctrl-D)", quit, none, {"exit"}),
  };
}

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> out;
  std::string word;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      any = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (any) out.push_back(std::move(word));
      word.clear();
      any = false;
    } else {
      word += c;
      any = true;
    }
  }
  if (any) out.push_back(std::move(word));
  return out;
}

std::string text(const reply& r) {
  struct visitor {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const cancel_reply& c) const { return to_string(c); }
    std::string operator()(const end_session& e) const { return e.text; }
  };
  return std::visit(visitor{}, r);
}

command_table::command_table(const console_options& opts, application* app)
    : opts_(opts), app_(app), rows_(builtin_commands()), builtins_(rows_.size()) {}

void command_table::add(extra_command c) {
  command row{std::move(c.name),
              std::move(c.usage),
              std::move(c.help),
              {},
              c.changes_state ? state_change::always : state_change::none,
              std::move(c.run_async),
              {}};
  // An extra command's run sees the words without --json, as it always has.
  if (c.run) row.run = [run = std::move(c.run)](const command_call& call) -> reply { return run(call.args); };
  rows_.push_back(std::move(row));
}

const command* command_table::find(std::string_view name) const {
  const auto it = std::find_if(rows_.begin(), rows_.end(), [&](const command& c) { return c.name == name; });
  return it == rows_.end() ? nullptr : &*it;
}

bool command_table::refused(const command& c, const std::vector<std::string>& args) const {
  if (!opts_.read_only) return false;
  switch (c.changes_state) {
    case state_change::none: return false;
    case state_change::always: return true;
    case state_change::with_arguments: return !args.empty();
  }
  return false;
}

namespace {
bool named(const command& c, std::string_view word) {
  return c.name == word || std::find(c.aliases.begin(), c.aliases.end(), word) != c.aliases.end();
}
}  // namespace

reply command_table::run(std::string_view line) {
  auto words = split_words(line);
  if (words.empty()) return std::string();
  const std::string name = words.front();
  words.erase(words.begin());
  bool json_out = false;
  std::erase_if(words, [&](const std::string& w) {
    if (w == "--json") return json_out = true;
    return false;
  });
  const command_context ctx{opts_, app_, samples_, *this};
  try {
    for (const auto& c : rows_) {
      if (!named(c, name)) continue;
      if (refused(c, words)) return "error: '" + c.name + "' is refused: the console is read-only\n";
      if (!c.run) continue;  // run_async only: async_command() ran it
      return c.run(command_call{words, json_out, ctx});
    }
    return "unknown command '" + name + "' (type help)\n";
  } catch (const std::exception& e) {
    return "error: " + std::string(e.what()) + "\n";
  }
}

std::optional<awaitable<std::string>> command_table::async_command(std::string_view line) {
  auto words = split_words(line);
  if (words.empty()) return std::nullopt;
  const std::string name = words.front();
  words.erase(words.begin());
  for (const auto& c : rows_) {
    if (!named(c, name) || !c.run_async) continue;
    if (refused(c, words)) return std::nullopt;  // run() says why
    return c.run_async(words);
  }
  return std::nullopt;
}

}  // namespace loupe::monitor::detail
