// loupe/runtime/task.hpp — named tasks: the one way loupe starts a coroutine.
//
// Every coroutine the runtime starts (one per connection, one per request) and
// every coroutine a user starts goes through `loupe::spawn`, which gives it a
// name, a process-unique id and a record in its loop's task registry. The
// registry is what the console, the test kit and the metrics read.
//
//   loupe::spawn(loop, "refresh-cache", refresh_cache(app));          // detached;
//                                                      // an escaping exception is logged
//   int n = co_await loupe::spawn(loop, "count", count_rows(),
//                                 boost::asio::use_awaitable);         // awaited by the caller
//
// Thread safety: call `spawn` on the loop's own thread, or on any thread
// before the loop runs.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

namespace loupe {

/// The coroutine type of loupe: handlers, middlewares and hooks return it.
template <class T = void>
using awaitable = boost::asio::awaitable<T>;

class loop;

/// What the registry knows of one task. Copyable snapshot data.
struct task_info {
  std::uint64_t id = 0;          ///< unique in the process, never reused
  std::string name;              ///< given to spawn
  std::source_location spawn_site;
  std::chrono::steady_clock::time_point created;
};

namespace detail {

/// A live task's record. It lives in the frame of the task's outer coroutine
/// and is linked into its loop's registry for exactly the task's lifetime.
struct task_record {
  task_info info;
  task_record* prev = nullptr;
  task_record* next = nullptr;
};

std::uint64_t next_task_id() noexcept;
void register_task(loop& l, task_record& r) noexcept;
void unregister_task(loop& l, task_record& r) noexcept;
void log_task_exception(std::uint64_t id, const std::string& name, std::exception_ptr e) noexcept;

template <class T>
awaitable<T> task_main(loop& l, task_info info, awaitable<T> body) {
  task_record rec{std::move(info)};
  register_task(l, rec);
  struct unlink {
    loop& l;
    task_record& r;
    ~unlink() { unregister_task(l, r); }
  } guard{l, rec};
  if constexpr (std::is_void_v<T>) {
    co_await std::move(body);
  } else {
    co_return co_await std::move(body);
  }
}

boost::asio::io_context& loop_context(loop& l) noexcept;

}  // namespace detail

/// Starts `body` as a task named `name` on `l` and completes `token` with
/// (std::exception_ptr, T) like `boost::asio::co_spawn`.
template <class T, class CompletionToken>
auto spawn(loop& l, std::string name, awaitable<T> body, CompletionToken&& token,
           std::source_location site = std::source_location::current()) {
  task_info info{detail::next_task_id(), std::move(name), site,
                 std::chrono::steady_clock::now()};
  return boost::asio::co_spawn(detail::loop_context(l),
                               detail::task_main<T>(l, std::move(info), std::move(body)),
                               std::forward<CompletionToken>(token));
}

/// Starts `body` as a detached task named `name` on `l`. An exception that
/// escapes it is logged as an ERROR record naming the task. Returns its id.
template <class T>
std::uint64_t spawn(loop& l, std::string name, awaitable<T> body,
                    std::source_location site = std::source_location::current()) {
  const std::uint64_t id = detail::next_task_id();
  task_info info{id, name, site, std::chrono::steady_clock::now()};
  auto on_done = [id, name = std::move(name)](std::exception_ptr e, auto&&...) {
    if (e) detail::log_task_exception(id, name, e);
  };
  boost::asio::co_spawn(detail::loop_context(l),
                        detail::task_main<T>(l, std::move(info), std::move(body)),
                        std::move(on_done));
  return id;
}

}  // namespace loupe
