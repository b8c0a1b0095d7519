// loupe/runtime/loop.hpp — the event loop: one io_context driven by one thread.
//
//   loupe::loop loop;                      // named "main"
//   loupe::spawn(loop, "hello", say_hello());
//   loop.run();                            // until stop() or no work is left
//
// A loop owns its task registry (see task.hpp). `tasks()` and
// `live_task_count()` may be called from any thread; everything else belongs
// to the thread that calls `run()`.
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace loupe {

class loop {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  explicit loop(std::string name = "main");
  ~loop();
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  const std::string& name() const noexcept;
  boost::asio::io_context& context() noexcept;
  executor_type get_executor() noexcept;

  /// Runs the loop on this thread until `stop()` or until no work is left.
  void run();
  /// Runs ready handlers and handlers that become ready within `for_at_most`.
  std::size_t run_for(std::chrono::steady_clock::duration for_at_most);
  /// Makes `run()` return as soon as possible. Callable from any thread.
  void stop();
  bool stopped() const noexcept;
  /// Makes a stopped loop runnable again.
  void restart();

  /// The loop whose `run()` is executing on this thread, or nullptr.
  static loop* current() noexcept;

  /// Snapshot of the live tasks, oldest first. Thread-safe.
  std::vector<task_info> tasks() const;
  std::size_t live_task_count() const noexcept;

 private:
  friend void detail::register_task(loop&, detail::task_record&) noexcept;
  friend void detail::unregister_task(loop&, detail::task_record&) noexcept;
  friend boost::asio::io_context& detail::loop_context(loop&) noexcept;
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe
