// profiler — CPU and heap profiles of your own app (gperftools), on the console's port.
//
//   ./example-profiler --port 8080 --debug-endpoints     # the endpoints are off without the flag
//   while :; do curl -s localhost:8080/work >/dev/null; done &   # load to profile
//   curl -o cpu.prof 'localhost:20101/debug/pprof/profile?seconds=5'   # loopback peers only
//   google-pprof --text ./example-profiler cpu.prof | head             # burn_cpu on top
//   printf 'profile 5\nquit\n' | nc 127.0.0.1 20101     # the console's command: writes a file
//                                                       # to --profile-dir (/tmp), prints its path
//   TCMALLOC_SAMPLE_PARAMETER=524288 ./example-profiler --debug-endpoints   # then:
//   curl -o heap.prof localhost:20101/debug/pprof/heap   # heap sampling is set at start
//
// The profiler needs the console: its endpoints are served by the console's
// thread on the console's listener, never on the application's port. Built
// without gperftools they answer 501 "profiling is unavailable".
#include <loupe/monitor/console.hpp>
#include <loupe/profiler/profiler.hpp>
#include <loupe/runtime.hpp>

#include <chrono>
#include <cmath>

using loupe::awaitable, loupe::request, loupe::response;

// Burns CPU on the loop thread: what the profile will show.
[[gnu::noinline]] double burn_cpu(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  volatile double x = 0;
  while (std::chrono::steady_clock::now() < until)
    for (int i = 1; i < 1000; ++i) x = x + std::sqrt(static_cast<double>(i));
  return x;
}

int main(int argc, char** argv) {
  loupe::application app;
  app.get("/work", [](request&) -> awaitable<response> {
    burn_cpu(std::chrono::milliseconds(50));
    co_return response::text("worked 50 ms\n");
  });

  loupe::flag_set flags("example-profiler", "An application with the profiler.");
  loupe::monitor::console console;
  console.add_flags(flags);
  loupe::profiler::profiler profiler;
  profiler.add_flags(flags);    // --debug-endpoints, --profile-dir, --profile-stalls-ms
  profiler.add_to(console);     // the console's `profile SECONDS`, and with --debug-endpoints
                                // /debug/pprof/profile and /debug/pprof/heap on its listener
  loupe::run_options opts;
  opts.extensions.push_back(&profiler);
  opts.extensions.push_back(&console);
  return loupe::run_main(app, argc, argv, flags, opts);
}
