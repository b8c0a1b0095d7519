// Private: the log's writer side — one backend per configuration (spdlog's
// asynchronous logger, its single writer thread and the sinks) — and the
// process-wide state both sides share.
#pragma once

#include <loupe/runtime/log.hpp>

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/sink.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

namespace loupe::log::detail {

class barrier_sink;

// One configuration: the writer thread, its logger and sinks, the format.
struct backend {
  log::format format = format::json;
  std::size_t capacity = 0;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<barrier_sink> barrier;
  std::shared_ptr<spdlog::async_logger> writer;

  // Whatever is queued reaches the sinks (bounded wait).
  void drain(std::chrono::milliseconds timeout) const;
  // Queues a flush of the sinks behind whatever is queued now.
  void post_barrier() const;
  ~backend();
};

std::shared_ptr<backend> make_backend(const options& opts);

// The current backend. A mutex rather than std::atomic<std::shared_ptr>:
// libstdc++ 12 implements that with a lock bit in the control-block pointer,
// which ThreadSanitizer cannot see, and the costs are the same (one lock and
// one reference count per record).
class backend_slot {
 public:
  std::shared_ptr<backend> load() const {
    std::lock_guard lock(m_);
    return b_;
  }
  std::shared_ptr<backend> exchange(std::shared_ptr<backend> fresh) {
    std::lock_guard lock(m_);
    b_.swap(fresh);
    return fresh;
  }

 private:
  mutable std::mutex m_;
  std::shared_ptr<backend> b_ = make_backend({});
};

struct state {
  backend_slot current;
  std::atomic<std::uint64_t> dropped_before{0};  // by backends replaced since
  std::mutex configure_m;
  std::shared_ptr<spdlog::logger> runtime, access, app;
};

state& the_state();

/// The calling side (log_capture.cpp): the sink every logger writes through,
/// and the per-call extras write() hands it.
std::shared_ptr<spdlog::sinks::sink> make_capture_sink();
extern thread_local const fields* call_fields;
extern thread_local const context* call_context;
/// Queues the records this thread has staged.
void hand_over_staged() noexcept;

}  // namespace loupe::log::detail
