// loupe::clock: the steady clock, or the calling thread's virtual time.
#include <loupe/runtime/clock.hpp>

#include <stdexcept>
#include <type_traits>

namespace loupe {

namespace {
thread_local virtual_time* this_thread_time = nullptr;
// Under virtual time a timer not yet due must not wake the reactor on real
// time; Asio caps any wait at five minutes and then asks again.
constexpr clock::duration not_yet = std::chrono::hours(1);
// Farther than this is "never".
constexpr clock::duration never_due = std::chrono::hours(24 * 365 * 100);
}  // namespace

clock::time_point clock::now() noexcept {
  if (const virtual_time* v = this_thread_time) return v->now();
  return time_point(std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

virtual_time::virtual_time()
    : now_(std::chrono::duration_cast<clock::duration>(std::chrono::steady_clock::now().time_since_epoch())) {
  if (this_thread_time) throw std::logic_error("loupe::virtual_time: this thread already has a virtual time");
  this_thread_time = this;
}

virtual_time::~virtual_time() {
  if (this_thread_time == this) this_thread_time = nullptr;
}

virtual_time* virtual_time::current() noexcept { return this_thread_time; }

namespace detail {

// Asio asks for the wait of the earliest timer of each timer queue whenever
// that timer changes or the reactor wakes for timers: that question is where
// the virtual clock learns what is due next.
template <class Clock>
typename Clock::duration wait_traits<Clock>::to_wait_duration(const typename Clock::duration& d) noexcept {
  virtual_time* v = this_thread_time;
  if (!v) return d;
  // A timer set to time_point::max() (a waker, cancelled when its event comes)
  // sits in Asio's heap like any other: at the top, nothing is due.
  std::optional<clock::time_point> due;
  if (d < never_due) due = v->now_ + d;
  if constexpr (std::is_same_v<Clock, housekeeping_clock>) v->housekeeping_due_ = due;
  else v->due_ = due;
  using duration = typename Clock::duration;
  return d <= duration::zero() ? duration::zero() : not_yet;
}

template struct wait_traits<clock>;
template struct wait_traits<housekeeping_clock>;

std::atomic<std::int64_t>& outside_work() noexcept {
  static std::atomic<std::int64_t> n{0};
  return n;
}

}  // namespace detail
}  // namespace loupe
