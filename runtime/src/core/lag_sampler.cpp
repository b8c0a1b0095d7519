// The lag sampler: how late a 25 ms timer fires, a histogram per loop.
#include "core/loop_internals.hpp"

#include <algorithm>

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
      due = std::chrono::steady_clock::now() + l->lag_interval;
      l->lag_timer->expires_at(due);
      l->lag_timer->async_wait(*this);
    }
  };
  const auto due = std::chrono::steady_clock::now() + interval;
  impl_->lag_timer->expires_at(due);
  impl_->lag_timer->async_wait(sampler{impl_.get(), due});
}

}  // namespace loupe
