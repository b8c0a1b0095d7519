// loupe-demo — the reference application.
//
// Routes:
//   GET  /                 "Hello, world!"
//   GET  /json             {"data": "Hello, world!"}
//   GET  /users/{id:\d+}   {"id": <id>}
//   POST /echo             the request body back (413 past the body limit)
//   GET  /sleep?ms=N       waits N ms on an async timer: a suspended task
//   GET  /block?ms=N       blocks the loop thread N ms: a deliberately bad handler
//   GET  /cpu?ms=N         burns CPU on the loop thread N ms in demo_burn_cpu()
//   GET  /bytes?n=N        N bytes of 'x' (up to 16 MiB): a large response
//   GET  /fanout           calls /json and /sleep?ms=10 on this server at once
//                          through the client session; returns both as JSON
//   GET  /upstream         calls the --upstream URL with the client session and
//                          returns its answer (502 when the call fails): a
//                          handler waiting on another service
//   GET  /ws               WebSocket echo (text and binary)
//   GET  /metrics          Prometheus metrics, with the demo's own demo_echo_bytes_total
//
//   loupe-demo --port 8080 --log-format text
//   telnet 127.0.0.1 20101                 the monitor console (--monitor-port, --monitor off)
//   loupe-demo --debug-endpoints            GET /debug/pprof/profile?seconds=N and /debug/pprof/heap
//   loupe-demo --tls-cert site.crt --tls-key site.key   HTTPS (and wss:// for /ws); SIGHUP reloads them
#include <loupe/monitor/console.hpp>
#include <loupe/profiler/profiler.hpp>
#include <loupe/runtime.hpp>

#include <boost/url/parse.hpp>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <charconv>
#include <stdexcept>
#include <chrono>
#include <cmath>
#include <thread>

using loupe::awaitable;
using loupe::request;
using loupe::response;

// The `ms` query parameter: a non-negative integer up to ten minutes.
static std::int64_t ms_param(const request& req) {
  const auto text = req.query().get("ms");
  if (!text) throw loupe::http_bad_request("query parameter 'ms' is required");
  std::int64_t ms = -1;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), ms);
  if (ec != std::errc{} || end != text->data() + text->size() || ms < 0 || ms > 600000)
    throw loupe::http_bad_request("query parameter 'ms' must be an integer from 0 to 600000");
  return ms;
}

// --upstream URL, what GET /upstream calls: an http:// URL with a host,
// checked before anything binds (a bad one exits 2 with the reason).
class upstream_flag : public loupe::run_extension {
 public:
  void add_flags(loupe::flag_set& flags) {
    flags.add_string("upstream", &url, "the http:// URL that GET /upstream calls (none: it answers 404)");
  }
  void check() override {
    if (url.empty()) return;
    const auto u = boost::urls::parse_absolute_uri(url);
    if (!u || u->scheme() != "http" || u->host().empty())
      throw std::invalid_argument("--upstream must be an http:// URL with a host, got '" + url + "'");
  }
  void start(loupe::application&) override {}
  void stop() override {}
  std::string url;
};

