// The profiler: CPU and heap profiles behind HTTP routes on the console, a
// console command, a whole-run switch and a stall hook. The same with and
// without gperftools: what calls gperftools is in the backend (backend.hpp),
// built from backend_gperftools.cpp or backend_stub.cpp, and this file asks
// cpu_available() / heap_available() before it uses it, answering
// "unavailable" otherwise.
#include <loupe/profiler/profiler.hpp>

#include "backend.hpp"

#include <loupe/monitor/console.hpp>
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
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

std::string stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// A directory where a profile file can be created without another user
// swapping it for a symlink: it exists and is not writable by everyone, unless
// it has the sticky bit (like /tmp: nobody can remove or rename another's file).
void check_profile_directory(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::invalid_argument("--profile-dir '" + dir + "' is not a directory");
  if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
    throw std::invalid_argument("--profile-dir '" + dir +
                                "' is writable by every user and has no sticky bit: another user could replace a "
                                "profile file there with a link");
}

// A new profile file, created by us: loupe-KIND-PID-UTC-RANDOM.prof in `dir`,
// opened with O_CREAT|O_EXCL|O_NOFOLLOW (a planted file or link of that name
// makes it fail, and the random part makes the name unpredictable), mode 0600.
struct profile_file {
  int fd = -1;
  std::string path;
  profile_file() = default;
  profile_file(const profile_file&) = delete;
  profile_file& operator=(const profile_file&) = delete;
  ~profile_file() {
    if (fd >= 0) ::close(fd);
  }
  /// The name gperftools opens: this very file, whatever happens to its path.
  std::string proc_path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (::getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size()))
    throw std::runtime_error("getrandom failed: " + std::string(std::strerror(errno)));
  std::string hex;
  for (unsigned char c : raw) {
    hex += "0123456789abcdef"[c >> 4];
    hex += "0123456789abcdef"[c & 15];
  }
  return hex;
}

void create_profile_file(profile_file& f, const std::string& dir, const char* kind) {
  check_profile_directory(dir);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string path = (std::filesystem::path(dir) /
                              ("loupe-" + std::string(kind) + "-" + std::to_string(::getpid()) + "-" + stamp() + "-" +
                               random_hex(8) + ".prof"))
                                 .string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      f.fd = fd;
      f.path = path;
      return;
    }
    if (errno != EEXIST) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  }
  throw std::runtime_error("cannot create a profile file in " + dir + ": every name tried exists");
}

// Stops the CPU profiler and frees the one-at-a-time slot when it goes out of
// scope (also when the coroutine recording is destroyed or cancelled).
struct cpu_recording {
  busy_guard slot;
  bool started = false;
  ~cpu_recording() {
    if (started) detail::stop_cpu_profiler();
  }
  /// Starts writing into `f`; throws if a profile is already being recorded.
  void start(const profile_file& f) {
    if (!slot.owned) throw std::system_error(make_error_code(profiler_errc::busy));
    if (!detail::start_cpu_profiler(f.proc_path())) throw std::runtime_error("cannot start the CPU profiler");
    started = true;
  }
  void stop() {
    if (started) detail::stop_cpu_profiler();
    started = false;
  }
};

// Records into `f` for `d`, waiting on a timer of the calling coroutine's executor.
awaitable<void> record_async(const profile_file& f, std::chrono::milliseconds d) {
  cpu_recording rec;
  rec.start(f);
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
  rec.stop();
}

// Stall profiles: at most one a minute, recorded on a thread of their own.
std::string stall_dir;
std::int64_t stall_ms = 0;
std::atomic<std::int64_t> last_stall_profile_s{0};

