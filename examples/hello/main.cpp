// hello — the smallest loupe server: one route, the standard flags, graceful SIGTERM.
//   ./example-hello --port 8080 &   curl localhost:8080/   (./example-hello --help lists the flags)
#include <loupe/runtime.hpp>

int main(int argc, char** argv) {
  loupe::application app;
  app.get("/", [](loupe::request&) -> loupe::awaitable<loupe::response> {
    co_return loupe::response::text("Hello, world!\n");
  });
  return loupe::run_main(app, argc, argv);  // --host, --port, --workers, --log-format, ...
}