// Blocks the calling (loop) thread: what a handler must never do.
[[gnu::noinline]] void demo_block_loop(std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Burns CPU on the calling thread for `ms` milliseconds; a profiler target.
[[gnu::noinline]] double demo_burn_cpu(std::int64_t ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  volatile double x = 0;
  while (std::chrono::steady_clock::now() < until)
    for (int i = 1; i < 1000; ++i) x = x + std::sqrt(static_cast<double>(i));
  return x;
}

int main(int argc, char** argv) {
  loupe::application app;
  loupe::run_options opts;  // the standard flags write here (run_main, below)
  // An application metric on the application's registry: resolved once, then
  // an atomic add per request.
  auto& echoed = prometheus::BuildCounter()
                     .Name("demo_echo_bytes_total")
                     .Help("Request body bytes echoed back by POST /echo.")
                     .Register(app.metrics())
                     .Add({});

  app.get(
      "/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); }, "index");

  app.get(
      "/json",
      [](request&) -> awaitable<response> {
        co_return response::json({{"data", "Hello, world!"}});
      },
      "json");

  app.get(R"(/users/{id:\d+})",
          [](request& req) -> awaitable<response> {
            const auto id = req.match_info().at("id");
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
            if (ec != std::errc{} || end != id.data() + id.size())
              throw loupe::http_not_found("no user " + std::string(id));  // too large to be an id
            co_return response::json({{"id", n}});
          },
          "user");

  app.post(
      "/echo",
      [&echoed](request& req) -> awaitable<response> {
        echoed.Increment(static_cast<double>(req.bytes().size()));
        const auto type = req.header("Content-Type").value_or("application/octet-stream");
        co_return response::bytes(req.text(), type);
      },
      "echo");

  app.get(
      "/sleep",
      [](request& req) -> awaitable<response> {
        const auto ms = ms_param(req);
        co_await loupe::sleep_for(std::chrono::milliseconds(ms));  // a suspended task: `ps` shows this line
        co_return response::text("slept " + std::to_string(ms) + " ms");
      },
      "sleep");

  app.get(
      "/block",
      [](request& req) -> awaitable<response> {
        const auto ms = ms_param(req);
        loupe::log::info(loupe::log::app(), "blocking the loop on purpose", {{"ms", ms}});
        demo_block_loop(ms);
        co_return response::text("blocked the loop for " + std::to_string(ms) + " ms");
      },
      "block");

  app.get(
      "/cpu",
      [](request& req) -> awaitable<response> {
        const auto ms = ms_param(req);
        demo_burn_cpu(ms);
        co_return response::text("burned " + std::to_string(ms) + " ms of CPU");
      },
      "cpu");

  app.get(
      "/bytes",
      [](request& req) -> awaitable<response> {
        const auto text = req.query().get("n");
        std::size_t n = 0;
        if (!text || std::from_chars(text->data(), text->data() + text->size(), n).ptr != text->data() + text->size() ||
            n > 16 * 1024 * 1024)
          throw loupe::http_bad_request("query parameter 'n' must be an integer from 0 to 16777216");
        co_return response::bytes(std::string(n, 'x'), "application/octet-stream");
      },
      "bytes");

  app.get(
      "/fanout",
      [&opts](request& req) -> awaitable<response> {
        loupe::loop& here = *loupe::loop::current();  // the loop serving this request
        // With --tls-cert the demo calls itself over https, on 127.0.0.1, which
        // its certificate need not name: this one self-call does not verify.
        const bool tls = !opts.tls_cert.empty();
        loupe::client_options co;
        co.tls.verify = !tls;
        loupe::client_session session(here, co);  // a session belongs to one loop
        const auto self = std::string(tls ? "https://" : "http://") + req.local().address().to_string() + ":" +
                          std::to_string(req.local().port());
        auto [json, slept] = co_await loupe::gather(here, "fanout", session.get(self + "/json"),
                                                    session.get(self + "/sleep?ms=10"));
        co_return response::json({{"json", json.json()},
                                  {"sleep", {{"status", slept.status_code()}, {"body", slept.text()}}}});
      },
      "fanout");

  upstream_flag upstream;  // --upstream, set by run_main before the loop runs
  app.get(
      "/upstream",
      [&upstream](request&) -> awaitable<response> {
        if (upstream.url.empty()) throw loupe::http_not_found("no --upstream was given");
        loupe::client_session session(*loupe::loop::current());
        std::string failure;
        try {
          auto res = co_await session.get(upstream.url);  // waiting on another service: `where` names this line
          co_return response::text(res.text(), static_cast<boost::beast::http::status>(res.status_code()));
        } catch (const loupe::client_error& e) {
          failure = e.what();
        }
        throw loupe::http_error(boost::beast::http::status::bad_gateway, "upstream: " + failure);
      },
      "upstream");

  app.websocket(
      "/ws",
      [](loupe::websocket& ws, request&) -> awaitable<void> {
        while (auto msg = co_await ws.receive()) co_await ws.send(msg->data, msg->binary);
      },
      {}, "ws");

  loupe::flag_set flags("loupe-demo", "The loupe reference application.");
  loupe::monitor::console console;                    // telnet 127.0.0.1 20101: ps, where, cancel
  console.add_flags(flags);
  loupe::profiler::profiler profiler;                 // --debug-endpoints: /debug/pprof/profile, /heap
  profiler.add_flags(flags);
  profiler.add_to(console);                           // the console's `profile SECONDS`
  upstream.add_flags(flags);
  opts.extensions.push_back(&upstream);
  opts.extensions.push_back(&profiler);
  opts.extensions.push_back(&console);
  return loupe::run_main(app, argc, argv, flags, opts);
}
