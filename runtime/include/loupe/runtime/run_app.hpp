// loupe/runtime/run_app.hpp — run an application as a program.
//
//   int main(int argc, char** argv) {
//     loupe::application app;
//     ...
//     return loupe::run_main(app, argc, argv);   // parses the standard flags
//   }
//
// run_app prints where it listens ("======== Running on http://127.0.0.1:8080 ========"),
// serves until SIGINT or SIGTERM, then shuts down gracefully: stop accepting,
// let requests in flight finish within the grace period, run the shutdown and
// clean-up hooks, and return 0. A failing start-up hook or a port that cannot
// be bound returns 1 with an ERROR record; a bad flag returns 2.
//
// Parts that run alongside the server (the monitor console, the profiler) are
// run_extensions: `opts.extensions.push_back(&console);` before run_main.
#pragma once

#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/server.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace loupe {

class application;

/// A part that runs alongside the server in a program (the monitor console,
/// the profiler): run_app starts it once the application is serving and
/// stops it after the graceful shutdown. `start` throwing fails start-up
/// (exit 1, with its message); `stop` is then called on every extension and
// must be harmless for one that did not start. Called on the main loop's thread.
class run_extension {
 public:
  virtual ~run_extension() = default;
  /// Right after run_main has parsed the flags, before anything starts or
  /// binds: throw (e.g. std::invalid_argument) for a bad option or
  /// combination; run_main prints the message and returns 2.
  virtual void check() {}
  /// Before start-up, after the flags are parsed: routes may still be added.
  virtual void prepare(application& /*app*/) {}
  virtual void start(application& app) = 0;
  virtual void stop() = 0;
};

/// What `run_app` needs; the standard flags fill it.
struct run_options {
  std::string host = "127.0.0.1";
  std::int64_t port = 8080;
  std::int64_t workers = 1;            ///< loops serving requests (see runner.hpp)
  std::int64_t slow_callback_ms = 100; ///< report callbacks longer than this; 0 = off
  std::int64_t watchdog_ms = 1000;     ///< report a loop still blocked after this; 0 = off
  std::string log_format = "json";
  std::string log_level = "info";
  std::int64_t grace_ms = 10000;        ///< how long shutdown waits for requests in flight
  std::string access_log = "on";       ///< "on": one record per request (logger loupe.access)
  std::string metrics_path = "/metrics";  ///< where Prometheus scrapes; empty: no metrics route
  std::size_t max_body_bytes = 0;       ///< the application's client_max_size; 0: leave it
  server_options server;                ///< limits and timeouts (their flags write here)
  /// HTTPS: PEM files of the certificate chain and its key (the key may
  /// follow the chain in the certificate file). run_main loads them into
  /// server.tls before anything binds; SIGHUP loads them again.
  std::string tls_cert;
  std::string tls_key;
  /// Started after start-up, stopped after shutdown, in this order (not owned).
  std::vector<run_extension*> extensions;

  /// Registers --host, --port, --workers, --slow-callback-ms,
  /// --watchdog-ms, --log-format, --log-level, --grace-ms, --access-log and
  /// the server's limits and timeouts (--max-connections,
  /// --header-timeout-ms, --keepalive-timeout-ms, --body-timeout-ms,
  /// --write-timeout-ms, --max-header-bytes, --max-body-bytes,
  /// --max-body-bytes-in-flight), and --tls-cert, --tls-key on `flags`,
  /// writing into *this.
  void add_flags(flag_set& flags);
};

/// Runs `app` until SIGINT/SIGTERM; see above. Returns the exit code.
int run_app(application& app, const run_options& opts);

/// Parses the standard flags (and any the caller added to `flags`) and runs
/// `app`. Bad flags: message on stderr, returns 2. --help: usage, returns 0.
int run_main(application& app, int argc, char** argv, flag_set& flags, run_options& opts);
int run_main(application& app, int argc, char** argv);

}  // namespace loupe
