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

#include <loupe/runtime/task.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <optional>
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
  /// default-constructible.
  template <class F>
  awaitable<std::invoke_result_t<F&>> run(F f) {
    using R = std::invoke_result_t<F&>;
    if (max_queue_ != 0 && queued_.load(std::memory_order_relaxed) >= max_queue_) throw executor_full();
    using signature = typename detail::spawn_signature<R>::type;  // void(exception_ptr[, R])
    co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, signature>(
        [this](auto handler, F fn) { this->template submit<R>(std::move(handler), std::move(fn)); },
        boost::asio::use_awaitable, std::move(f));
  }

  std::size_t threads() const noexcept { return threads_; }
  /// Jobs waiting for a thread.
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  /// Threads running a job now.
  std::size_t busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

 private:
  template <class R, class Handler, class F>
  void submit(Handler handler, F fn) {
    auto back = boost::asio::get_associated_executor(handler);
    queued_.fetch_add(1, std::memory_order_relaxed);
    // A plain job, not a coroutine: the caller's task never runs on a pool thread.
    boost::asio::post(pool_, [this, handler = std::move(handler), fn = std::move(fn), back]() mutable {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      busy_.fetch_add(1, std::memory_order_relaxed);
      std::exception_ptr error;
      std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
      {
        // The job (and what it captured) is destroyed here, before the caller
        // resumes: not later on this thread, racing with the caller.
        F job = std::move(fn);
        try {
          if constexpr (std::is_void_v<R>) job();
          else result.emplace(job());
        } catch (...) {
          error = std::current_exception();
        }
      }
      busy_.fetch_sub(1, std::memory_order_relaxed);
      // The error is moved too: this thread keeps no reference to an
      // exception the caller may be handling by now.
      boost::asio::post(back,
                        [handler = std::move(handler), error = std::move(error), result = std::move(result)]() mutable {
        if constexpr (std::is_void_v<R>) {
          (void)result;
          std::move(handler)(error);
        } else {
          std::move(handler)(error, result ? std::move(*result) : R{});
        }
      });
    });
  }

  boost::asio::thread_pool pool_;
  std::size_t threads_;
  std::size_t max_queue_;
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::size_t> busy_{0};
};

}  // namespace loupe
