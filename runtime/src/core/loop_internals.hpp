// Private: a loop's state (loop::impl) — its io_context, task registry,
// rings and counters — shared by the files of core/.
#pragma once

#include <loupe/runtime/loop.hpp>

#include "core/access.hpp"
#include "core/clock.hpp"
#include "core/registry.hpp"
#include "core/task_record.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace loupe {

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
  // The recent raw samples, for windowed quantiles: each packs the sample's
  // time (ms on the now_ns clock, low 32 bits) over its lag (µs, saturated).
  static constexpr std::size_t lag_ring_size = 4096;
  std::array<std::atomic<std::uint64_t>, lag_ring_size> lag_ring{};
  std::atomic<std::uint64_t> lag_ring_next{0};

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
}  // namespace detail

}  // namespace loupe
