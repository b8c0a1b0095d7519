// loupe/runtime/runner.hpp — serve an application on N loops (worker loops).
//
//   loupe::app_runner runner(app, {.host = "127.0.0.1", .port = 0, .workers = 2});
//   // on runner.main_loop():
//   auto ep = co_await runner.start();            // hooks, listeners, worker threads
//   ...
//   co_await runner.stop(std::chrono::seconds(10));  // drain every loop, then the hooks
//
// Loop 0 ("main") is the caller's: it runs the start-up, shutdown and clean-up
// hooks and its own server. Loops 1..N-1 ("worker-1", ...) each run on their
// own thread with their own server; every server accepts on its own
// SO_REUSEPORT socket bound to the same address, so the kernel spreads
// connections across the loops (gunicorn's workers, in one process).
//
// Per loop: the loop, its server, its connections, its tasks and their
// registry. Shared by every loop: the application — its routes and
// middlewares (read-only once started) and its state, whose values must be
// safe to use from several threads at once (or be per-loop by design).
//
// `start` and `stop` must run on the main loop. Not otherwise thread-safe.
#pragma once

#include <loupe/runtime/server.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace loupe {

class application;
class loop;

struct runner_options {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  std::size_t workers = 1;  ///< loops serving requests, the main loop included
  server_options server;
  bool lag_sampling = true;  ///< sample loop lag on the worker loops too
};

class app_runner {
 public:
  /// `main` is the loop the caller runs (loop 0).
  app_runner(loop& main, application& app, runner_options opts);
  /// Stops and joins any worker threads still running.
  ~app_runner();
  app_runner(const app_runner&) = delete;
  app_runner& operator=(const app_runner&) = delete;

  /// Runs the start-up hooks, binds every loop's listener and starts the
  /// worker threads. Returns the bound endpoint (its port, for port 0).
  awaitable<boost::asio::ip::tcp::endpoint> start();

  /// Graceful shutdown of every loop's server at once (each drains within
  /// `grace`), then the shutdown and clean-up hooks, then the worker threads
  /// stop. Returns false if a hook failed (it is logged).
  awaitable<bool> stop(std::chrono::milliseconds grace);

  std::size_t loop_count() const noexcept;
  loop& loop_at(std::size_t i);
  server& server_at(std::size_t i);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe
