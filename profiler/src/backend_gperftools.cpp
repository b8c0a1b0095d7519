// The profiler's backend with gperftools: libprofiler's CPU profiler and, when
// tcmalloc is linked (LOUPE_HAVE_TCMALLOC), its sampled heap profile. CMake
// builds this file or backend_stub.cpp into loupe::profiler (see backend.hpp).
#include "backend.hpp"

#include <loupe/profiler/profiler.hpp>

#include <gperftools/profiler.h>
#ifdef LOUPE_HAVE_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

#include <loupe/runtime/log.hpp>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <string_view>
#include <system_error>
#include <unistd.h>

namespace loupe::profiler {

bool cpu_available() noexcept { return true; }

namespace detail {

bool start_cpu_profiler(const std::string& path) { return ProfilerStart(path.c_str()) != 0; }
namespace {

// What ProfilerStop printed on stderr: gperftools writes
// "PROFILE: interrupts/evictions/bytes = N/N/N" there after each profile
// (profiledata.cc, unconditionally), which broke stderr's one JSON record
// per line. The descriptor is pointed at a pipe for the stop's duration; any
// other thread's writes meanwhile land in the pipe too and are written back
// to stderr afterwards, in order (a writer blocks, at worst, until then).
std::string stop_capturing_stderr() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ProfilerStop();
    return {};
  }
  std::fflush(stderr);
  const int saved = ::dup(2);
  if (saved < 0 || ::dup2(p[1], 2) < 0) {
    if (saved >= 0) ::close(saved);
    ::close(p[0]);
    ::close(p[1]);
    ProfilerStop();
    return {};
  }
  ProfilerStop();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(p[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = ::read(p[0], buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else break;
  }
  ::close(p[0]);
  return out;
}

}  // namespace

void stop_cpu_profiler() {
  const std::string printed = stop_capturing_stderr();
  std::string rest;
  for (std::size_t at = 0; at < printed.size();) {
    auto nl = printed.find('\n', at);
    if (nl == std::string::npos) nl = printed.size();
    const std::string_view line(printed.data() + at, nl - at);
    long long interrupts = 0, evictions = 0, bytes = 0;
    if (line.starts_with("PROFILE: ") &&
        std::sscanf(std::string(line).c_str(), "PROFILE: interrupts/evictions/bytes = %lld/%lld/%lld", &interrupts,
                    &evictions, &bytes) == 3) {
      log::write(
          log::runtime(), spdlog::level::info,
          "CPU profile stopped: " + std::to_string(interrupts) + " samples, " + std::to_string(evictions) +
              " evictions, " + std::to_string(bytes) + " bytes",
          {{"event", "cpu_profile_stopped"}, {"interrupts", interrupts}, {"evictions", evictions}, {"bytes", bytes}});
    } else {
      rest.append(line).append(1, '\n');  // someone else's: back where it was going
    }
    at = nl + 1;
  }
  if (!rest.empty()) {
    if (rest.size() > printed.size()) rest.pop_back();  // no newline was added at the end
    std::size_t done = 0;
    while (done < rest.size()) {
      const auto n = ::write(2, rest.data() + done, rest.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
  }
}
void register_thread() { ProfilerRegisterThread(); }

}  // namespace detail

// Heap profiles need tcmalloc, which is not linked with the sanitizers.
#ifdef LOUPE_HAVE_TCMALLOC
bool heap_available() noexcept { return true; }

std::string detail::heap_sample() {
  std::string out;
  MallocExtension::instance()->GetHeapSample(&out);
  return out;
}
#else
bool heap_available() noexcept { return false; }

std::string detail::heap_sample() { throw std::system_error(make_error_code(profiler_errc::heap_unavailable)); }
#endif

}  // namespace loupe::profiler
