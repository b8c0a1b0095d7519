// Private: the clock every deadline and duration inside the runtime reads,
// and the single-writer counter bump.
#pragma once

#include <loupe/runtime/clock.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace loupe::detail {

/// Nanoseconds on loupe::clock: what deadlines are measured on (virtual
/// under a test's virtual time).
inline std::int64_t clock_ns() noexcept { return loupe::clock::now().time_since_epoch().count(); }

/// A reading of now_ns() as a deadline base: itself, or clock_ns() under
/// virtual time (one thread-local test, no second clock read in production).
inline std::int64_t deadline_base(std::int64_t real_now_ns) noexcept {
  return loupe::virtual_time::current() ? clock_ns() : real_now_ns;
}

/// Nanoseconds on the steady clock: durations measured for observation
/// (callback times, latencies), never virtual.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Adds to a counter written only by its loop's thread: a plain load and
/// store (readers on other threads see a recent value), no locked
/// read-modify-write on the hot path.
template <class T, class U>
inline void bump(std::atomic<T>& a, U by) noexcept {
  a.store(a.load(std::memory_order_relaxed) + static_cast<T>(by), std::memory_order_relaxed);
}

}  // namespace loupe::detail
