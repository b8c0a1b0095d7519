// loupe/runtime/loop.hpp — the event loop: one io_context driven by one thread.
//
//   loupe::loop loop;                      // named "main"
//   loupe::spawn(loop, "hello", say_hello());
//   loop.run();                            // until stop() or no work is left
//
// A loop owns its task registry (see task.hpp), its ring of finished tasks and
// its ring of slow-callback and watchdog events. The registry readers
// (`tasks()`, `find_task()`, `finished_tasks()`, `slow_events()`, `cancel()`,
// `stats()`, `current_callback()`, `lag_over(window)`) may be called from any
// thread; everything else belongs to the thread that calls `run()`. A task
// with a cancel_policy (task.hpp) refuses `cancel()` or does something else
// instead: cancel_result says which.
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/io_context.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace loupe {

namespace detail {
struct access;  // the runtime's own way in (runtime/src/core/access.hpp)
}

/// A callback that ran past the slow-callback threshold, or a watchdog stall.
struct slow_event {
  enum class kind : std::uint8_t { slow_callback, stall } type = kind::slow_callback;
  std::chrono::system_clock::time_point when;
  std::chrono::nanoseconds duration{0};
  std::uint64_t task_id = 0;  ///< 0 when the callback belonged to no task
  std::string task_name;
  request_info request;
  wait_info resumed_from;     ///< what the task was waiting for before this callback
  std::string stack;          ///< stalls: the loop thread's stack, symbolized
};

/// What `loop::cancel` did.
enum class cancel_result : std::uint8_t {
  requested,   ///< the cancellation was emitted on the task's loop
  not_found,   ///< no live task has that id on this loop
  refused,     ///< its owner does not allow it: task_info::cancel_note says why
  redirected,  ///< its owner does something else instead: task_info::cancel_note says what
};

/// Counters of a loop, for the console and metrics.
struct loop_stats {
  std::uint64_t callbacks = 0;
  std::uint64_t slow_callbacks = 0;
  std::uint64_t stalls = 0;
  std::uint64_t tasks_spawned = 0;
  std::uint64_t tasks_finished = 0;
  /// Finished tasks by outcome, indexed by `task_outcome`.
  std::array<std::uint64_t, 4> tasks_finished_by_outcome{};
  std::uint64_t live_tasks = 0;
  std::chrono::nanoseconds busy{0};  ///< time spent in finished callbacks (the callback histogram's sum)
  /// `busy` plus the running time of the callback running now, so that a loop
  /// blocked in one callback reads busy while it blocks (not monotonic at the
  /// instant that callback ends; `busy` is, for counters).
  std::chrono::nanoseconds busy_now{0};
  /// Callback durations, as a histogram: counts per bucket with upper bounds
  /// `callback_bucket_bounds` (the last bucket is +Inf); `callbacks` counts them all.
  static constexpr std::array<std::chrono::microseconds, 14> callback_bucket_bounds{
      std::chrono::microseconds(10),      std::chrono::microseconds(25),     std::chrono::microseconds(50),
      std::chrono::microseconds(100),     std::chrono::microseconds(250),    std::chrono::microseconds(500),
      std::chrono::microseconds(1000),    std::chrono::microseconds(5000),   std::chrono::microseconds(10000),
      std::chrono::microseconds(50000),   std::chrono::microseconds(100000), std::chrono::microseconds(500000),
      std::chrono::microseconds(1000000), std::chrono::microseconds(5000000)};
  std::array<std::uint64_t, callback_bucket_bounds.size() + 1> callback_buckets{};
  /// Loop lag (how late the sampling timer fired), as a histogram: counts per
  /// bucket with upper bounds `lag_bucket_bounds` (the last bucket is +Inf).
  static constexpr std::array<std::chrono::microseconds, 16> lag_bucket_bounds{
      std::chrono::microseconds(100),     std::chrono::microseconds(250),     std::chrono::microseconds(500),
      std::chrono::microseconds(1000),    std::chrono::microseconds(2500),    std::chrono::microseconds(5000),
      std::chrono::microseconds(10000),   std::chrono::microseconds(25000),   std::chrono::microseconds(50000),
      std::chrono::microseconds(100000),  std::chrono::microseconds(250000),  std::chrono::microseconds(500000),
      std::chrono::microseconds(1000000), std::chrono::microseconds(2500000), std::chrono::microseconds(5000000),
      std::chrono::microseconds(10000000)};
  std::array<std::uint64_t, lag_bucket_bounds.size() + 1> lag_buckets{};
  std::uint64_t lag_count = 0;
  std::chrono::nanoseconds lag_sum{0}, lag_max{0};
  /// Quantiles estimated from the histogram (the upper bound of the bucket
  /// the quantile falls in); zero before any sample.
  std::chrono::nanoseconds lag_p50{0}, lag_p99{0};
};

/// Loop lag over a recent window, from the raw samples (not bucket edges).
/// While a callback has been running longer than the sampling interval, its
/// running time counts as one more sample: a timer due now is at least that
/// late (the sampler itself cannot fire while the loop is blocked).
struct lag_window {
  std::size_t samples = 0;
  std::chrono::nanoseconds p50{0}, p99{0}, max{0};
  bool blocked_now = false;  ///< the running callback was counted
};

class loop {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  /// `name` labels the loop in logs, metrics and the console; names are
  /// unique among live loops, so a second loop named "main" is "main-2".
  explicit loop(std::string name = "main");
  ~loop();
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  const std::string& name() const noexcept;
  boost::asio::io_context& context() noexcept;
  executor_type get_executor() noexcept;

  /// Runs the loop on this thread until `stop()` or until no work is left.
  void run();
  /// Runs ready handlers and handlers that become ready within `for_at_most`.
  std::size_t run_for(std::chrono::steady_clock::duration for_at_most);
  /// Runs at most one handler, waiting up to `for_at_most` for one.
  std::size_t run_one_for(std::chrono::steady_clock::duration for_at_most);
  /// Runs at most one handler that is ready now, without waiting.
  std::size_t poll_one();
  /// Makes `run()` return as soon as possible. Callable from any thread.
  void stop();
  bool stopped() const noexcept;
  /// Makes a stopped loop runnable again.
  void restart();

  /// The loop whose `run()` is executing on this thread, or nullptr.
  static loop* current() noexcept;

  /// Snapshot of the live tasks, oldest first. Thread-safe. It copies the
  /// registry a slice (64 tasks) at a time and lets the loop's thread take the
  /// registry's lock between slices, so a reader never holds the loop up for
  /// longer than one slice, whatever the number of tasks.
  std::vector<task_info> tasks() const;
  std::size_t live_task_count() const noexcept;
  std::optional<task_info> find_task(std::uint64_t id) const;
  /// Recently finished tasks, oldest first (a ring; see set_finished_capacity).
  std::vector<finished_task> finished_tasks() const;
  std::optional<finished_task> find_finished(std::uint64_t id) const;
  void set_finished_capacity(std::size_t n);
  /// Recent slow callbacks and stalls, oldest first.
  std::vector<slow_event> slow_events() const;
  /// The native stack of the thread running this loop, now, symbolized (one
  /// frame per line); empty when the loop is not running. Thread-safe; it
  /// interrupts the loop thread with a signal for a moment (the watchdog's way).
  std::string native_stack() const;
  /// Whether a thread is running this loop now.
  bool running() const noexcept;
  /// The callback the loop is running now: its task (0 for none) and for how
  /// long; std::nullopt between callbacks. Thread-safe.
  struct callback_info {
    std::uint64_t task_id = 0;
    std::chrono::nanoseconds running_for{0};
  };
  std::optional<callback_info> current_callback() const;
  loop_stats stats() const;
  /// Lag over the last `window` (at most the last 4,096 samples: 100 s at
  /// the default 25 ms interval). Thread-safe.
  lag_window lag_over(std::chrono::nanoseconds window) const;

  /// Emits terminal cancellation on task `id`'s cancellation slot, on this
  /// loop's thread. The task's operation in progress fails with
  /// operation_aborted; how it ends shows in finished_tasks(). A task with a
  /// cancel_policy (set_cancel_policy) is refused or does what its policy
  /// says instead. Thread-safe.
  cancel_result cancel(std::uint64_t id, cancel_source by = cancel_source::api);
  /// Cancels task `id` on whichever live loop has it (ids are unique in the
  /// process). Thread-safe.
  static cancel_result cancel_anywhere(std::uint64_t id, cancel_source by = cancel_source::api);

  /// Samples loop lag (how late a timer fires) every `interval` while the
  /// loop runs. Off by default: the sampling timer keeps `run()` from
  /// returning for lack of work.
  void enable_lag_sampling(std::chrono::milliseconds interval = std::chrono::milliseconds(25));

  /// `hook` runs once on each thread, the first time it runs a loop (the
  /// profiler registers loop threads with gperftools this way). Set it
  /// before loops run; nullptr removes it.
  static void set_thread_start_hook(void (*hook)());
  /// `hook` runs on a loop's thread each time run(), run_for() or
  /// run_one_for() returns (the log hands over what it staged for the loop).
  /// At most 8 hooks, added before loops run; thread-safe.
  static void add_run_exit_hook(void (*hook)());

  /// Calls `f(const loop&)` for every loop alive in the process, while
  /// holding the list's lock (a loop being destroyed waits). For metrics.
  template <class F>
  static void for_each(F&& f) {
    visit_all([](const loop& l, void* ctx) { (*static_cast<F*>(ctx))(l); }, &f);
  }

  struct impl;

 private:
  friend struct detail::access;
  static void visit_all(void (*fn)(const loop&, void*), void* ctx);
  std::unique_ptr<impl> impl_;
};

namespace detail {
/// Test only: called by loop::tasks() on the reading thread between the
/// slices of its walk, with the registry locked; nullptr removes it.
void set_registry_walk_hook_for_test(void (*hook)());
}  // namespace detail

}  // namespace loupe
