// Private: a task's live record — what the registry lists, handlers are
// stamped with, and the console reads — and the current task's request.
#pragma once

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>

#include "core/clock.hpp"

#include <boost/asio/cancellation_signal.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

namespace loupe::detail {

/// A task's live record. Reference-counted: the task itself holds one
/// reference, and so does every Asio handler stamped with it. Counts change
/// only on the loop's thread (or after it has stopped), so they are plain ints.
struct task_record {
  loop* owner = nullptr;
  std::uint64_t id = 0;
  std::uint64_t parent_id = 0;
  task_record* resume_to = nullptr;  // who runs after this task's end (a reference)
  std::string name;
  std::source_location site;
  std::chrono::steady_clock::time_point created;
  boost::asio::cancellation_signal signal;
  int refs = 1;
  bool done = false;
  cancel_source cancelled_by = cancel_source::none;
  // An inline task's cancellation goes through this task's signal (its caller,
  // whose coroutine runs it); null for a spawned task.
  task_record* cancel_via = nullptr;

  // Read by other threads without the registry lock: atomics.
  std::atomic<task_state> state{task_state::scheduled};
  std::atomic<std::int64_t> suspended_since_ns{0};
  std::atomic<const char*> wait_op{nullptr};
  std::atomic<const char*> wait_object{nullptr};
  std::atomic<const char*> wait_file{nullptr};
  std::atomic<int> wait_line{0};
  // The task it awaits when its wait is "await on task" (0: none).
  std::atomic<std::uint64_t> awaiting{0};
  std::atomic<std::uint64_t> resumes{0};
  std::atomic<std::int64_t> busy_ns{0};

  request_info request;  // guarded by the registry mutex
  // Set on the request's own task (set_request_info); a task started while
  // serving it shares its flag, which the request's task clears as it ends,
  // so the console can tell a background task that outlived its request.
  bool serves_request = false;
  std::shared_ptr<std::atomic<bool>> request_alive;
  std::string what;      // guarded by the registry mutex
  std::string cancel_note;              // guarded by the registry mutex
  bool cancel_refused = false;          // guarded by the registry mutex
  std::function<void()> cancel_instead; // guarded by the registry mutex; called on the loop's thread

  // Called on the loop's thread when the task ends: the wakers of join().
  std::vector<std::function<void()>> on_end;

  task_record* prev = nullptr;  // registry list, guarded by the mutex
  task_record* next = nullptr;
};

void release(task_record* r) noexcept;

/// Attaches request details to the current task (shown by the console and in reports).
void set_request_info(request_info info);
/// The client of the request task `task_id` of `l` has gone (registry lock).
void mark_client_gone(loop& l, std::uint64_t task_id);

}  // namespace loupe::detail
