// executor — blocking work off the loop with loupe::executor (asyncio's run_in_executor).
//
//   ./example-executor --port 8080
//   curl 'localhost:8080/blocking?ms=2000' &  curl localhost:8080/   # "/" answers at once
//   curl 'localhost:8080/on-loop?ms=2000' &   curl localhost:8080/   # "/" waits 2 s, and loupe
//                                      # logs a slow callback and a watchdog stall with the stack
//   for i in 1 2 3 4 5; do curl -s 'localhost:8080/blocking?ms=1000' & done
//                                      # 2 run, 2 wait in the queue, the 5th gets 503
//
// The job runs on a pool thread while the request's task is suspended; its
// result (or exception) comes back on the request's loop.
#include <loupe/runtime.hpp>

#include <charconv>
#include <chrono>
#include <string>
#include <thread>

using loupe::awaitable, loupe::request, loupe::response;

// Stands in for a blocking call: a database driver, bcrypt, compressing a file.
std::string blocking_lookup(std::int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return "done after " + std::to_string(ms) + " ms\n";
}

std::int64_t ms_param(const request& req) {
  const auto text = req.query().get("ms").value_or("500");
  std::int64_t ms = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc{} || end != text.data() + text.size() || ms < 0 || ms > 10000)
    throw loupe::http_bad_request("ms must be an integer from 0 to 10000");
  return ms;
}

int main(int argc, char** argv) {
  loupe::executor pool(2, /*max_queue=*/2);  // 2 threads; a 3rd waiting job makes run() throw
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!\n"); });
  app.get("/blocking", [&pool](request& req) -> awaitable<response> {
    auto job = [ms = ms_param(req)] { return blocking_lookup(ms); };  // named: see executor.hpp
    try {
      std::string answer = co_await pool.run(std::move(job));  // this task waits; the loop serves on
      co_return response::text(std::move(answer));
    } catch (const loupe::executor_full&) {
      throw loupe::http_service_unavailable("the pool is busy, try again");
    }
  });
  app.get("/on-loop", [](request& req) -> awaitable<response> {
    co_return response::text(blocking_lookup(ms_param(req)));  // what not to do: the loop waits
  });
  return loupe::run_main(app, argc, argv);
}
