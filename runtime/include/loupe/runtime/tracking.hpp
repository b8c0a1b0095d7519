// loupe/runtime/tracking.hpp — thresholds of callback timing, process-wide.
//
//   loupe::set_tracking_options({.slow_callback = std::chrono::milliseconds(100),
//                                .watchdog = std::chrono::seconds(1)});
//
// Every callback of every loop is timed (see detail/asio_tracking.hpp). One
// that runs longer than `slow_callback` gives one WARN record naming its task
// and request (asyncio's slow-callback warning). A watchdog thread reports a
// callback that is *still* running past `watchdog`, with the loop thread's
// stack, while it blocks; and again when it ends. Zero turns either off.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace loupe {

struct tracking_options {
  std::chrono::milliseconds slow_callback{100};
  std::chrono::milliseconds watchdog{1000};
};

void set_tracking_options(const tracking_options& opts);
tracking_options get_tracking_options();

/// Called on the watchdog's thread each time it reports a stall (a loop still
/// blocked past the threshold), while the loop is still blocked: `loop_name`
/// and the task whose callback blocks it. The profiler records a short CPU
/// profile this way. It must return quickly; nullptr removes it.
using stall_observer = void (*)(const std::string& loop_name, std::uint64_t task_id);
void set_stall_observer(stall_observer f);

}  // namespace loupe
