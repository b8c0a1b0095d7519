// loupe/runtime/clock.hpp — the one clock every timer and deadline of loupe reads.
//
//   const auto due = loupe::clock::now() + std::chrono::seconds(30);
//   loupe::steady_timer t(ex);                // timer.hpp: a timer on this clock
//   t.expires_at(due);
//
//   loupe::virtual_time vt;                   // on this thread, time now stands still
//   vt.advance(std::chrono::seconds(75));     // and moves only when told to
//
// In production `clock::now()` is the steady clock (one thread-local load
// more). Every timer and deadline of the runtime reads it: sleep_for and
// loupe::steady_timer, the server's header, body, write and keep-alive
// timeouts, the client's connect and request timeouts, graceful-shutdown
// grace, the testkit's deadlines and wait_until.
//
// A `virtual_time` replaces it on the thread that made it (one at a time per
// thread); testkit::test::use_virtual_time() makes one for a test and jumps it
// to the next timer whenever the loop has nothing else to do. Timers of the
// loop on that thread fire when the virtual clock reaches them; their wait
// traits tell the virtual clock which of them is due first (`next_due()`).
// Plain Boost.Asio timers (boost::asio::steady_timer) and Beast's own stream
// and WebSocket timeouts keep running on real time. Durations measured for
// observation — callback times, task ages, latency histograms, loop lag —
// stay on the real clock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace loupe {

class virtual_time;

/// The runtime's clock: the steady clock, or this thread's virtual_time.
struct clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<clock, duration>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

namespace detail {
/// The clock of the runtime's own housekeeping timers (the server's check
/// that a client is still there): a separate timer queue, so
/// a driver of virtual time can tell "only housekeeping is left" (nothing
/// that could end a wait) from "a timer is pending".
struct housekeeping_clock {
  using duration = clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<housekeeping_clock, duration>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(clock::now().time_since_epoch()); }
};

/// Asio's wait traits for both clocks: real waits in production; under
/// virtual time, the due time of the earliest timer is noted on the
/// virtual_time and the real wait is zero (due now) or long (not yet).
template <class Clock>
struct wait_traits {
  static typename Clock::duration to_wait_duration(const typename Clock::duration& d) noexcept;
  static typename Clock::duration to_wait_duration(const typename Clock::time_point& t) noexcept {
    return to_wait_duration(t - Clock::now());
  }
};

/// Work another thread will hand back to a loop (an executor job, a DNS
/// lookup): while any is out, virtual time does not move and a quiet loop is
/// not deadlocked. Process-wide.
std::atomic<std::int64_t>& outside_work() noexcept;
/// Counts one piece of outside work for as long as it lives.
class outside_work_scope {
 public:
  outside_work_scope() noexcept { outside_work().fetch_add(1, std::memory_order_relaxed); }
  ~outside_work_scope() { outside_work().fetch_sub(1, std::memory_order_relaxed); }
  outside_work_scope(const outside_work_scope&) = delete;
  outside_work_scope& operator=(const outside_work_scope&) = delete;
};
}  // namespace detail

/// Virtual time for the calling thread, from construction to destruction.
/// It starts at the steady clock's reading and moves only by advance().
class virtual_time {
 public:
  virtual_time();  // throws std::logic_error if this thread has one already
  ~virtual_time();
  virtual_time(const virtual_time&) = delete;
  virtual_time& operator=(const virtual_time&) = delete;

  clock::time_point now() const noexcept { return now_; }
  /// Moves the clock forward to `t` (never back).
  void advance_to(clock::time_point t) noexcept {
    if (t > now_) now_ = t;
  }
  void advance(clock::duration d) noexcept { advance_to(now_ + d); }

  /// The due time of the earliest timer on loupe::clock that the loop asked
  /// about since forget_due(): never later than the earliest pending timer
  /// (it may be earlier: a cancelled timer is not taken back).
  std::optional<clock::time_point> next_due() const noexcept { return due_; }
  /// The same for the housekeeping timers.
  std::optional<clock::time_point> next_housekeeping_due() const noexcept { return housekeeping_due_; }
  void forget_due() noexcept {
    due_.reset();
    housekeeping_due_.reset();
  }

  /// This thread's virtual time, or nullptr.
  static virtual_time* current() noexcept;

 private:
  template <class Clock>
  friend struct detail::wait_traits;
  clock::time_point now_;
  std::optional<clock::time_point> due_;
  std::optional<clock::time_point> housekeeping_due_;
};

}  // namespace loupe