void on_stall(const std::string& loop_name, std::uint64_t task_id) {
  if (!cpu_available()) return;  // nothing to record with
  const auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto last = last_stall_profile_s.load();
  if (last != 0 && now_s - last < 60) return;
  if (!last_stall_profile_s.compare_exchange_strong(last, now_s)) return;
  if (busy.load()) return;
  // The stalling task's name and request, read now (the loop is blocked in it).
  std::string task_name, request_id;
  loop::for_each([&](const loop& l) {
    if (auto t = l.find_task(task_id)) {
      task_name = t->name;
      request_id = t->request.request_id;
    }
  });
  std::thread([loop_name, task_id, task_name, request_id] {
    try {
      profile_file f;
      create_profile_file(f, stall_dir, "stall");
      record_cpu_profile(f.proc_path(), std::chrono::milliseconds(stall_ms));
      log::write(log::runtime(), spdlog::level::warn, "CPU profile of a stall written to " + f.path,
                 {{"event", "stall_profile"}, {"loop", loop_name}, {"path", f.path}, {"duration_ms", stall_ms}},
                 {task_id, task_name, request_id});
    } catch (const std::exception& e) {
      log::runtime().warn("no CPU profile of the stall: {}", e.what());
    }
  }).detach();
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

const char* clock_name() noexcept { return std::getenv("CPUPROFILE_REALTIME") ? "wall" : "cpu"; }

void record_cpu_profile(const std::string& path, std::chrono::milliseconds duration) {
  if (!cpu_available()) throw std::system_error(make_error_code(profiler_errc::cpu_unavailable));
  busy_guard guard;
  if (!guard.owned) throw std::system_error(make_error_code(profiler_errc::busy));
  if (!detail::start_cpu_profiler(path)) throw std::runtime_error("cannot start the CPU profiler writing " + path);
  std::this_thread::sleep_for(duration);
  detail::stop_cpu_profiler();
}

std::string heap_profile() {
  if (!heap_available()) throw std::system_error(make_error_code(profiler_errc::heap_unavailable));
  return detail::heap_sample();
}

void profiler::add_flags(flag_set& flags) {
  flags.add_bool("debug-endpoints", &opts_.endpoints,
                 "serve GET /debug/pprof/profile?seconds=N and /debug/pprof/heap (google-pprof) on the console's "
                 "loopback listener");
  flags.add_string("profile-dir", &opts_.directory, "where console, stall and whole-run profiles are written");
  flags.add_int("profile-stalls-ms", &opts_.stall_profile_ms, 0, 10000,
                "on a watchdog stall, record a CPU profile this long, at most once a minute (0: off)");
}

void profiler::add_to(monitor::console& console) {
  console_ = &console;
  console.add_command({"profile",
                       "profile SECONDS",
                       "records a CPU profile for SECONDS (1-60) into --profile-dir and prints its file "
                       "(google-pprof --text BINARY FILE); other sessions go on meanwhile",
                       {},
                       true,
                       [this](std::vector<std::string> args) -> awaitable<std::string> {
                         if (!cpu_available())
                           co_return "error: CPU profiling is unavailable (built without gperftools)\n";
                         std::int64_t s = 0;
                         if (args.size() != 1 ||
                             std::from_chars(args[0].data(), args[0].data() + args[0].size(), s).ec != std::errc{} ||
                             s < 1 || s > 60)
                           co_return "usage: profile SECONDS (1 to 60)\n";
                         if (busy.load()) co_return "error: a CPU profile is already being recorded\n";
                         profile_file f;
                         create_profile_file(f, opts_.directory, "cpu");
                         co_await record_async(f, std::chrono::seconds(s));
                         co_return "CPU profile (" + std::string(clock_name()) + " time, " + std::to_string(s) +
                             " s) written to " + f.path + "\n";
                       }});
}

void profiler::check() {
  check_profile_directory(opts_.directory);
  if (opts_.endpoints && (!console_ || !console_->enabled()))
    throw std::invalid_argument(
        "--debug-endpoints serves /debug/pprof/* on the console's loopback listener, and the console is off "
        "(--monitor off)");
}

void profiler::add_endpoints(monitor::console& console) {
  const std::int64_t max = opts_.max_seconds;
  console.add_http_endpoint(
      {"/debug/pprof/profile",
       [max](request& req) -> awaitable<response> {
         if (!cpu_available()) co_return unavailable("CPU");
         const auto seconds = seconds_param(req, max);
         if (busy.load())
           co_return response::text("a CPU profile is already being recorded; try again when it is done",
                                    response::status_type::conflict);
    // A file of our own in the temporary directory, gone once it is sent:
    // unlinked at once, written and read back through its descriptor.
         profile_file f;
         const char* tmp = std::getenv("TMPDIR");
         create_profile_file(f, tmp && *tmp ? tmp : "/tmp", "http");
         ::unlink(f.path.c_str());
         co_await record_async(f, std::chrono::seconds(seconds));  // the console's other sessions go on
         std::string data;
         char chunk[65536];
         for (off_t at = 0;;) {
           const ssize_t n = ::pread(f.fd, chunk, sizeof chunk, at);
           if (n <= 0) break;
           data.append(chunk, static_cast<std::size_t>(n));
           at += n;
         }
         auto res = response::bytes(std::move(data), "application/octet-stream");
         res.set_header("Content-Disposition", "attachment; filename=\"profile\"");
         res.set_header("X-Profile-Clock", clock_name());
         co_return res;
       },
       /*changes_state=*/true});
  console.add_http_endpoint({"/debug/pprof/heap", [](request&) -> awaitable<response> {
                               if (!heap_available()) co_return unavailable("heap");
                               auto res = response::bytes(heap_profile(), "application/octet-stream");
                               res.set_header("Content-Disposition", "attachment; filename=\"heap\"");
                               if (!std::getenv("TCMALLOC_SAMPLE_PARAMETER"))
                                 res.set_header("X-Profile-Warning",
                                                "TCMALLOC_SAMPLE_PARAMETER was not set at start: the sample is empty");
                               co_return res;
                             }});
}

void profiler::prepare(application&) {
  check();
  if (cpu_available()) loop::set_thread_start_hook(&detail::register_thread);
  if (const char* path = std::getenv("LOUPE_CPUPROFILE"); cpu_available() && path && *path) {
    // The path is the operator's; still, a link there is not followed:
    // opened by us (O_NOFOLLOW, mode 0600), written through the descriptor.
    whole_run_fd_ = ::open(path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (whole_run_fd_ < 0)
      throw std::runtime_error(std::string("LOUPE_CPUPROFILE: cannot create ") + path + ": " + std::strerror(errno));
    busy.store(true);  // the endpoint answers 409 meanwhile
    if (!detail::start_cpu_profiler("/proc/self/fd/" + std::to_string(whole_run_fd_))) {
      busy.store(false);
      throw std::runtime_error(std::string("LOUPE_CPUPROFILE: cannot write a CPU profile to ") + path);
    }
    whole_run_ = true;
    log::runtime().info("recording a CPU profile of the whole run into {} (written at exit)", path);
  }
  if (opts_.stall_profile_ms > 0) {
    stall_dir = opts_.directory;
    stall_ms = opts_.stall_profile_ms;
    set_stall_observer(&on_stall);
  }
  if (opts_.endpoints) add_endpoints(*console_);
}

void profiler::stop() {
  if (opts_.stall_profile_ms > 0) set_stall_observer(nullptr);
  if (whole_run_) {  // only with gperftools (prepare)
    detail::stop_cpu_profiler();
    ::close(whole_run_fd_);
    whole_run_fd_ = -1;
    busy.store(false);
    whole_run_ = false;
    log::runtime().info("whole-run CPU profile written to {}", std::getenv("LOUPE_CPUPROFILE"));
  }
}

}  // namespace loupe::profiler
