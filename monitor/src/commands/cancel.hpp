// Private: what `cancel ID` answers, and how the console learns how the task ended.
//
//   const cancel_reply r = cancel(call);          // commands/cancel.cpp
//   print(to_string(r));
//   if (r.status == cancel_reply::requested)      // poll, bounded, then say how it ended
//     print(cancel_outcome(r.id).value_or(still_alive(r.id)));
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace loupe::monitor::detail {

/// What `cancel ID` did, as a value: the console prints its text, and for
/// `requested` waits (bounded) for the task to end. (Read-only refusal is the
/// table's: cancel never runs then.)
struct cancel_reply {
  enum kind { usage, not_found, ended_first, requested, refused, redirected };
  kind status = usage;
  std::uint64_t id = 0;
  std::string name;  ///< the task's, when requested, refused or redirected
  std::string note;  ///< refused: why; redirected: what the cancel does instead
};

/// The text `cancel ID` prints first.
std::string to_string(const cancel_reply& r);
/// After a requested cancel: how the task ended, or nullopt while it is still alive.
std::optional<std::string> cancel_outcome(std::uint64_t id);
/// What to print when the task outlives the wait.
std::string still_alive(std::uint64_t id);

/// How long and how often a console waits for a cancelled task to end.
inline constexpr int cancel_polls = 100;
inline constexpr std::chrono::milliseconds cancel_poll_interval{10};

}  // namespace loupe::monitor::detail
