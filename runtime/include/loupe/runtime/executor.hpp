// loupe/runtime/executor.hpp — run blocking or CPU-heavy work off the loop.
//
// asyncio's `loop.run_in_executor`: the function runs on one of the pool's
// threads while the calling task is suspended; its result (or exception) is
// delivered back on the caller's loop.
//
//   loupe::executor pool(4);                                   // 4 threads
//   auto job = [data] { return sha256(data); };
//   std::string digest = co_await pool.run(std::move(job));
//
// Name a job that captures anything with a destructor (as above) rather than
// writing the lambda inside the co_await expression: GCC 12 destroys such a
// temporary once too often when the expression suspends (a captured
// shared_ptr loses a reference per call; tests/runtime/executor_test.cpp).
//
// The pool is bounded: `threads` workers, and at most `max_queue` jobs waiting
// (0: no limit); past it `run` throws executor_full. `queued()` and `busy()`
// are for metrics and the console. Thread-safe. Destroying the pool waits for
// running jobs; jobs still queued are not run, and their callers see
// operation_aborted.
#pragma once

#include <loupe/runtime/clock.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <source_location>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace loupe {

/// Thrown by executor::run when the queue is full.
class executor_full : public std::runtime_error {
 public:
  executor_full() : std::runtime_error("executor queue is full") {}
};

class executor {
 public:
  explicit executor(std::size_t threads, std::size_t max_queue = 0)
      : pool_(threads), threads_(threads), max_queue_(max_queue) {}
  ~executor() { pool_.join(); }
  executor(const executor&) = delete;
  executor& operator=(const executor&) = delete;

  /// Runs `f()` on a pool thread and completes with its result on the
  /// calling coroutine's executor. `f`'s result type must be void or
  /// default-constructible. While it runs the caller's wait reads
  /// "run on executor" at its `co_await` (`at`). The wait is not cancellable:
  /// `f` may use what the caller's frame holds, so the caller goes on only
  /// once `f` has returned.
  template <class F>
  awaitable<std::invoke_result_t<F&>> run(F f, std::source_location at = std::source_location::current()) {
    using R = std::invoke_result_t<F&>;
    if (max_queue_ != 0 && queued_.load(std::memory_order_relaxed) >= max_queue_) throw executor_full();
    auto st = std::make_shared<job_state<R>>(co_await boost::asio::this_coro::executor);
    submit(st, std::move(f));
    // The caller waits on a timer of its own loop that the job's end cancels:
    // a wait its task owns, so the task resumes as itself (tracked, with its
    // request), not inside an anonymous callback posted from a pool thread.
    auto token = boost::asio::as_tuple(boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(), here(at)));
    auto wait = [st, at](auto handler) {
      st->wake.async_wait(std::move(handler));
      detail::note_wait("run", "executor", at);
    };
    (void)co_await boost::asio::async_initiate<decltype(token), void(boost::system::error_code)>(wait, token);
    if (st->error) std::rethrow_exception(st->error);
    if constexpr (!std::is_void_v<R>) co_return std::move(*st->result);
  }

  std::size_t threads() const noexcept { return threads_; }
  /// Jobs waiting for a thread.
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  /// Threads running a job now.
  std::size_t busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

 private:
  template <class R>
  struct job_state {
    explicit job_state(const boost::asio::any_io_executor& ex)
        : wake(ex, boost::asio::steady_timer::time_point::max()), back(ex) {}
    boost::asio::steady_timer wake;  // touched on the loop's thread only
    boost::asio::any_io_executor back;
    detail::outside_work_scope away;  // the loop waits for this job: not idle, not deadlocked
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  };

  // Wakes the caller once, on its loop: when the job has run, or when the job
  // is destroyed unrun (the pool destroyed with it queued: operation_aborted).
  template <class State>
  struct waker {
    std::shared_ptr<State> st;
    explicit waker(std::shared_ptr<State> s) : st(std::move(s)) {}
    waker(waker&& o) noexcept = default;
    waker(const waker&) = delete;
    ~waker() {
      if (!st) return;
      if (!ran) st->error = std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
      auto back = st->back;
      boost::asio::post(back, [s = std::move(st)] { s->wake.cancel(); });
    }
    bool ran = false;
  };

  template <class State, class F>
  void submit(std::shared_ptr<State> st, F fn) {
    queued_.fetch_add(1, std::memory_order_relaxed);
    // A plain job, not a coroutine: the caller's task never runs on a pool thread.
    boost::asio::post(pool_, [this, w = waker<State>(std::move(st)), fn = std::move(fn)]() mutable {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      busy_.fetch_add(1, std::memory_order_relaxed);
      {
        // The job (and what it captured) is destroyed here, before the caller
        // resumes: not later on this thread, racing with the caller.
        F job = std::move(fn);
        try {
          if constexpr (std::is_void_v<decltype(job())>) job();
          else w.st->result.emplace(job());
        } catch (...) {
          w.st->error = std::current_exception();
        }
      }
      busy_.fetch_sub(1, std::memory_order_relaxed);
      w.ran = true;
      // This thread keeps no reference to the state (nor to an exception the
      // caller may be handling by then): the waker hands it to the loop.
      waker<State> done = std::move(w);
    });
  }

  boost::asio::thread_pool pool_;
  std::size_t threads_;
  std::size_t max_queue_;
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::size_t> busy_{0};
};

}  // namespace loupe
