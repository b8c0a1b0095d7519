// loupe/runtime/gather.hpp — run awaitables concurrently as tasks, await all.
//
//   auto [user, orders] = co_await loupe::gather(loop, "fanout",
//                                                fetch_user(id), fetch_orders(id));
//
// asyncio.gather for two or more awaitables: each runs as its own task named
// "<name>[i]" on `l`; the result is a tuple in argument order. If any throws,
// the first exception (in argument order) is rethrown once all have ended.
// Cancelling the awaiting task cancels the ones still running. The tasks are
// spawned at the caller's line and the caller's wait reads "gather on tasks"
// there, as the console shows it.
#pragma once

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <exception>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace loupe {

namespace detail {

template <class T>
using gather_slot = std::conditional_t<std::is_void_v<T>, std::optional<std::monostate>, std::optional<T>>;

template <class... Ts>
struct gather_state {
  explicit gather_state(loop& l) : wake(l.context(), boost::asio::steady_timer::time_point::max()) {}
  std::tuple<gather_slot<Ts>...> results;
  std::array<std::exception_ptr, sizeof...(Ts)> errors{};
  std::array<std::uint64_t, sizeof...(Ts)> ids{};
  std::size_t pending = sizeof...(Ts);
  boost::asio::steady_timer wake;
};

template <std::size_t I, class State, class T>
awaitable<void> gather_one(std::shared_ptr<State> st, awaitable<T> body) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      std::get<I>(st->results).emplace();
    } else {
      std::get<I>(st->results).emplace(co_await std::move(body));
    }
  } catch (...) {
    st->errors[I] = std::current_exception();
  }
  if (--st->pending == 0) st->wake.cancel();
}

template <class T>
auto gather_value(gather_slot<T>& s) {
  if constexpr (std::is_void_v<T>) return std::monostate{};
  else return std::move(*s);
}

}  // namespace detail

/// A task name and where it was given: converting a string to it records the
/// caller's file:line (a parameter pack cannot be followed by a defaulted
/// std::source_location, a converting constructor's default argument can).
struct task_name {
  std::string name;
  std::source_location at;
  template <class S>
    requires std::is_convertible_v<S, std::string>
  task_name(S&& n, std::source_location where = std::source_location::current())  // NOLINT: implicit on purpose
      : name(std::forward<S>(n)), at(where) {}
};

template <class... Ts>
awaitable<std::tuple<std::conditional_t<std::is_void_v<Ts>, std::monostate, Ts>...>> gather(loop& l, task_name name,
                                                                                            awaitable<Ts>... bodies) {
  auto st = std::make_shared<detail::gather_state<Ts...>>(l);
  const std::source_location at = name.at;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((st->ids[I] = spawn(l, name.name + "[" + std::to_string(I) + "]", detail::gather_one<I>(st, std::move(bodies)), at)),
     ...);
      }(std::index_sequence_for<Ts...>{});
  // Woken by the last child, or cancelled: the error code says nothing more.
  // The wait reads "gather on tasks" at the caller's co_await.
  auto token = boost::asio::as_tuple(here(at));
  auto wait = [&st, at](auto handler) {
    st->wake.async_wait(std::move(handler));
    detail::note_wait("gather", "tasks", at);
  };
  (void)co_await boost::asio::async_initiate<decltype(token), void(boost::system::error_code)>(wait, token);
  if (st->pending != 0) {
    // We were cancelled: pass it on, then report it.
    for (auto id : st->ids) l.cancel(id, cancel_source::parent);
    throw boost::system::system_error(boost::asio::error::operation_aborted);
  }
  for (auto& e : st->errors)
    if (e) std::rethrow_exception(e);
  co_return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::make_tuple(detail::gather_value<Ts>(std::get<I>(st->results))...);
  }(std::index_sequence_for<Ts...>{});
}

}  // namespace loupe
