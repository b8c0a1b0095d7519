// The profiler's backend without gperftools: nothing to profile with.
// cpu_available() and heap_available() are false, so profiler.cpp answers
// "unavailable" (501 over HTTP, profiler_errc to a caller) before it would
// call the rest, which throws the same codes anyway. CMake builds this file
// instead of backend_gperftools.cpp (see backend.hpp), and for the test-only
// loupe_profiler_stub, which checks those answers.
#include "backend.hpp"

#include <loupe/profiler/profiler.hpp>

#include <system_error>

namespace loupe::profiler {

bool cpu_available() noexcept { return false; }
bool heap_available() noexcept { return false; }

namespace detail {

bool start_cpu_profiler(const std::string&) { throw std::system_error(make_error_code(profiler_errc::cpu_unavailable)); }
void stop_cpu_profiler() {}
void register_thread() {}
std::string heap_sample() { throw std::system_error(make_error_code(profiler_errc::heap_unavailable)); }

}  // namespace detail

}  // namespace loupe::profiler
