// run_app: a loop, a server, signals and the graceful-shutdown sequence.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/run_app.hpp>
#include <loupe/runtime/runner.hpp>
#include <loupe/runtime/tls.hpp>
#include <loupe/runtime/tracking.hpp>

#include "core/symbolize.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <tuple>
#include <iostream>

namespace loupe {

namespace asio = boost::asio;

void run_options::add_flags(flag_set& flags) {
  flags.add_string("host", &host, "address to listen on");
  flags.add_int("port", &port, 0, 65535, "TCP port to listen on (0: any free port)");
  flags.add_int("workers", &workers, 1, 256, "event loops serving requests");
  flags.add_int("slow-callback-ms", &slow_callback_ms, 0, 3600000, "report callbacks running longer than this (0: off)");
  flags.add_int("watchdog-ms", &watchdog_ms, 0, 3600000,
                "report a loop still blocked after this long, with its stack (0: off)");
  flags.add_choice("log-format", &log_format, {"json", "text"}, "log record format");
  flags.add_choice("log-level", &log_level, {"trace", "debug", "info", "warning", "warn", "error", "critical", "off"},
                   "lowest level logged");
  flags.add_int("grace-ms", &grace_ms, 0, 3600000, "how long shutdown waits for requests in flight, in ms");
  flags.add_choice("access-log", &access_log, {"on", "off"}, "one log record per request (logger loupe.access)");
  flags.add_size("max-connections", &server.max_connections, 1, 10'000'000,
                 "connections served at once per loop, past it 503 (capped to what RLIMIT_NOFILE allows)");
  flags.add_millis("header-timeout-ms", &server.header_timeout, 1, 3'600'000,
                   "from a request's first byte to the end of its headers");
  flags.add_millis("keepalive-timeout-ms", &server.keepalive_timeout, 1, 3'600'000,
                   "how long an idle keep-alive connection is kept");
  flags.add_millis("body-timeout-ms", &server.body_timeout, 1, 3'600'000,
                   "from the end of the headers to the end of the request body");
  flags.add_millis("write-timeout-ms", &server.write_timeout, 1, 3'600'000, "writing one response");
  flags.add_size("max-header-bytes", &server.max_header_bytes, 256, 1 << 20, "request line and headers, past it 431");
  flags.add_size("max-body-bytes", &max_body_bytes, 0, std::size_t{1} << 40,
                 "largest request body, past it 413 (0: the application's client_max_size, 1 MiB unless set)");
  flags.add_size("max-body-bytes-in-flight", &server.max_body_bytes_in_flight, 1024, std::size_t{1} << 40,
                 "request body bytes held at once by all requests, past it 503");
  flags.add_string("tls-cert", &tls_cert, "HTTPS: PEM file of the certificate chain (reloaded on SIGHUP)");
  flags.add_string("tls-key", &tls_key, "HTTPS: PEM file of the private key (default: in the --tls-cert file)");
}

namespace {

// --tls-cert/--tls-key into opts.server.tls; throws flag_error saying what is wrong.
void load_tls(run_options& opts) {
  if (opts.server.tls) return;
  if (opts.tls_cert.empty()) {
    if (!opts.tls_key.empty()) throw flag_error("--tls-key needs --tls-cert");
    return;
  }
  try {
    tls_certificate files;
    files.cert_file = opts.tls_cert;
    files.key_file = opts.tls_key;
    opts.server.tls = tls_context::server(std::move(files));
  } catch (const tls_config_error& e) {
    throw flag_error(std::string("--tls-cert: ") + e.what());
  }
}

// SIGHUP: the certificate is loaded again; a failure keeps the current one.
void reload_on_sighup(asio::signal_set& hup, tls_context& tls) {
  hup.async_wait([&hup, &tls](const boost::system::error_code& ec, int) {
    if (ec) return;
    try {
      tls.reload();
      log::runtime().info("SIGHUP: TLS certificate reloaded: {}", tls.describe());
    } catch (const tls_config_error& e) {
      log::runtime().warn("SIGHUP: TLS certificate not reloaded, keeping the current one: {}", e.what());
    }
    reload_on_sighup(hup, tls);
  });
}

}  // namespace

namespace {

awaitable<void> main_task(loop& lp, application& app, const run_options& opts, int& exit_code) {
  // Installed before start-up so that an early SIGTERM is handled too.
  asio::signal_set signals(lp.context(), SIGINT, SIGTERM);
  // A cancel of this task (from the console) is a request to shut down
  // gracefully, said as such: cancelled outright, the process would close its
  // port and go on with no task left.
  bool stop_requested = false;
  set_cancel_policy({"shuts the application down gracefully, as SIGTERM does", [&] {
                       if (stop_requested) return;
                       stop_requested = true;
                       signals.cancel();
                     }});
  server_options so = opts.server;
  so.access_log = opts.access_log == "on";
  asio::signal_set hup(lp.context());
  if (so.tls) {
    hup.add(SIGHUP);
    reload_on_sighup(hup, *so.tls);
  }
  const char* scheme = so.tls ? "https" : "http";
  app_runner runner(lp, app,
                    {opts.host, static_cast<unsigned short>(opts.port), static_cast<std::size_t>(opts.workers), so,
                     true});
  try {
    const auto ep = co_await runner.start();
    std::string host = ep.address().to_string();
    if (ep.address().is_v6()) host = "[" + host + "]";
    std::printf("======== Running on %s://%s:%u ========\n(Press CTRL+C to quit)\n", scheme, host.c_str(),
                static_cast<unsigned>(ep.port()));
    std::fflush(stdout);
    log::runtime().info("listening on {}://{}:{} with {} loop(s)", scheme, host, ep.port(), runner.loop_count());
    if (so.tls) log::runtime().info("TLS certificate: {}", so.tls->describe());
    for (auto* x : opts.extensions) x->start(app);
  } catch (const std::exception& e) {
    log::runtime().error("start-up failed: {}", e.what());
    exit_code = 1;
  }
  if (exit_code != 0) {
    for (auto it = opts.extensions.rbegin(); it != opts.extensions.rend(); ++it) (*it)->stop();
    // aiohttp runs clean-up after a failed start-up too, so that resources
    // acquired by the hooks that did run are released.
    try {
      co_await app.cleanup();
    } catch (const std::exception& e) {
      log::runtime().error("cleanup hook failed: {}", e.what());
    }
    lp.stop();
    co_return;
  }

  int signo = 0;
  if (!stop_requested) std::tie(std::ignore, signo) = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
  if (stop_requested)
    log::runtime().info("shutdown requested (a cancel of app.main); shutting down (grace period {} ms)", opts.grace_ms);
  else
    log::runtime().info("received {}; shutting down (grace period {} ms)", signo == SIGINT ? "SIGINT" : "SIGTERM",
                        opts.grace_ms);
  // A second signal stops waiting for requests in flight.
  signals.async_wait([](const boost::system::error_code& e, int) {
    if (!e) {
      log::runtime().warn("second signal: exiting without waiting");
      log::flush(std::chrono::milliseconds(500));
      std::fflush(nullptr);
      std::_Exit(1);
    }
  });
  if (!co_await runner.stop(std::chrono::milliseconds(opts.grace_ms))) exit_code = 1;
  for (auto it = opts.extensions.rbegin(); it != opts.extensions.rend(); ++it) (*it)->stop();
  signals.cancel();
  hup.cancel();
  log::runtime().info("stopped");
  lp.stop();
}

}  // namespace

int run_app(application& app, const run_options& given) {
  run_options opts = given;
  try {
    load_tls(opts);
  } catch (const flag_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  log::options lo;
  lo.format = log::parse_format(opts.log_format);
  lo.level = log::parse_level(opts.log_level);
  log::configure(lo);
  set_tracking_options({std::chrono::milliseconds(opts.slow_callback_ms), std::chrono::milliseconds(opts.watchdog_ms)});
  if (!opts.metrics_path.empty() && !app.frozen()) app.add_metrics_route(opts.metrics_path);
  if (opts.max_body_bytes != 0 && !app.frozen()) app.set_client_max_size(opts.max_body_bytes);
  try {
    for (auto* x : opts.extensions) x->prepare(app);
  } catch (const std::exception& e) {
    log::runtime().error("start-up failed: {}", e.what());
    log::flush();
    return 1;
  }
  loop lp("main");
  lp.enable_lag_sampling();
  if (opts.watchdog_ms > 0) detail::prepare_stack_names();
  int exit_code = 0;
  spawn(lp, "app.main", main_task(lp, app, opts, exit_code));
  lp.run();
  log::flush();
  std::fflush(nullptr);
  return exit_code;
}

int run_main(application& app, int argc, char** argv, flag_set& flags, run_options& opts) {
  opts.add_flags(flags);
  try {
    const auto rest = flags.parse(argc, argv);
    if (!rest.empty()) throw flag_error("unexpected argument '" + rest.front() + "'");
    load_tls(opts);
  } catch (const help_requested&) {
    std::cout << flags.usage();
    return 0;
  } catch (const flag_error& e) {
    std::cerr << flags.program() << ": " << e.what() << "\n(see " << flags.program() << " --help)\n";
    return 2;
  }
  for (auto* x : opts.extensions) {
    try {
      x->check();
    } catch (const std::exception& e) {
      std::cerr << flags.program() << ": " << e.what() << "\n";
      return 2;
    }
  }
  return run_app(app, opts);
}

int run_main(application& app, int argc, char** argv) {
  std::string program = argc > 0 ? argv[0] : "loupe";
  if (auto slash = program.rfind('/'); slash != std::string::npos) program = program.substr(slash + 1);
  flag_set flags(program, "");
  run_options opts;
  return run_main(app, argc, argv, flags, opts);
}

}  // namespace loupe
