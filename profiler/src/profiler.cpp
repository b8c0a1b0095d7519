// The profiler: gperftools' CPU profiler and tcmalloc's heap sampler behind
// HTTP routes, a console command, a whole-run switch and a stall hook. Without
// gperftools (LOUPE_HAVE_GPERFTOOLS undefined) everything answers "unavailable".
#include <loupe/profiler/profiler.hpp>

#include <loupe/monitor/console.hpp>
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>

#ifdef LOUPE_HAVE_GPERFTOOLS
#include <gperftools/profiler.h>
#endif
#ifdef LOUPE_HAVE_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace loupe::profiler {

namespace {

// One CPU profile at a time, process-wide (gperftools has one profiler).
std::atomic<bool> busy{false};

struct busy_guard {
  bool owned = false;
  busy_guard() : owned(!busy.exchange(true)) {}
  ~busy_guard() {
    if (owned) busy.store(false);
  }
};

#ifdef LOUPE_HAVE_GPERFTOOLS
void register_loop_thread() { ProfilerRegisterThread(); }
#endif

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string profile_path(const std::string& dir, const char* kind) {
  return (std::filesystem::path(dir) / ("loupe-" + std::string(kind) + "-" + std::to_string(::getpid()) + "-" + stamp() +
                                        ".prof"))
      .string();
}

// Stall profiles: at most one a minute, recorded on a thread of their own.
std::string stall_dir;
std::int64_t stall_ms = 0;
std::atomic<std::int64_t> last_stall_profile_s{0};

void on_stall(const std::string& loop_name, std::uint64_t task_id) {
#ifdef LOUPE_HAVE_GPERFTOOLS
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count();
  auto last = last_stall_profile_s.load();
  if (last != 0 && now_s - last < 60) return;
  if (!last_stall_profile_s.compare_exchange_strong(last, now_s)) return;
  if (busy.load()) return;
  const std::string path = profile_path(stall_dir, "stall");
  std::thread([path, loop_name, task_id] {
    try {
      record_cpu_profile(path, std::chrono::milliseconds(stall_ms));
      log::write(log::runtime(), spdlog::level::warn, "CPU profile of a stall written to " + path,
                 {{"event", "stall_profile"}, {"loop", loop_name}, {"path", path}, {"duration_ms", stall_ms}},
                 {task_id, {}, {}});
    } catch (const std::exception& e) {
      log::runtime().warn("no CPU profile of the stall: {}", e.what());
    }
  }).detach();
#else
  (void)loop_name;
  (void)task_id;
#endif
}

std::int64_t seconds_param(const request& req, std::int64_t max) {
  const auto text = req.query().get("seconds");
  if (!text) return std::min<std::int64_t>(30, max);
  std::int64_t s = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), s);
  if (ec != std::errc{} || end != text->data() + text->size() || s < 1 || s > max)
    throw http_bad_request("query parameter 'seconds' must be an integer from 1 to " + std::to_string(max));
  return s;
}

response unavailable(const char* what) {
  return response::text(std::string(what) + " profiling is unavailable: loupe was built without gperftools" +
                            (std::string(what) == "heap" ? " (tcmalloc)" : ""),
                        response::status_type::not_implemented);
}

}  // namespace

bool cpu_available() noexcept {
#ifdef LOUPE_HAVE_GPERFTOOLS
  return true;
#else
  return false;
#endif
}

bool heap_available() noexcept {
#ifdef LOUPE_HAVE_TCMALLOC
  return true;
#else
  return false;
#endif
}

const char* clock_name() noexcept { return std::getenv("CPUPROFILE_REALTIME") ? "wall" : "cpu"; }

void record_cpu_profile(const std::string& path, std::chrono::milliseconds duration) {
#ifdef LOUPE_HAVE_GPERFTOOLS
  busy_guard guard;
  if (!guard.owned) throw std::runtime_error("a CPU profile is already being recorded");
  if (!ProfilerStart(path.c_str())) throw std::runtime_error("cannot start the CPU profiler writing " + path);
  std::this_thread::sleep_for(duration);
  ProfilerStop();
#else
  (void)path;
  (void)duration;
  throw std::runtime_error("CPU profiling is unavailable: loupe was built without gperftools");
#endif
}

std::string heap_profile() {
#ifdef LOUPE_HAVE_TCMALLOC
  std::string out;
  MallocExtension::instance()->GetHeapSample(&out);
  return out;
#else
  throw std::runtime_error("heap profiling is unavailable: loupe was built without tcmalloc");
#endif
}

