// Private: the clock every deadline and duration inside the runtime reads,
// and the single-writer counter bump.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace loupe::detail {

/// Nanoseconds on the steady clock.
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
