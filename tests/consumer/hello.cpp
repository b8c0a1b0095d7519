// A tiny loupe application, built against the installed package.
#include <loupe/runtime.hpp>

using loupe::awaitable, loupe::request, loupe::response;

loupe::application make_app() {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("hello from a consumer"); });
  return app;
}

#ifndef HELLO_NO_MAIN
int main(int argc, char** argv) {
  auto app = make_app();
  return loupe::run_main(app, argc, argv);
}
#endif
