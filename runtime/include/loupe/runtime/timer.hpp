// loupe/runtime/timer.hpp — timers whose waits show where they were awaited.
//
//   co_await loupe::sleep_for(std::chrono::milliseconds(50));   // the console shows this line
//
//   loupe::steady_timer t(co_await boost::asio::this_coro::executor, 5s);
//   co_await t.async_wait();                                     // use_awaitable by default,
//                                                                // carrying this call site
//
// The global `boost::asio::use_awaitable` object was built where it is
// defined, so it carries no call site; a token constructed at the call (as the
// default token of `steady_timer` is) does. See detail/asio_tracking.hpp.
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <source_location>

namespace loupe {

/// A steady timer whose operations complete with use_awaitable by default.
using steady_timer = boost::asio::use_awaitable_t<>::as_default_on_t<boost::asio::steady_timer>;

/// A use_awaitable token that carries the caller's source location.
inline boost::asio::use_awaitable_t<> here(std::source_location at = std::source_location::current()) {
  return boost::asio::use_awaitable_t<>(at.file_name(), static_cast<int>(at.line()), at.function_name());
}

/// Suspends the calling task for `d` on its loop's timer queue.
inline awaitable<void> sleep_for(std::chrono::steady_clock::duration d,
                                 std::source_location at = std::source_location::current()) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(here(at));
}

}  // namespace loupe
