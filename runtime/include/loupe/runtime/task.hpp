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
// the coroutine awaiting it is passed on to it; `is_cancellation(e)` tells
// that what an await threw is such a cancellation. `to_string(wait_info)` and
// `to_string(request_info)` are how a wait and a request read everywhere:
// "async_wait on deadline_timer at app.cpp:12", "GET /users/7 (route /users/{id})".
//
// A task awaiting another names it (`task_info::awaiting`); loupe's own
// awaitables (client calls, WebSocket operations, executor::run, gather)
// record the caller's `co_await` as the wait. `set_cancel_policy` makes a
// task refuse a cancel, or do something else instead:
//
//   loupe::set_cancel_policy({"it owns the port; stop the server instead", {}});
//
// Thread safety: call `spawn` on the loop's own thread, or on any thread
// before the loop runs.
#pragma once

#include <loupe/runtime/detail/task.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/consign.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

namespace loupe {

enum class task_state : std::uint8_t {
  scheduled,  ///< ready to run: its next callback is queued
  running,    ///< one of its callbacks is running now
  suspended,  ///< waiting for an operation to complete
  done,
};
const char* to_string(task_state s) noexcept;

/// Who asked for a cancellation.
enum class cancel_source : std::uint8_t {
  none,
  console,
  shutdown,
  parent,
  api,
  client,  ///< the client closed the connection (server_options::cancel_on_client_gone)
};
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
  /// The client closed the connection while the request ran (to_string
  /// says "client gone"; the access record's status is 499).
  bool client_gone = false;
  /// This task outlived the request it was started for: spawned (detached)
  /// while serving it, it still runs after the request's own task ended
  /// (to_string says "request ended"). Its records keep the request id.
  bool ended = false;
};

/// True for what an await throws (or an operation completes with) when its
/// task is cancelled: Asio's operation_aborted. The one test for it in loupe.
bool is_cancellation(const std::exception_ptr& e) noexcept;
bool is_cancellation(const boost::system::error_code& ec) noexcept;

/// How a wait reads everywhere (console, logs, test failures):
/// "async_wait on deadline_timer at app.cpp:12"; empty when nothing is known.
std::string to_string(const wait_info& w);
/// How a request reads everywhere: "GET /users/7 (route /users/{id})", with
/// ", client gone" once its client has closed the connection; empty when the
/// task serves none. The request id is a field of its own.
std::string to_string(const request_info& r);

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
  std::uint64_t awaiting = 0;  ///< when it awaits another task ("await on task"): that task's id
  std::uint64_t resume_count = 0;
  std::chrono::nanoseconds busy{0};  ///< time its callbacks ran
  request_info request;              ///< empty when it serves none
  std::string what;                  ///< what it does, when its name says too little:
                                     ///< "GET http://upstream/users" for a client request
  /// Set by a cancel_policy: why a cancel is refused, or what it does instead.
  std::string cancel_note;
  bool cancel_refused = false;
};

/// What cancelling a task means, for a task whose plain cancellation would
/// break what it runs: the runtime's accept loops refuse ("stop the server
/// instead"), `app.main` shuts the application down gracefully, a
/// connection closes after its response. With `instead` empty a cancel is
/// refused; otherwise `instead` runs on the task's loop in its place.
/// `note` is what the console says.
struct cancel_policy {
  std::string note;
  std::function<void()> instead;
};
/// Gives the current task a cancel policy (call on its loop's thread).
void set_cancel_policy(cancel_policy p);

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

/// The task running on this thread as a log record names it: its id (0
/// outside any task), name and request id. The views stay valid on this
/// thread until the task next gives the thread up.
struct task_context {
  std::uint64_t id = 0;
  std::string_view name;
  std::string_view request_id;
};
task_context current_task_context() noexcept;

/// Starts `body` as a task named `name` on `l` and completes `token` with
/// (std::exception_ptr, T) like `boost::asio::co_spawn`. The task is created
/// when the operation is initiated (for `use_awaitable`, when it is awaited);
/// cancelling the awaiting coroutine cancels the task ("cancelled by parent").
template <class T, class CompletionToken>
auto spawn(loop& l, std::string name, awaitable<T> body, CompletionToken&& token,
           std::source_location site = std::source_location::current()) {
  auto initiation = [&l](auto handler, std::string task_name, awaitable<T> task_body, std::source_location at) {
    detail::task_record* rec = detail::create_task(l, std::move(task_name), at, false);
    detail::note_awaiting_task(at, rec);
    auto caller_slot = boost::asio::get_associated_cancellation_slot(handler);
    if (caller_slot.is_connected())
      caller_slot.template emplace<detail::cancel_forwarder>(detail::cancel_forwarder{detail::task_ref(rec), rec});
    detail::task_scope scope(rec);
    boost::asio::co_spawn(detail::loop_context(l), detail::task_main<T>(rec, std::move(task_body)),
                          boost::asio::bind_cancellation_slot(detail::task_slot(rec),
                                                              boost::asio::consign(std::move(handler),
                                                                                   detail::task_ref(rec))));
  };
  return boost::asio::async_initiate<CompletionToken, typename detail::spawn_signature<T>::type>(initiation, token,
                                                                                                 std::move(name),
                                                                                                 std::move(body), site);
}

/// Waits until the task `id` of `l` has ended (at once if it has, or never
/// was). While it waits, the caller's wait reads "await on task" naming that
/// task (task_info::awaiting), as for a task it spawned and awaits: two tasks
/// joining each other show as a cycle in the testkit's wait graph. Call it on
/// `l`'s thread.
///
///   const auto id = loupe::spawn(loop, "refresh", refresh(app));
///   co_await loupe::join(loop, id);
awaitable<void> join(loop& l, std::uint64_t id, std::source_location at = std::source_location::current());

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
