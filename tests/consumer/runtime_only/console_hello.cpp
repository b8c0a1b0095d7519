// A loupe application with the live console (and, WITH_PROFILER, the
// profiler), built against the installed package without its test kit.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime.hpp>
#ifdef WITH_PROFILER
#include <loupe/profiler/profiler.hpp>
#endif

using loupe::awaitable, loupe::request, loupe::response;

int main(int argc, char** argv) {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("hello from a consumer"); });
  loupe::flag_set flags("console_hello", "A consumer of loupe's runtime and console.");
  loupe::run_options opts;
  loupe::monitor::console console;
  console.add_flags(flags);
#ifdef WITH_PROFILER
  loupe::profiler::profiler profiler;
  profiler.add_flags(flags);
  profiler.add_to(console);
  opts.extensions.push_back(&profiler);
#endif
  opts.extensions.push_back(&console);
  return loupe::run_main(app, argc, argv, flags, opts);
}
