// profiler/src/backend.hpp — what the profiler asks of gperftools.
//
//   if (!cpu_available()) ...;                      // answer "unavailable" first
//   if (!detail::start_cpu_profiler(path)) ...;     // then record
//   detail::stop_cpu_profiler();
//
// Two translation units define these, and CMake builds one of them into
// loupe::profiler (Envoy picks its profiler's sources the same way):
// backend_gperftools.cpp calls libprofiler (and tcmalloc, when linked);
// backend_stub.cpp, built without gperftools and for the test-only
// loupe_profiler_stub, has nothing to call. They also define the public
// cpu_available() and heap_available(). Everything else, profiler.cpp, is the
// same for both and asks those two before it calls any of the functions here
// (which, in the stub, throw the profiler_errc "unavailable" codes).
#pragma once

#include <string>

namespace loupe::profiler::detail {

/// gperftools' ProfilerStart: the CPU profiler records into `path` until
/// stop_cpu_profiler(). False if it cannot start.
bool start_cpu_profiler(const std::string& path);
/// ProfilerStop: stops it and writes the profile.
void stop_cpu_profiler();
/// ProfilerRegisterThread: the calling thread is sampled too (with per-thread
/// timers). A loop thread's start hook.
void register_thread();
/// tcmalloc's sampled heap profile, in the format google-pprof reads.
std::string heap_sample();

}  // namespace loupe::profiler::detail
