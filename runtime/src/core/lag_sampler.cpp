// The lag sampler: how late a 25 ms timer fires, a histogram per loop.
#include "core/loop_internals.hpp"

#include <algorithm>
#include <vector>

namespace loupe {

void loop::enable_lag_sampling(std::chrono::milliseconds interval) {
  impl_->lag_interval = interval;
  impl_->lag_timer = std::make_unique<boost::asio::steady_timer>(impl_->ctx);
  // A plain callback, not a task: it belongs to the loop, not to the application.
  struct sampler {
    loop::impl* l;
    std::chrono::steady_clock::time_point due;
    void operator()(const boost::system::error_code& ec) {
      if (ec || !l->lag_timer) return;
      const auto late = std::chrono::steady_clock::now() - due;
      const std::int64_t ns = std::max<std::int64_t>(0,
                                                     std::chrono::duration_cast<std::chrono::nanoseconds>(late).count());
      std::size_t b = 0;
      while (b < loop_stats::lag_bucket_bounds.size() &&
             ns > std::chrono::duration_cast<std::chrono::nanoseconds>(loop_stats::lag_bucket_bounds[b]).count())
        ++b;
      detail::bump(l->lag_buckets[b], 1);
      detail::bump(l->lag_count, 1);
      detail::bump(l->lag_sum_ns, ns);
      if (ns > l->lag_max_ns.load(std::memory_order_relaxed)) l->lag_max_ns.store(ns, std::memory_order_relaxed);
      const auto at_ms = static_cast<std::uint32_t>(detail::now_ns() / 1'000'000);
      const auto lag_us = static_cast<std::uint32_t>(std::min<std::int64_t>(ns / 1000, 0xffffffff));
      const std::uint64_t i = l->lag_ring_next.load(std::memory_order_relaxed);
      l->lag_ring[i % loop::impl::lag_ring_size].store((std::uint64_t{at_ms} << 32) | lag_us, std::memory_order_relaxed);
      l->lag_ring_next.store(i + 1, std::memory_order_release);
      due = std::chrono::steady_clock::now() + l->lag_interval;
      l->lag_timer->expires_at(due);
      l->lag_timer->async_wait(*this);
    }
  };
  const auto due = std::chrono::steady_clock::now() + interval;
  impl_->lag_timer->expires_at(due);
  impl_->lag_timer->async_wait(sampler{impl_.get(), due});
}

lag_window loop::lag_over(std::chrono::nanoseconds window) const {
  const auto& l = *impl_;
  const std::int64_t now = detail::now_ns();
  const auto now_ms = static_cast<std::uint32_t>(now / 1'000'000);
  const auto window_ms = static_cast<std::uint32_t>(std::min<std::int64_t>(window.count() / 1'000'000, 0x7fffffff));
  std::vector<std::uint32_t> lags;
  const std::uint64_t end = l.lag_ring_next.load(std::memory_order_acquire);
  const std::uint64_t begin = end > impl::lag_ring_size ? end - impl::lag_ring_size : 0;
  lags.reserve(static_cast<std::size_t>(end - begin) + 1);
  for (std::uint64_t i = end; i-- > begin;) {
    const std::uint64_t v = l.lag_ring[i % impl::lag_ring_size].load(std::memory_order_relaxed);
    const auto at = static_cast<std::uint32_t>(v >> 32);
    if (static_cast<std::uint32_t>(now_ms - at) > window_ms) break;  // older (ms wrap-around safe)
    lags.push_back(static_cast<std::uint32_t>(v & 0xffffffff));
  }
  lag_window w;
  // A callback running past the sampling interval: a timer due now waits at least this long.
  const std::int64_t start = l.callback_start_ns.load(std::memory_order_acquire);
  if (start != 0 && l.lag_interval.count() > 0 &&
      now - start > std::chrono::duration_cast<std::chrono::nanoseconds>(l.lag_interval).count()) {
    lags.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>((now - start) / 1000, 0xffffffff)));
    w.blocked_now = true;
  }
  w.samples = lags.size();
  if (lags.empty()) return w;
  std::sort(lags.begin(), lags.end());
  const auto at = [&](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(lags.size() - 1) + 0.5);
    return std::chrono::nanoseconds(std::int64_t{lags[k]} * 1000);
  };
  w.p50 = at(0.50);
  w.p99 = at(0.99);
  w.max = std::chrono::nanoseconds(std::int64_t{lags.back()} * 1000);
  return w;
}

}  // namespace loupe
