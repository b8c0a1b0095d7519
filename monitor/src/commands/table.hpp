// Private: the console's commands as one table — the built-ins (one file per
// family under commands/) and the extra_commands other components add.
//
//   command_table table(opts, app);
//   table.add(profile_command);                       // after the built-ins
//   const reply r = table.run("ps /sleep --json");    // on the console's thread
//   print(text(r));
//
// A built-in is a function from a command_call to a reply, listed with its
// name, usage and help in commands/table.cpp; `help` and the read-only rule
// read the same table.
#pragma once

#include "cancel.hpp"

#include <loupe/monitor/console.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace loupe::monitor::detail {

class command_table;

/// Splits a command line into words (double quotes group; no escapes).
std::vector<std::string> split_words(std::string_view line);

/// The loops' counters a second apart, for `loops`' rates. The console's
/// sampler calls take() about once a second; thread-safe.
class loop_samples {
 public:
  struct sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t callbacks = 0;
    std::chrono::nanoseconds busy{0};
  };
  void take();
  /// The newest sample of loop `name` taken at least `age` ago, else its
  /// oldest (a window shorter than asked while the console is young), or
  /// nothing before the first sample.
  std::optional<sample> base(const std::string& name, std::chrono::seconds age) const;

  /// Samples kept per loop: a minute's worth, one a second.
  static constexpr std::size_t kept = 62;

 private:
  mutable std::mutex m_;
  std::map<std::string, std::deque<sample>> samples_;  // oldest first
};

/// What a command reads besides its words. Built by the table for each call.
struct command_context {
  const console_options& opts;
  application* app;  ///< for `metrics`; null when the console has none
  const loop_samples& samples;
  const command_table& table;  ///< for `help`
};

/// One call of a command: the words after its name, with `--json` taken out.
struct command_call {
  const std::vector<std::string>& args;
  bool json = false;  ///< `--json` was given
  const command_context& ctx;
};

/// `quit`: this text, then the session ends.
struct end_session {
  std::string text;
};

/// What a command answers: text to print, how `cancel ID` went, or the end of the session.
using reply = std::variant<std::string, cancel_reply, end_session>;

/// The text a reply prints (first, for a cancel being waited on).
std::string text(const reply& r);

/// When read-only mode refuses a command.
enum class state_change {
  none,
  always,          ///< `cancel`; an extra_command with changes_state
  with_arguments,  ///< `log-level LEVEL` (reading the level is fine)
};

/// One row of the table: extra_command's shape, with --json and a reply.
struct command {
  std::string name;
  std::string usage;  ///< e.g. "where ID [--json]"
  std::string help;   ///< one line
  std::function<reply(const command_call&)> run;
  state_change changes_state = state_change::none;
  std::function<awaitable<std::string>(std::vector<std::string> args)> run_async;
  std::vector<std::string> aliases = {};  ///< other words that run it (`?`, `exit`); not in help
};

/// The built-ins, in the order `help` lists them (commands/table.cpp).
std::vector<command> builtin_commands();

/// What a session prints first: pid, loops, live tasks, read-only, and how to
/// get help and leave (commands/help.cpp).
std::string banner(const command_table& table);

/// The console's commands. Owned by the console; run() and async_command()
/// on the console's thread (or console::execute's), sample() from its sampler.
class command_table {
 public:
  command_table(const console_options& opts, application* app);
  command_table(const command_table&) = delete;
  command_table& operator=(const command_table&) = delete;

  /// Appends a command another component adds (before the console starts).
  void add(extra_command c);

  /// Runs one line: the first row of that name (built-ins first) that has
  /// `run`, unless read-only mode refuses it; exceptions become "error: ...".
  reply run(std::string_view line);
  /// When `line` names a command with `run_async` that may run here: its
  /// coroutine, for the session to await; otherwise nothing (run() answers).
  std::optional<awaitable<std::string>> async_command(std::string_view line);
  /// Called about once a second: keeps the loops' counters for rates.
  void sample() { samples_.take(); }

  /// Every row: the built-ins, then the added commands in the order added.
  std::span<const command> all() const { return rows_; }
  /// The built-ins only.
  std::span<const command> builtins() const { return all().first(builtins_); }
  /// The first row named `name` (aliases do not count), or null.
  const command* find(std::string_view name) const;
  const console_options& options() const { return opts_; }

 private:
  bool refused(const command& c, const std::vector<std::string>& args) const;

  const console_options& opts_;
  application* app_;
  loop_samples samples_;
  std::vector<command> rows_;
  std::size_t builtins_ = 0;
};

}  // namespace loupe::monitor::detail
