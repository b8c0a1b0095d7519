// Private: the building blocks of a loop's task registry — its mutex (with
// a hand-over to a waiting loop thread between a reader's slices) and the
// fixed-capacity rings of finished tasks and slow events.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace loupe::detail {

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
    if (size_ < slots_.size()) ++size_;
    else first_ = (first_ + 1) % slots_.size();
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

}  // namespace loupe::detail
