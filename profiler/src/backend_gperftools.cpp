// The profiler's backend with gperftools: libprofiler's CPU profiler and, when
// tcmalloc is linked (LOUPE_HAVE_TCMALLOC), its sampled heap profile. CMake
// builds this file or backend_stub.cpp into loupe::profiler (see backend.hpp).
#include "backend.hpp"

#include <loupe/profiler/profiler.hpp>

#include <gperftools/profiler.h>
#ifdef LOUPE_HAVE_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

#include <system_error>

namespace loupe::profiler {

bool cpu_available() noexcept { return true; }

namespace detail {

bool start_cpu_profiler(const std::string& path) { return ProfilerStart(path.c_str()) != 0; }
void stop_cpu_profiler() { ProfilerStop(); }
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
