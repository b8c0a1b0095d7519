// loupe/runtime/timer.hpp — timers on loupe::clock whose waits show where they were awaited.
//
//   co_await loupe::sleep_for(std::chrono::milliseconds(50));   // the console shows this line
//
//   loupe::steady_timer t(co_await boost::asio::this_coro::executor, 5s);
//   co_await t.async_wait();                                     // use_awaitable by default,
//                                                                // carrying this call site
//
// Both run on loupe::clock (clock.hpp): the steady clock in production, the
// test's virtual time under testkit's use_virtual_time(). A plain
// boost::asio::steady_timer keeps real time even there.
//
// The global `boost::asio::use_awaitable` object was built where it is
// defined, so it carries no call site; a token constructed at the call (as the
// default token of `steady_timer` is) does. See detail/asio_tracking.hpp.
#pragma once

#include <loupe/runtime/clock.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <source_location>

namespace loupe {

/// A timer on loupe::clock (any completion token).
using timer = boost::asio::basic_waitable_timer<clock, detail::wait_traits<clock>>;
/// A timer on loupe::clock whose operations complete with use_awaitable by default.
using steady_timer = boost::asio::use_awaitable_t<>::as_default_on_t<timer>;

namespace detail {
/// A timer for the runtime's housekeeping (see housekeeping_clock).
using housekeeping_timer = boost::asio::basic_waitable_timer<housekeeping_clock, wait_traits<housekeeping_clock>>;
}  // namespace detail

/// A use_awaitable token that carries the caller's source location.
inline boost::asio::use_awaitable_t<> here(std::source_location at = std::source_location::current()) {
  return boost::asio::use_awaitable_t<>(at.file_name(), static_cast<int>(at.line()), at.function_name());
}

/// Suspends the calling task for `d` on its loop's timer queue.
inline awaitable<void> sleep_for(clock::duration d, std::source_location at = std::source_location::current()) {
  timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(here(at));
}

}  // namespace loupe
