// loupe/profiler/profiler.hpp — CPU and heap profiles on demand, for google-pprof.
//
//   loupe::profiler::profiler prof;                 // off until --debug-endpoints
//   prof.add_flags(flags);                          // --debug-endpoints, --profile-dir, --profile-stalls-ms
//   prof.add_to(console);                           // the console's `profile SECONDS`
//   opts.extensions.push_back(&prof);
//
//   $ curl -o cpu.prof 'localhost:20101/debug/pprof/profile?seconds=10'   # the console's port
//   $ google-pprof --text build/loupe-demo cpu.prof
//   $ curl -o heap.prof localhost:20101/debug/pprof/heap
//   $ LOUPE_CPUPROFILE=/tmp/run.prof loupe-demo ...   # the whole run, written at SIGTERM
//
//   try {
//     loupe::profiler::record_cpu_profile("/tmp/cpu.prof", std::chrono::seconds(5));
//   } catch (const std::system_error& e) {
//     if (e.code() == loupe::profiler::profiler_errc::cpu_unavailable) ...  // built without gperftools
//   }
//
// gperftools' CPU profiler (libprofiler) and, when tcmalloc is linked, its
// sampled heap profile — Go's net/http/pprof paths, but not on the
// application's port: they are served by the console's thread on its
// loopback listener (see console.hpp), to loopback peers only, like Envoy's
// admin port. Go's net/http/pprof on the application's mux is the cautionary
// tale: whoever reaches the app (through a proxy, from anywhere) can profile
// it. Here a proxy in front of the app never reaches them, and they answer
// while every loop is blocked. A CPU profile records for N seconds (default
// 30, at most 300) while the loops go on serving; one at a time, a second
// request gets 409.
//
// Profile files are created by loupe with O_CREAT|O_EXCL|O_NOFOLLOW, mode
// 0600, under an unpredictable name (loupe-cpu-PID-UTC-RANDOM.prof), in a
// --profile-dir that is refused if everyone may write to it without the
// sticky bit; gperftools then writes through the descriptor
// (/proc/self/fd/N), so a link planted in the directory is never followed.
//
// Loop threads are registered with the profiler as they start, so with
// per-thread timers each is sampled. The clock is gperftools' and is chosen
// when the process starts: CPU time by default (time blocked in system calls
// is invisible); start the program with CPUPROFILE_REALTIME=1 and
// CPUPROFILE_PER_THREAD_TIMERS=1 for wall-clock profiles of the loops. The
// heap profile is empty unless TCMALLOC_SAMPLE_PARAMETER is set at start
// (e.g. 524288: a sample every 512 KiB allocated).
//
// The debug endpoints are off unless `--debug-endpoints` is given (which
// needs the console): a profile costs CPU and shows code addresses. Built
// without gperftools, every entry point still exists and answers 501
// "profiling is unavailable"; the functions below throw std::system_error
// with profiler_errc::cpu_unavailable or ::heap_unavailable (a
// std::runtime_error, like every profiler error). The build picks the
// implementation, with gperftools or without (profiler/src/backend.hpp).
//
// With `--profile-stalls-ms N`, a watchdog stall (see tracking.hpp) starts an
// N ms CPU profile of the stalled process, at most one a minute, written to
// --profile-dir and logged.
#pragma once

#include <loupe/runtime/flags.hpp>
#include <loupe/runtime/run_app.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

namespace loupe::monitor {
class console;
}

namespace loupe::profiler {

struct profiler_options {
  bool endpoints = false;           ///< serve /debug/pprof/profile and /debug/pprof/heap on the console
  std::string directory = "/tmp";   ///< where console, stall and whole-run profiles go
  std::int64_t max_seconds = 300;   ///< the longest CPU profile asked for
  std::int64_t stall_profile_ms = 0;  ///< on a stall, profile this long (0: off)
};

/// Why a profile cannot be had. Thrown as std::system_error, whose what() is
/// the code's message (category "loupe.profiler").
enum class profiler_errc {
  cpu_unavailable = 1,  ///< built without gperftools' CPU profiler
  heap_unavailable,     ///< built without tcmalloc's heap sampler
  busy,                 ///< a CPU profile is already being recorded (one at a time, process-wide)
};
const std::error_category& profiler_category() noexcept;
std::error_code make_error_code(profiler_errc e) noexcept;

/// Built with gperftools' CPU profiler / with tcmalloc's heap sampler.
bool cpu_available() noexcept;
bool heap_available() noexcept;
/// "wall" when the process started with CPUPROFILE_REALTIME set, else "cpu".
const char* clock_name() noexcept;

/// Records a CPU profile for `duration` into `path`, blocking the calling
/// thread (not a loop). Throws std::system_error with
/// profiler_errc::cpu_unavailable if profiling is unavailable, or
/// profiler_errc::busy if a profile is already being recorded;
/// std::runtime_error if gperftools cannot start writing `path`.
void record_cpu_profile(const std::string& path, std::chrono::milliseconds duration);

/// The sampled heap profile in the format google-pprof reads. Throws
/// std::system_error with profiler_errc::heap_unavailable if tcmalloc is not
/// linked.
std::string heap_profile();

/// Owns nothing but configuration; one per program.
class profiler : public run_extension {
 public:
  explicit profiler(profiler_options opts = {}) : opts_(std::move(opts)) {}
  /// --debug-endpoints, --profile-dir, --profile-stalls-ms.
  void add_flags(flag_set& flags);
  /// Adds `profile SECONDS` to the console (it writes to --profile-dir and
  /// prints the path), and with --debug-endpoints the /debug/pprof/* HTTP
  /// endpoints on its listener.
  void add_to(monitor::console& console);

  /// Throws std::invalid_argument for a bad option: a --profile-dir that is
  /// missing or writable by everyone without the sticky bit, or
  /// --debug-endpoints without a console (run_main: exit 2).
  void check() override;
  /// check(), then adds the endpoints to the console (when enabled),
  /// registers loop threads with the profiler, starts the whole-run profile
  /// named by LOUPE_CPUPROFILE and the stall hook.
  void prepare(application& app) override;
  void start(application&) override {}
  /// Stops the whole-run profile (writing it) and the stall hook.
  void stop() override;

  const profiler_options& options() const noexcept { return opts_; }

 private:
  void add_endpoints(monitor::console& console);

  profiler_options opts_;
  monitor::console* console_ = nullptr;
  bool whole_run_ = false;
  int whole_run_fd_ = -1;
};

}  // namespace loupe::profiler

template <>
struct std::is_error_code_enum<loupe::profiler::profiler_errc> : std::true_type {};
