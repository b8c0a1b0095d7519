// loupe/testkit/run.hpp — run a coroutine on a loop, under a deadline.
//
//   loupe::loop loop;
//   auto status = loupe::testkit::run(loop, [&]() -> loupe::awaitable<int> {
//     auto res = co_await client.get("/");
//     co_return res.result_int();
//   });
//
// The loop runs on the calling thread (no second thread for the app). When
// the deadline passes first, `deadline_exceeded` is thrown; its message lists
// the loop's live tasks and what each waits on, so a hung test names what it
// was waiting for instead of hanging. The test's task is cancelled first and given a second to unwind.
//
// Under virtual time (a loupe::virtual_time on this thread; what
// test::use_virtual_time() makes):
//
//   loupe::virtual_time vt;
//   loupe::testkit::run(loop, [&]() -> loupe::awaitable<void> {
//     co_await loupe::sleep_for(std::chrono::hours(1));   // returns at once, in real time
//   });
//
// the clock stands still while a handler is ready, I/O is in flight or
// another thread works for the loop (an executor job, a DNS lookup), and
// jumps to the next timer when none is. On the in-memory network (see
// network.hpp) "no I/O in flight" is exact: a write is in its peer's queue
// when it returns. Over loopback TCP the kernel may still be carrying bytes
// when the loop looks idle, so a moment of real quiet (50 µs) is waited for
// before each jump: enough on an idle machine, not a proof on a loaded one —
// prefer the in-memory network for tests on virtual time. The deadline is then on virtual time. When the loop
// is idle with no timer pending, no task can ever be woken: `deadlock_detected`
// is thrown at once, its message the wait graph (each task, what it awaits,
// where, and any cycle of tasks awaiting each other). Virtual time needs every
// peer in the loop (testkit clients, client_session, raw_client): a peer in
// another process or thread (curl, a worker loop) talks in real time. Its
// timers must be loupe's (sleep_for, loupe::steady_timer): a plain
// boost::asio::steady_timer runs on real time and is not seen, so a body
// waiting only on one is reported as a deadlock.
#pragma once

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/asio/co_spawn.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace loupe::testkit {

/// The default deadline of a test body.
inline constexpr std::chrono::seconds default_deadline{30};
/// ... and of a test body on virtual time (test::use_virtual_time()), which
/// is also ended after default_deadline of real time.
inline constexpr std::chrono::hours virtual_default_deadline{1};

/// A deadline that may change while the body runs (test::set_deadline()).
/// The backstop thread reads it too, hence the atomic. Made from any
/// duration: `run(loop, body, std::chrono::seconds(5))`.
class deadline {
 public:
  template <class Rep, class Period>
  deadline(std::chrono::duration<Rep, Period> d)  // NOLINT(google-explicit-constructor)
      : ns_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(d).count()) {}
  void set(std::chrono::steady_clock::duration d) { ns_.store(d.count(), std::memory_order_relaxed); }
  std::chrono::steady_clock::duration get() const {
    return std::chrono::steady_clock::duration(ns_.load(std::memory_order_relaxed));
  }

 private:
  std::atomic<std::chrono::steady_clock::duration::rep> ns_;
};

class deadline_exceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown under virtual time when the loop can never run again: nothing is
/// ready, no I/O is in flight, no timer is pending. Its message is the wait
/// graph (describe_wait_graph).
class deadlock_detected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One line per live task of `l`: id, name, state, age, how long it has been
/// suspended and on what (operation, object, the co_await's file:line), the
/// request it serves, its spawn site and parent.
std::string describe_live_tasks(const loop& l);
/// describe_live_tasks(), then each cycle of tasks awaiting each other, with
/// the file:line of every await in it.
std::string describe_wait_graph(const loop& l);

namespace detail {
std::string ms(std::chrono::nanoseconds d);
/// " request_id=ID" after a request's to_string(), or nothing.
std::string request_id_text(const request_info& r);

/// Runs `l` until `done` is set or the deadline passes; then cancels the
/// live tasks named "test" and throws deadline_exceeded. `limit` is read
/// again as the loop runs (a test may change its own deadline). Under this
/// thread's virtual_time the deadline is virtual, the clock jumps to the next
/// timer whenever the loop is idle, and an idle loop with no timer pending
/// throws deadlock_detected at once.
void run_until(loop& l, const bool& done, const deadline& limit);
}  // namespace detail

/// Runs `make()` as a task named "test" on `l` until it completes and returns
/// its result (rethrowing its exception), or throws deadline_exceeded.
template <class F>
auto run(loop& l, F&& make, const deadline& limit = default_deadline) {
  using aw = std::invoke_result_t<F&>;
  using T = typename aw::value_type;
  // Shared with the completion handler, which may outlive this call when the
  // deadline passes.
  struct state {
    bool done = false;
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> result{};
  };
  auto st = std::make_shared<state>();
  auto on_done = [st](std::exception_ptr e, auto... v) {
    st->error = e;
    if constexpr (!std::is_void_v<T>) {
      if (!e) st->result.emplace(std::move(v)...);
    }
    st->done = true;
  };
  loupe::spawn(l, "test", make(), on_done);
  detail::run_until(l, st->done, limit);
  if (st->error) std::rethrow_exception(st->error);
  if constexpr (!std::is_void_v<T>) return std::move(*st->result);
}

}  // namespace loupe::testkit