void profiler::add_flags(flag_set& flags) {
  flags.add_bool("debug-endpoints", &opts_.endpoints,
                 "serve GET /debug/pprof/profile?seconds=N and /debug/pprof/heap (google-pprof)");
  flags.add_string("profile-dir", &opts_.directory, "where console, stall and whole-run profiles are written");
  flags.add_int("profile-stalls-ms", &opts_.stall_profile_ms, 0, 10000,
                "on a watchdog stall, record a CPU profile this long, at most once a minute (0: off)");
}

void profiler::add_to(monitor::console& console) {
  console.add_command({"profile", "profile SECONDS",
                       "records a CPU profile for SECONDS (1-60) and prints its file (google-pprof --text BINARY FILE)",
                       [this](const std::vector<std::string>& args) -> std::string {
                         if (!cpu_available()) return "error: CPU profiling is unavailable (built without gperftools)\n";
                         std::int64_t s = 0;
                         if (args.size() != 1 ||
                             std::from_chars(args[0].data(), args[0].data() + args[0].size(), s).ec != std::errc{} ||
                             s < 1 || s > 60)
                           return "usage: profile SECONDS (1 to 60)\n";
                         const std::string path = profile_path(opts_.directory, "cpu");
                         record_cpu_profile(path, std::chrono::seconds(s));
                         return "CPU profile (" + std::string(clock_name()) + " time, " + std::to_string(s) +
                                " s) written to " + path + "\n";
                       },
                       true});
}

void profiler::prepare(application& app) {
  if (!std::filesystem::is_directory(opts_.directory))
    throw std::invalid_argument("--profile-dir '" + opts_.directory + "' is not a directory");
#ifdef LOUPE_HAVE_GPERFTOOLS
  loop::set_thread_start_hook(&register_loop_thread);
  if (const char* path = std::getenv("LOUPE_CPUPROFILE"); path && *path) {
    busy.store(true);  // the endpoint answers 409 meanwhile
    if (!ProfilerStart(path)) {
      busy.store(false);
      throw std::runtime_error(std::string("LOUPE_CPUPROFILE: cannot write a CPU profile to ") + path);
    }
    whole_run_ = true;
    log::runtime().info("recording a CPU profile of the whole run into {} (written at exit)", path);
  }
#endif
  if (opts_.stall_profile_ms > 0) {
    stall_dir = opts_.directory;
    stall_ms = opts_.stall_profile_ms;
    set_stall_observer(&on_stall);
  }
  if (!opts_.endpoints) return;
  const std::int64_t max = opts_.max_seconds;
  app.get("/debug/pprof/profile", [max](request& req) -> awaitable<response> {
    if (!cpu_available()) co_return unavailable("CPU");
    const auto seconds = seconds_param(req, max);
#ifdef LOUPE_HAVE_GPERFTOOLS
    busy_guard guard;
    if (!guard.owned)
      co_return response::text("a CPU profile is already being recorded; try again when it is done",
                               response::status_type::conflict);
    char tmpl[] = "/tmp/loupe-cpu-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("cannot create a temporary file for the profile");
    ::close(fd);
    const std::string path = tmpl;
    struct remove_file {
      std::string p;
      ~remove_file() { std::remove(p.c_str()); }
    } cleanup{path};
    struct stop_profiler {
      bool on = false;
      ~stop_profiler() {
        if (on) ProfilerStop();  // also when the request is cancelled
      }
    } stopper;
    if (!ProfilerStart(path.c_str())) throw std::runtime_error("cannot start the CPU profiler");
    stopper.on = true;
    co_await sleep_for(std::chrono::seconds(seconds));  // the loop serves meanwhile
    ProfilerStop();
    stopper.on = false;
    auto res = response::bytes(read_file(path), "application/octet-stream");
    res.set_header("Content-Disposition", "attachment; filename=\"profile\"");
    res.set_header("X-Profile-Clock", clock_name());
    co_return res;
#else
    co_return unavailable("CPU");
#endif
  }, "pprof.profile");
  app.get("/debug/pprof/heap", [](request&) -> awaitable<response> {
    if (!heap_available()) co_return unavailable("heap");
    auto res = response::bytes(heap_profile(), "application/octet-stream");
    res.set_header("Content-Disposition", "attachment; filename=\"heap\"");
    if (!std::getenv("TCMALLOC_SAMPLE_PARAMETER"))
      res.set_header("X-Profile-Warning", "TCMALLOC_SAMPLE_PARAMETER was not set at start: the sample is empty");
    co_return res;
  }, "pprof.heap");
}

void profiler::stop() {
  if (opts_.stall_profile_ms > 0) set_stall_observer(nullptr);
#ifdef LOUPE_HAVE_GPERFTOOLS
  if (whole_run_) {
    ProfilerStop();
    busy.store(false);
    whole_run_ = false;
    log::runtime().info("whole-run CPU profile written to {}", std::getenv("LOUPE_CPUPROFILE"));
  }
#endif
}

}  // namespace loupe::profiler
