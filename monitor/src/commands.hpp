// Private: the console's commands, over the loops' thread-safe readers.
#pragma once

#include <loupe/monitor/console.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::monitor::detail {

/// Splits a command line into words (double quotes group; no escapes).
std::vector<std::string> split_words(std::string_view line);

class commands {
 public:
  commands(const console_options& opts, application* app) : opts_(opts), app_(app) {}
  void add(extra_command c) { extra_.push_back(std::move(c)); }

  /// Runs one line; `quit` is set when the session should end.
  std::string run(std::string_view line, bool& quit);
  /// When `line` names a command with `run_async` that may run here: its
  /// coroutine, for the session to await; otherwise nothing (run() answers).
  std::optional<awaitable<std::string>> async_command(std::string_view line);
  /// Called about once a second: keeps the loops' counters for rates.
  void sample();
  /// After `cancel ID`: how the task ended, or nullopt while it is still alive.
  std::optional<std::string> cancel_outcome(std::uint64_t id);
  /// The task id when `out` is what `cancel ID` printed before the task has
  /// ended (then the caller waits, bounded, for cancel_outcome).
  static std::optional<std::uint64_t> pending_cancel(std::string_view out);
  /// What to print when the task outlives that wait.
  static std::string still_alive(std::uint64_t id);
  /// How long and how often a console waits for a cancelled task to end.
  static constexpr int cancel_polls = 100;
  static constexpr std::chrono::milliseconds cancel_poll_interval{10};
  /// Rows `ps` prints unless told otherwise.
  static constexpr std::size_t ps_page = 100;

 private:
  std::string ps(const std::vector<std::string>& args, bool json);
  std::string where(const std::vector<std::string>& args, bool json);
  std::string pstree(bool json);
  std::string cancel(const std::vector<std::string>& args);
  std::string ps_terminated(const std::vector<std::string>& args, bool json);
  std::string where_terminated(const std::vector<std::string>& args, bool json);
  std::string slow(bool json);
  std::string loops(bool json);
  std::string stacktrace(const std::vector<std::string>& args, bool json);
  std::string log_level(const std::vector<std::string>& args);
  std::string metrics(const std::vector<std::string>& args, bool json);
  std::string help(const std::vector<std::string>& args);

  const console_options& opts_;
  application* app_;
  std::vector<extra_command> extra_;

  struct loop_sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t callbacks = 0;
    std::chrono::nanoseconds busy{0};
  };
  std::mutex samples_m_;
  // name -> the last two samples (older, newer)
  std::map<std::string, std::pair<loop_sample, loop_sample>> samples_;
};

}  // namespace loupe::monitor::detail
