// loupe/monitor/console.hpp — the live console: find and fix stuck tasks in a running server.
//
//   loupe::monitor::console console;                 // 127.0.0.1:20101 by default
//   console.add_flags(flags);                        // --monitor, --monitor-host, --monitor-port, ...
//   opts.extensions.push_back(&console);             // run_app starts and stops it
//   return loupe::run_main(app, argc, argv, flags, opts);
//
//   $ telnet 127.0.0.1 20101          (or: nc 127.0.0.1 20101, or a script)
//   loupe> ps /sleep
//   loupe> where 42
//   loupe> cancel 42
//
// aiomonitor's console for loupe. It runs on a thread and an io_context of
// its own, so it answers while every worker loop is blocked, and it only
// reads the task registries, slow-event rings and metrics (thread-safe
// readers) — the loops never run console code. It speaks a line protocol:
// a banner, a prompt, one command per line; telnet's option negotiation is
// ignored; several consoles may be open at once. Nothing in it evaluates
// code. Commands:
//
//   ps [FILTER] [--state S] [--loop L] [--limit N|--all] [--sites]
//                             live tasks, longest-suspended first (a page of 100)
//   where ID                  what a task waits on, where, since when; spawn site, parents, request
//   pstree                    live tasks as a tree by parent
//   cancel ID                 cancels a task and reports how it ended
//   ps-terminated [FILTER]    recently finished tasks and their outcome
//   where-terminated ID       one finished task
//   slow                      recent slow callbacks and watchdog stalls (with stacks)
//   loops                     per loop: tasks, callbacks/s, lag p50/p99, busy ratio
//   stacktrace [LOOP]         the loop threads' native stacks, now
//   log-level [LEVEL]         shows or sets the log level
//   metrics [PREFIX]          current metric values
//   help [COMMAND], quit
//
// Listings take `--json` for scripts. In read-only mode `cancel` and
// `log-level LEVEL` are refused. A host other than loopback is refused unless
// `allow_remote` is set: the console can cancel tasks.
//
// It never hurts the server it watches: at most `max_sessions` connections
// at once (16; one more is told so in one line and closed), a session idle
// for `idle_timeout` (10 min) is closed, an accept that fails (out of
// descriptors) backs off and is logged once per interval, and a command that
// takes time (`profile 30`) suspends its own session only. Reading 5,000
// tasks for `ps` holds each loop's registry for one slice at a time, and `ps`
// prints one page (100 rows) unless asked for more. A session is paced like a
// person typing (a burst of 20 commands, then 10 a second), and one that has
// typed nothing is closed after a minute.
//
// The same listener answers HTTP (a connection whose first bytes are a
// request line): the endpoints that other components add (the profiler's
// /debug/pprof/profile and /debug/pprof/heap), for loopback peers only (403
// for any other), naming a loopback host (no DNS rebinding) and not sent by
// a browser on behalf of another site (no Origin, no cross-site
// Sec-Fetch-Site); read-only mode refuses those that change state. So they are never reachable through the application's port,
// nor through a proxy in front of it, and they answer while every loop is
// blocked:
//
//   $ curl -o cpu.prof 'http://127.0.0.1:20101/debug/pprof/profile?seconds=10'
#pragma once

#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/run_app.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loupe {
class application;
class request;
class response;
}

namespace loupe::monitor {

struct console_options {
  bool enabled = true;
  std::string host = "127.0.0.1";
  std::int64_t port = 20101;  ///< 0: a port the kernel picks (printed at start)
  bool allow_remote = false;  ///< listen on a non-loopback address
  bool read_only = false;  ///< refuse `cancel` and `log-level LEVEL`
  std::size_t max_sessions = 16;  ///< connections at once; one more is refused with a line
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};  ///< a session without input is closed
};

/// A command added by another component (the profiler's `profile SECONDS`).
/// `run` gets the arguments after the name and returns the text to print; it
/// runs on the console's thread and must be quick. A command that takes time
/// sets `run_async` instead: a coroutine on the console's thread that waits
/// on timers or I/O of that thread's executor (`co_await
/// boost::asio::this_coro::executor`), so every other session goes on
/// answering meanwhile.
struct extra_command {
  std::string name;
  std::string usage;  ///< e.g. "profile SECONDS"
  std::string help;  ///< one line
  std::function<std::string(const std::vector<std::string>& args)> run;
  bool changes_state = false;  ///< refused in read-only mode
  std::function<awaitable<std::string>(std::vector<std::string> args)> run_async;
};

/// An HTTP endpoint on the console's listener: GET (and HEAD) of exactly
/// `path`, for loopback peers only. The handler runs on the console's thread
/// as a coroutine (like `run_async` above); an http_error it throws is
/// answered with its status. One request per connection.
struct http_endpoint {
  std::string path;  ///< e.g. "/debug/pprof/profile"
  std::function<awaitable<response>(request&)> handle;
  bool changes_state = false;  ///< refused (403) in read-only mode
};

/// Owns the console's thread. Not copyable; start/stop from one thread.
class console : public run_extension {
 public:
  explicit console(console_options opts = {});
  ~console() override;
  console(const console&) = delete;
  console& operator=(const console&) = delete;

  /// Registers --monitor on|off, --monitor-host, --monitor-port,
  /// --monitor-allow-remote, --monitor-read-only, --monitor-max-sessions and
  /// --monitor-idle-timeout-s, writing into the options.
  void add_flags(flag_set& flags);
  /// Before start().
  void add_command(extra_command c);
  void add_http_endpoint(http_endpoint e);
  /// Whether start() will listen (the options and --monitor say so).
  bool enabled() const noexcept;

  /// Throws std::invalid_argument for a --monitor-host that is not an IP
  /// address, or not loopback without --monitor-allow-remote (run_main: exit 2).
  void check() override;
  /// Binds and starts the console thread, then prints
  /// "======== Monitor console on 127.0.0.1:PORT (telnet or nc) ========".
  /// `app` gives the `metrics` command its registry. Throws
  /// std::invalid_argument for a refused host, std::system_error if it cannot
  /// listen. Does nothing when the options say it is off.
  void start(application& app) override;
  void start();
  /// Closes the listener and every session; joins the thread. Idempotent.
  void stop() override;

  /// The port listened on (0 before start).
  unsigned short port() const noexcept;
  const console_options& options() const noexcept { return opts_; }

  /// Runs one command line as a session would and returns its output.
  std::string execute(std::string_view line);

 private:
  void start_with(application* app);

  struct impl;
  console_options opts_;
  std::string enabled_flag_ = "on";
  std::vector<extra_command> extra_;
  std::vector<http_endpoint> endpoints_;
  std::int64_t idle_timeout_s_ = 0;
  unsigned short port_ = 0;
  // The listening socket bound by check() (run_main calls it before anything
  // else binds or prints), handed to the console's thread by start(); -1 when
  // start() binds it itself.
  int reserved_fd_ = -1;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe::monitor
