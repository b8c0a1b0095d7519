// client — loupe::client_session (aiohttp's ClientSession) calling a server.
//
//   ./example-client                          # serves GET /hello on a free port and calls it
//   ./example-client http://127.0.0.1:8080/   # calls your server instead (e.g. example-hello)
//
// A program without run_main: a loop, a server listening on it and one task,
// run until they are done. The session belongs to that loop and pools
// keep-alive connections per host; a request that fails throws
// loupe::client_error (refused, timeout, bad response, ...) instead of hanging.
#include <loupe/runtime.hpp>

#include <cstdio>

using namespace std::chrono_literals;
using loupe::awaitable, loupe::request, loupe::response;

awaitable<void> call(loupe::loop& loop, loupe::server& srv, std::string url, int& exit_code) {
  loupe::client_session http(loop, {.request_timeout = 5s});
  try {
    auto res = co_await http.get(url);
    std::printf("GET %s -> %u: %s\n", url.c_str(), res.status_code(), res.text().c_str());
    // Two at once, each as its own task; the results come back in order.
    auto [a, b] = co_await loupe::gather(loop, "twice", http.get(url), http.get(url));
    std::printf("twice -> %u and %u; connections opened: %zu\n", a.status_code(), b.status_code(),
                http.connections_opened());
    exit_code = 0;
    co_await http.get("http://127.0.0.1:1/");  // nothing listens there
  } catch (const loupe::client_error& e) {
    if (e.code() != loupe::client_errc::connection_failed) exit_code = 1;
    std::printf("client_error: %s\n", e.what());
  }
  co_await http.close();
  co_await srv.shutdown(1s);  // then nothing is left to run: loop.run() returns
}

int main(int argc, char** argv) {
  loupe::application app;
  app.get("/hello", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  loupe::loop loop;
  loupe::server srv(loop, app, {.access_log = false});
  const auto ep = srv.listen("127.0.0.1", 0);  // port 0: the kernel picks one
  std::string url = argc > 1 ? argv[1] : "http://127.0.0.1:" + std::to_string(ep.port()) + "/hello";
  int exit_code = 1;
  loupe::spawn(loop, "client.main", call(loop, srv, std::move(url), exit_code));
  loop.run();
  return exit_code;
}
