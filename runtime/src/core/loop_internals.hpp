// Private: the loop's internals shared by loop.cpp and tracking.cpp.
#pragma once

#include <loupe/runtime/loop.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace loupe {

namespace detail {

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Adds to a counter written only by its loop's thread: a plain load and
/// store (readers on other threads see a recent value), no locked
/// read-modify-write on the hot path.
template <class T, class U>
inline void bump(std::atomic<T>& a, U by) noexcept {
  a.store(a.load(std::memory_order_relaxed) + static_cast<T>(by), std::memory_order_relaxed);
}

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
  std::atomic<std::uint64_t> resumes{0};
  std::atomic<std::int64_t> busy_ns{0};

  request_info request;  // guarded by the registry mutex

  task_record* prev = nullptr;  // registry list, guarded by the mutex
  task_record* next = nullptr;
};

void release(task_record* r) noexcept;

/// The task registry's mutex. The loop thread takes it for a moment at a
/// task's start and end; readers on other threads (the console, the test
/// kit's backstop) walk the registry a slice at a time and, between slices,
/// hand the lock to a thread waiting for it, so that a reader copying 5,000
/// tasks never holds the loop up for more than one slice. (An unlock followed
/// by a lock does not do that by itself: the unlocking thread usually takes
/// the mutex again before the woken waiter runs.)
class registry_mutex {
 public:
  void lock() {
    if (m_.try_lock()) return;
    waiters_.fetch_add(1, std::memory_order_relaxed);
    m_.lock();
    waiters_.fetch_sub(1, std::memory_order_relaxed);
  }
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }
  /// Called with the lock held between slices: if another thread waits for
  /// it, lets it in first, then takes the lock again.
  void let_waiters_in() {
    if (waiters_.load(std::memory_order_relaxed) == 0) return;
    m_.unlock();
    while (waiters_.load(std::memory_order_relaxed) != 0) std::this_thread::yield();
    m_.lock();
  }

 private:
  std::mutex m_;
  std::atomic<int> waiters_{0};
};

/// A fixed-capacity ring that overwrites its oldest entry in place, so a
/// full ring reuses the strings' storage instead of allocating per entry.
template <class T>
class ring {
 public:
  explicit ring(std::size_t capacity) : slots_(capacity) {}
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return slots_.size(); }
  /// The slot for a new newest entry (the oldest one's, when full), still
  /// holding its old value for the caller to overwrite field by field.
  T& push() {
    T& slot = slots_[(first_ + size_) % slots_.size()];
    if (size_ < slots_.size()) ++size_; else first_ = (first_ + 1) % slots_.size();
    return slot;
  }
  /// The i-th entry, oldest first.
  const T& operator[](std::size_t i) const noexcept { return slots_[(first_ + i) % slots_.size()]; }
  /// Keeps the newest `n` entries.
  void set_capacity(std::size_t n) {
    std::vector<T> kept;
    const std::size_t keep = std::min(n, size_);
    kept.reserve(n);
    for (std::size_t i = size_ - keep; i < size_; ++i) kept.push_back(std::move(slots_[(first_ + i) % slots_.size()]));
    kept.resize(n);
    slots_ = std::move(kept);
    first_ = 0;
    size_ = keep;
  }
  std::vector<T> to_vector() const {
    std::vector<T> out;
    out.reserve(size_);
    for (std::size_t i = 0; i < size_; ++i) out.push_back((*this)[i]);
    return out;
  }

 private:
  std::vector<T> slots_;
  std::size_t first_ = 0;
  std::size_t size_ = 0;
};


}  // namespace detail

struct loop::impl {
  explicit impl(loop& self, std::string n) : owner(self), name(std::move(n)), ctx(1) {}

  task_info snapshot(const detail::task_record& r) const;  // call with `mutex` held
  void snapshot_into(const detail::task_record& r, task_info& t) const;  // reuses t's storage
  /// The most recent ending of task `id` in the ring, or null; call with `mutex` held.
  const finished_task* find_finished(std::uint64_t id) const noexcept {
    for (std::size_t k = finished.size(); k-- > 0;)
      if (finished[k].info.id == id) return &finished[k];
    return nullptr;
  }

  loop& owner;
  std::string name;
  /// map_host(): names the client connects to without DNS (loop thread only).
  std::map<std::string, boost::asio::ip::tcp::endpoint, std::less<>> hosts;

  mutable detail::registry_mutex mutex;  // guards the registry list, the rings and request infos
  detail::task_record* head = nullptr;
  detail::task_record* tail = nullptr;
  boost::unordered_flat_map<std::uint64_t, detail::task_record*> by_id;  // live tasks, for lookups
  std::atomic<std::size_t> live{0};
  detail::ring<finished_task> finished{1000};
  std::deque<slow_event> slow;
  std::size_t slow_capacity = 100;
  // Loop lag histogram (see loop_stats); written by the loop thread only.
  std::array<std::atomic<std::uint64_t>, loop_stats::lag_bucket_bounds.size() + 1> lag_buckets{};
  std::atomic<std::uint64_t> lag_count{0};
  std::atomic<std::int64_t> lag_sum_ns{0};
  std::atomic<std::int64_t> lag_max_ns{0};

  // Counters (loop thread writes, others read).
  std::atomic<std::uint64_t> callbacks{0};
  std::atomic<std::uint64_t> slow_callbacks{0};
  std::atomic<std::uint64_t> stalls{0};
  std::atomic<std::uint64_t> spawned{0};
  std::atomic<std::uint64_t> finished_count{0};
  std::array<std::atomic<std::uint64_t>, 4> finished_by_outcome{};
  std::array<std::atomic<std::uint64_t>, loop_stats::callback_bucket_bounds.size() + 1> callback_buckets{};
  std::atomic<std::int64_t> busy_ns{0};

  // What the loop runs now, for the watchdog.
  std::atomic<std::int64_t> callback_start_ns{0};  // 0: between callbacks
  std::atomic<std::uint64_t> callback_seq{0};
  std::atomic<std::uint64_t> callback_task{0};
  std::atomic<std::uint64_t> stall_reported_seq{0};
  std::atomic<bool> running{false};
  pthread_t thread{};
  int depth = 0;  // nesting of invocations on the loop thread

  std::unique_ptr<boost::asio::steady_timer> lag_timer;
  std::chrono::milliseconds lag_interval{0};

  // Last, so it is destroyed first: destroying it destroys the frames of
  // suspended tasks, whose records unlink themselves from the list above.
  boost::asio::io_context ctx;
};

namespace detail {
/// The tracking thresholds (set_tracking_options), in ns; 0 = off.
extern std::atomic<std::int64_t> slow_threshold_ns;
extern std::atomic<std::int64_t> watchdog_threshold_ns;
/// The loop whose run() is on this thread.
loop::impl* current_loop_impl() noexcept;
void watchdog_attach(loop::impl& l);
/// The loop thread's stack now (symbolized), or "" if it is not running.
std::string loop_thread_stack(loop::impl& l);
void watchdog_detach(loop::impl& l);
void record_slow_event(loop::impl& l, slow_event ev);
/// Name and request of task `id` (live or recently finished).
void describe_task(loop::impl& l, std::uint64_t id, std::string& name, request_info& request);
/// Makes `to` the running task, charging the time so far to the previous one.
void switch_task(task_record* to) noexcept;
/// Attaches request details to the current task (shown by the console and in reports).
void set_request_info(request_info info);
}  // namespace detail

}  // namespace loupe
