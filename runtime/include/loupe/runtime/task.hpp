// loupe/runtime/task.hpp — named tasks: the one way loupe starts a coroutine.
//
// Every coroutine the runtime starts and every coroutine a user starts goes
// through `loupe::spawn` (one task per connection), or runs as an inline task
// on its caller's coroutine (`detail::inline_task`, one per request: a task
// without a co_spawn of its own). Either way it gets a name, a process-unique
// id and a record in its loop's task registry: state,
// what it waits on (operation, I/O object, the `co_await`'s file:line), resume
// count, busy time, the request it serves. The console, the test kit and the
// metrics read that registry; `loop::cancel(id)` cancels a task through Asio's
// cancellation slot.
//
//   loupe::spawn(loop, "refresh-cache", refresh_cache(app));          // detached;
//                                                      // an escaping exception is logged
//   int n = co_await loupe::spawn(loop, "count", count_rows(),
//                                 boost::asio::use_awaitable);         // awaited by the caller
//
// A task's cancellation slot is its own (loop::cancel); a cancellation of
// the coroutine awaiting it is passed on to it.
//
// Thread safety: call `spawn` on the loop's own thread, or on any thread
// before the loop runs.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/consign.hpp>

#include <chrono>
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

enum class task_state : std::uint8_t {
  scheduled,  ///< ready to run: its next callback is queued
  running,    ///< one of its callbacks is running now
  suspended,  ///< waiting for an operation to complete
  done,
};
const char* to_string(task_state s) noexcept;

/// Who asked for a cancellation.
enum class cancel_source : std::uint8_t { none, console, shutdown, parent, api };
const char* to_string(cancel_source s) noexcept;

/// What a task waits on: the operation it started last.
struct wait_info {
  const char* operation = nullptr;  ///< "async_wait", "async_receive", "post", ...
  const char* object = nullptr;     ///< "deadline_timer", "socket", "io_context", ...
  const char* file = nullptr;       ///< the `co_await`'s source file, when known
  int line = 0;
};

/// The request a task serves.
struct request_info {
  std::string method;
  std::string route;  ///< the route template, e.g. "/users/{id}"
  std::string target;
  std::string request_id;
};

/// A snapshot of one task (copyable; safe to keep).
struct task_info {
  std::uint64_t id = 0;          ///< unique in the process, never reused
  std::string name;
  std::string loop;              ///< the loop's name
  std::uint64_t parent_id = 0;   ///< the task that spawned it; 0 for none
  std::source_location spawn_site;
  task_state state = task_state::scheduled;
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point suspended_since;  ///< when state is suspended
  wait_info wait;
  std::uint64_t resume_count = 0;
  std::chrono::nanoseconds busy{0};  ///< time its callbacks ran
  request_info request;              ///< empty when it serves none
};

/// How a task ended.
enum class task_outcome : std::uint8_t { ok, error, cancelled, abandoned };
const char* to_string(task_outcome o) noexcept;

/// A finished task, kept in its loop's ring of recent endings.
struct finished_task {
  task_info info;
  task_outcome outcome = task_outcome::ok;
  std::string error;                              ///< the exception's message
  cancel_source cancelled_by = cancel_source::none;
  std::chrono::steady_clock::time_point finished;
};

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

/// The current task is about to await a task spawned at `at`: its wait.
void note_awaiting_task(std::source_location at) noexcept;

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

/// Starts `body` as a task named `name` on `l` and completes `token` with
/// (std::exception_ptr, T) like `boost::asio::co_spawn`. The task is created
/// when the operation is initiated (for `use_awaitable`, when it is awaited);
/// cancelling the awaiting coroutine cancels the task ("cancelled by parent").
template <class T, class CompletionToken>
auto spawn(loop& l, std::string name, awaitable<T> body, CompletionToken&& token,
           std::source_location site = std::source_location::current()) {
  auto initiation = [&l](auto handler, std::string task_name, awaitable<T> task_body, std::source_location at) {
    detail::note_awaiting_task(at);
    detail::task_record* rec = detail::create_task(l, std::move(task_name), at, false);
    auto caller_slot = boost::asio::get_associated_cancellation_slot(handler);
    if (caller_slot.is_connected())
      caller_slot.template emplace<detail::cancel_forwarder>(detail::cancel_forwarder{detail::task_ref(rec), rec});
    detail::task_scope scope(rec);
    boost::asio::co_spawn(
        detail::loop_context(l), detail::task_main<T>(rec, std::move(task_body)),
        boost::asio::bind_cancellation_slot(detail::task_slot(rec),
                                            boost::asio::consign(std::move(handler), detail::task_ref(rec))));
  };
  return boost::asio::async_initiate<CompletionToken, typename detail::spawn_signature<T>::type>(
      initiation, token, std::move(name), std::move(body), site);
}

/// Starts `body` as a detached task named `name` on `l`. An exception that
/// escapes it is logged as an ERROR record naming the task. Returns its id.
template <class T>
std::uint64_t spawn(loop& l, std::string name, awaitable<T> body,
                    std::source_location site = std::source_location::current()) {
  detail::task_record* rec = detail::create_task(l, name, site, true);
  const std::uint64_t id = detail::task_id(rec);
  auto on_done = [id, name = std::move(name), ref = detail::task_ref(rec)](std::exception_ptr e, auto&&...) {
    if (e) detail::log_task_exception(id, name, e);
  };
  detail::task_scope scope(rec);
  boost::asio::co_spawn(detail::loop_context(l), detail::task_main<T>(rec, std::move(body)),
                        boost::asio::bind_cancellation_slot(detail::task_slot(rec), std::move(on_done)));
  return id;
}

}  // namespace loupe
