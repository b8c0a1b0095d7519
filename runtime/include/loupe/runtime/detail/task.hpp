// loupe/runtime/detail/task.hpp — the machinery behind loupe::spawn and the
// server's inline request tasks. Not an API: task.hpp is; this is what its
// templates need to see (creating and ending a task record, the current task,
// handing cancellation on), plus `inline_task` for the runtime's own use.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

namespace loupe {

/// The coroutine type of loupe: handlers, middlewares and hooks return it.
template <class T = void>
using awaitable = boost::asio::awaitable<T>;

class loop;

namespace detail {

struct task_record;

/// `detached`: nobody awaits the task, so its end resumes no parent.
task_record* create_task(loop& l, std::string name, std::source_location site, bool detached);
/// Makes `r` the running task (at the start of its body) or hands the thread
/// back to whoever resumes next (at its end).
void enter_task(task_record* r) noexcept;
void leave_task(task_record* r) noexcept;

/// A counted reference to a task record. Carried by the completion handler so
/// that the record (and the cancellation slot bound into Asio's co_spawn)
/// outlives the coroutine thread that uses it.
class task_ref {
 public:
  explicit task_ref(task_record* r) noexcept;
  task_ref(const task_ref& o) noexcept;
  task_ref(task_ref&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  task_ref& operator=(const task_ref&) = delete;
  ~task_ref();

 private:
  task_record* r_;
};
/// Marks the task finished (outcome from `error`) and drops the task's own reference.
void finish_task(task_record* r, std::exception_ptr error, bool abandoned = false) noexcept;
boost::asio::cancellation_slot task_slot(task_record* r) noexcept;
std::uint64_t task_id(const task_record* r) noexcept;
void log_task_exception(std::uint64_t id, const std::string& name, std::exception_ptr e) noexcept;
boost::asio::io_context& loop_context(loop& l) noexcept;

/// The task whose callback runs on this thread, or nullptr.
task_record* current_task() noexcept;
std::uint64_t current_task_id() noexcept;

/// The current task awaits `child`, spawned at `at` (the caller's co_await):
/// its wait.
void note_awaiting_task(std::source_location at, const task_record* child) noexcept;
/// The current task waits on something no operation of its loop stands for
/// (a job on another thread): `operation` on `object` (string literals), at
/// the caller's `at`. Set after the operation's own stamp, so it wins.
void note_wait(const char* operation, const char* object, std::source_location at) noexcept;
/// What the current task does, beyond its name (task_info::what).
void set_task_what(std::string what);

/// Makes `r` the current task while in scope (so handlers created by the
/// spawn itself belong to the new task).
class task_scope {
 public:
  explicit task_scope(task_record* r) noexcept;
  ~task_scope();
  task_scope(const task_scope&) = delete;
  task_scope& operator=(const task_scope&) = delete;

 private:
  task_record* saved_;
};

template <class T>
awaitable<T> task_main(task_record* rec, awaitable<T> body) {
  // Ends the record even when the frame is destroyed without finishing
  // (its loop destroyed with the task suspended).
  struct guard {
    task_record* r;
    bool finished = false;
    ~guard() {
      if (!finished) finish_task(r, nullptr, true);
    }
  } g{rec};
  enter_task(rec);
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(body);
    } catch (...) {
      error = std::current_exception();
    }
    g.finished = true;
    leave_task(rec);
    finish_task(rec, error);
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<T> value;
    try {
      value.emplace(co_await std::move(body));
    } catch (...) {
      error = std::current_exception();
    }
    g.finished = true;
    leave_task(rec);
    finish_task(rec, error);
    if (error) std::rethrow_exception(error);
    co_return std::move(*value);
  }
}

}  // namespace detail

namespace detail {

/// Passes a cancellation from whoever awaits a task (its slot) on to the task.
void forward_cancellation(task_record* r, boost::asio::cancellation_type_t type) noexcept;

struct cancel_forwarder {
  task_ref ref;
  task_record* r;
  void operator()(boost::asio::cancellation_type_t type) const noexcept { forward_cancellation(r, type); }
};

template <class T>
struct spawn_signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct spawn_signature<void> {
  using type = void(std::exception_ptr);
};

}  // namespace detail

namespace detail {

/// A task that runs on the calling coroutine itself, without a co_spawn: it
/// has its own record (name, id, state, wait, request, outcome), so the
/// console, the test kit and the metrics see it like any task, and
/// `loop::cancel(id)` cancels it alone. The server runs each request this way
/// (a co_spawn per request cost about a fifth of the request path).
///
///   detail::inline_task t(loop, "http.request");
///   std::exception_ptr error;
///   try { res = co_await handle(req); } catch (...) { error = std::current_exception(); }
///   if (t.end(error)) co_await boost::asio::this_coro::reset_cancellation_state();
///
/// A cancellation aimed at the inline task is delivered through the caller's
/// cancellation slot (the only one its operations see); `end` returns true
/// when the caller must then reset its cancellation state to go on. A
/// cancellation of the caller ends the inline task too ("cancelled by
/// parent") and stays with the caller. Call on the loop's thread, inside a
/// task, and end it in the same coroutine.
class inline_task {
 public:
  inline_task(loop& l, std::string name, std::source_location site = std::source_location::current());
  ~inline_task();
  inline_task(const inline_task&) = delete;
  inline_task& operator=(const inline_task&) = delete;

  std::uint64_t id() const noexcept;
  /// Ends the task with `error` (null: it succeeded) and hands the thread
  /// back to the caller's task. True when the task itself was cancelled.
  bool end(std::exception_ptr error) noexcept;

 private:
  task_record* rec_;
  bool ended_ = false;
};

}  // namespace detail

}  // namespace loupe
