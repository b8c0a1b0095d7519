// console — the live console (loupe::monitor) in your own app, with a command of your own.
//
//   ./example-console --port 8080          # console on 127.0.0.1:20101 (--monitor-port; 0: any)
//   curl localhost:8080/wait &             # a request that waits 60 s: something to look at
//   nc 127.0.0.1 20101                     # or telnet 127.0.0.1 20101
//   loupe> ps /wait                        # the request's task, what it waits on, the co_await's line
//   loupe> where ID                        # ... and `cancel ID`: the client gets 503 at once
//   loupe> greeting Bonjour                # this program's own command (then curl localhost:8080/)
//
// The console has its own thread: it answers while every loop is blocked, and
// a command runs there, not on a loop, so what it touches must be thread-safe
// (a mutex here). `changes_state`: --monitor-read-only refuses the command. `help` lists all.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

using loupe::awaitable, loupe::request, loupe::response;

int main(int argc, char** argv) {
  std::mutex m;
  std::string greeting = "Hello";  // read by the loop, written by the console: under `m`
  auto current = [&] {
    std::lock_guard lock(m);
    return greeting;
  };

  loupe::application app;
  app.get("/", [&](request&) -> awaitable<response> { co_return response::text(current() + ", world!\n"); });
  app.get("/wait", [](request&) -> awaitable<response> {
    co_await loupe::sleep_for(std::chrono::seconds(60));  // `ps` shows this line
    co_return response::text("waited a minute\n");
  });

  loupe::monitor::console console;
  loupe::monitor::extra_command cmd;
  cmd.name = "greeting";
  cmd.usage = "greeting [WORD]";
  cmd.help = "shows or sets the greeting of GET /";
  cmd.changes_state = true;
  cmd.run = [&](const std::vector<std::string>& args) -> std::string {  // on the console's thread
    std::lock_guard lock(m);
    if (!args.empty()) greeting = args[0];
    return "greeting: " + greeting + "\n";
  };
  console.add_command(std::move(cmd));

  loupe::flag_set flags("example-console", "An application with the live console.");
  console.add_flags(flags);  // --monitor on|off, --monitor-port, --monitor-read-only, ...
  loupe::run_options opts;
  opts.extensions.push_back(&console);  // run_main starts it after start-up, stops it after shutdown
  return loupe::run_main(app, argc, argv, flags, opts);
}
