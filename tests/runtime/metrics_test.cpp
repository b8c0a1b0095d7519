// Prometheus metrics: HTTP server and client series, loop and task series,
// process series, application metrics, worker loops sharing one set.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/metrics.hpp>
#include <loupe/runtime/runner.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>
#include <loupe/testkit/fixture.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace http = boost::beast::http;
using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

using labels = std::map<std::string, std::string>;

using loupe::metrics::parse_exposition;

// The value of the one sample named `name` whose labels include `want`.
std::optional<double> value_of(const std::string& text, const std::string& name, const labels& want = {}) {
  std::optional<double> found;
  for (const auto& s : parse_exposition(text)) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) match = false;
    }
    if (!match) continue;
    if (found) ADD_FAILURE() << "more than one sample of " << name << " matches";
    found = s.value;
  }
  return found;
}

std::size_t count_lines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line == needle) ++n;
  return n;
}

awaitable<void> get_url(loupe::client_session& s, std::string u, bool& done) {
  co_await s.get(std::move(u));
  done = true;
}
awaitable<void> nothing() { co_return; }
awaitable<void> block_loop(std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);  // blocks the loop on purpose
  co_return;
}
awaitable<void> sleep_long() { co_await loupe::sleep_for(1h); }

class Metrics : public loupe::testkit::server_fixture {
 protected:
  void SetUp() override {
    app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
    app.get("/users/{id}", [](request& req) -> awaitable<response> {
      co_return response::text(std::string(req.match_info().at("id")));
    });
    app.post("/echo", [](request& req) -> awaitable<response> { co_return response::bytes(req.text(), "text/plain"); });
    app.get("/sleep", [](request&) -> awaitable<response> {
      co_await loupe::sleep_for(300ms);
      co_return response::text("slept");
    });
    app.add_metrics_route();
  }

  awaitable<std::string> scrape(loupe::client_session& http) {
    auto res = co_await http.get(url("/metrics"));
    EXPECT_EQ(res.status_code(), 200u);
    EXPECT_EQ(res.header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
    co_return res.text();
  }

  // The server counts a request once its response is written, which the
  // client may see first: scrape until `ready` holds (at most 5 s). Pass a
  // lambda capturing by reference only (GCC 12 and capturing temporaries in
  // co_await expressions; see executor.hpp).
  template <class Pred>
  awaitable<std::string> scrape_until(loupe::client_session& http, Pred ready) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      std::string text = co_await scrape(http);
      if (ready(text) || std::chrono::steady_clock::now() > until) co_return text;
      co_await loupe::sleep_for(2ms);
    }
  }
};

// Requests counted outside the /metrics route.
double counted(const std::string& text) {
  double n = 0;
  for (const auto& s : parse_exposition(text))
    if (s.name == "http_server_requests_total" && s.labels.at("http_route") != "/metrics") n += s.value;
  return n;
}

}  // namespace

TEST_F(Metrics, RequestsCountByMethodRouteTemplateAndStatus) {
  start();
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    for (const char* path : {"/users/1", "/users/2", "/users/3", "/", "/no/such/path"}) co_await http.get(url(path));
    co_await http.request(http::verb::post, url("/"));       // 405: under the route whose path it matched
    loupe::testkit::raw_client raw(loop.get_executor());     // an extension method
    co_await raw.connect(ep);
    co_await raw.send("PURGE / HTTP/1.1\r\nHost: t\r\n\r\n");
    auto purged = co_await raw.read_response();
    EXPECT_EQ(purged.result_int(), 405);
    const std::string text = co_await scrape_until(http, [](const std::string& t) { return counted(t) == 7; });

    const std::string requests = "http_server_requests_total";
    EXPECT_EQ(
        value_of(text, requests,
                 {{"http_request_method", "GET"}, {"http_route", "/users/{id}"}, {"http_response_status_code", "200"}}),
        3.0);
    EXPECT_EQ(value_of(text, requests,
                       {{"http_request_method", "GET"}, {"http_route", "/"}, {"http_response_status_code", "200"}}),
              1.0);
    EXPECT_EQ(
        value_of(text, requests,
                 {{"http_request_method", "GET"}, {"http_route", "_unmatched"}, {"http_response_status_code", "404"}}),
        1.0);
    EXPECT_EQ(value_of(text, requests,
                       {{"http_request_method", "POST"}, {"http_route", "/"}, {"http_response_status_code", "405"}}),
              1.0);
    EXPECT_EQ(value_of(text, requests,
                       {{"http_request_method", "_OTHER"}, {"http_route", "/"}, {"http_response_status_code", "405"}}),
              1.0);
    // Raw paths never become label values.
    EXPECT_EQ(text.find("/no/such/path"), std::string::npos);
    EXPECT_EQ(text.find("/users/1"), std::string::npos);
    EXPECT_EQ(text.find("PURGE"), std::string::npos);
    // Every family has help text and a type.
    EXPECT_EQ(count_lines(text, "# TYPE http_server_requests_total counter"), 1u);
    EXPECT_NE(text.find("# HELP http_server_requests_total "), std::string::npos);
  });
}

TEST_F(Metrics, DurationAndBodySizeHistograms) {
  start();
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    loupe::request_options o;
    o.body = std::string(300, 'x');
    auto res = co_await http.post(url("/echo"), o);
    EXPECT_EQ(res.text().size(), 300u);
    const std::string text = co_await scrape_until(http, [](const std::string& t) { return counted(t) == 1; });
    const labels echo{{"http_route", "/echo"}, {"http_request_method", "POST"}};
    EXPECT_EQ(value_of(text, "http_server_request_body_size_bytes_sum", echo), 300.0);
    EXPECT_EQ(value_of(text, "http_server_response_body_size_bytes_sum", echo), 300.0);
    EXPECT_EQ(value_of(text, "http_server_request_duration_seconds_count", echo), 1.0);
    auto with = [&](const char* le) {
      labels l = echo;
      l["le"] = le;
      return l;
    };
    EXPECT_EQ(value_of(text, "http_server_request_duration_seconds_bucket", with("+Inf")), 1.0);
    EXPECT_TRUE(value_of(text, "http_server_request_duration_seconds_bucket", with("0.0005")));
    EXPECT_TRUE(value_of(text, "http_server_request_duration_seconds_bucket", with("10")));
    EXPECT_EQ(value_of(text, "http_server_request_body_size_bytes_bucket", with("256")), 0.0);
    EXPECT_EQ(value_of(text, "http_server_request_body_size_bytes_bucket", with("1024")), 1.0);
    const auto sum = value_of(text, "http_server_request_duration_seconds_sum", echo);
    EXPECT_TRUE(sum && *sum > 0 && *sum < 10);
  });
}

TEST_F(Metrics, ActiveRequestsAndConnectionsPerLoop) {
  start();
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    loupe::client_session other(loop);
    // One request sleeps while another scrapes: two are active (the scrape too).
    bool slept = false;
    loupe::spawn(loop, "sleeper", get_url(other, url("/sleep"), slept));
    co_await loupe::testkit::wait_until([&] { return srv->requests_in_flight() == 1; });
    const std::string text = co_await scrape(http);
    EXPECT_EQ(value_of(text, "http_server_active_requests", {{"loop", loop.name()}}), 2.0);
    EXPECT_EQ(value_of(text, "http_server_open_connections", {{"loop", loop.name()}}), 2.0);
    EXPECT_EQ(value_of(text, "http_server_connections_accepted_total", {{"loop", loop.name()}}), 2.0);
    co_await loupe::testkit::wait_until([&] { return slept; });
    const std::string after = co_await scrape(http);
    EXPECT_EQ(value_of(after, "http_server_active_requests", {{"loop", loop.name()}}), 1.0);
  });
}

TEST_F(Metrics, RefusedRequestsAreCountedToo) {
  start({.max_header_bytes = 1024});
  run([&]() -> awaitable<void> {
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect(ep);
    co_await c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2048, 'x') + "\r\n\r\n");
    auto res = co_await c.read_response();
    EXPECT_EQ(res.result_int(), 431);
    loupe::testkit::raw_client bad(loop.get_executor());
    co_await bad.connect(ep);
    co_await bad.send("NOT A REQUEST\r\n\r\n");
    auto res2 = co_await bad.read_response();
    EXPECT_EQ(res2.result_int(), 400);
    loupe::client_session http(loop);
    const std::string text = co_await scrape_until(http, [](const std::string& t) { return counted(t) == 2; });
    EXPECT_EQ(value_of(text, "http_server_requests_total", {{"http_response_status_code", "431"}}), 1.0);
    EXPECT_EQ(value_of(text, "http_server_requests_total",
                       {{"http_response_status_code", "400"}, {"http_route", "_unmatched"}}),
              1.0);
  });
}

TEST_F(Metrics, ApplicationRegistersItsOwnOnTheSameRegistry) {
  auto& hits =
      prometheus::BuildCounter().Name("shop_hits_total").Help("Hits.").Register(app.metrics()).Add({{"kind", "web"}});
  app.get("/hit", [&hits](request&) -> awaitable<response> {
    hits.Increment();
    co_return response::text("ok");
  });
  start();
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    co_await http.get(url("/hit"));
    co_await http.get(url("/hit"));
    const std::string text = co_await scrape(http);
    EXPECT_EQ(value_of(text, "shop_hits_total", {{"kind", "web"}}), 2.0);
    EXPECT_NE(text.find("# HELP shop_hits_total Hits."), std::string::npos);
  });
}

TEST_F(Metrics, ClientSessionCountsByMethodServerAndStatus) {
  start();
  // A port nobody listens on: bind one, note it, close it.
  unsigned short closed_port = 0;
  {
    boost::asio::ip::tcp::acceptor a(loop.context(), {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  run([&]() -> awaitable<void> {
    const std::string before = loupe::metrics::exposition(app.metrics());
    loupe::client_session http(loop);
    co_await http.get(url("/"));
    co_await http.get(url("/no/such/path"));
    co_await http.request(http::verb::delete_, url("/"));
    try {
      co_await http.get("http://127.0.0.1:" + std::to_string(closed_port) + "/");
      ADD_FAILURE() << "connected to a closed port";
    } catch (const loupe::client_error&) {
    }
    const std::string after = loupe::metrics::exposition(app.metrics());
    const std::string server = "127.0.0.1:" + std::to_string(ep.port());
    // Client series are process-wide (other tests' sessions count there
    // too): compare with the values before this test's requests.
    const auto delta = [&](const std::string& name, const labels& l) {
      return value_of(after, name, l).value_or(0) - value_of(before, name, l).value_or(0);
    };
    const std::string c = "http_client_requests_total";
    EXPECT_EQ(delta(c,
                    {{"server_address", server}, {"http_request_method", "GET"}, {"http_response_status_code", "200"}}),
              1.0);
    EXPECT_EQ(delta(c,
                    {{"server_address", server}, {"http_request_method", "GET"}, {"http_response_status_code", "404"}}),
              1.0);
    EXPECT_EQ(
        delta(c, {{"server_address", server}, {"http_request_method", "DELETE"}, {"http_response_status_code", "405"}}),
        1.0);
    EXPECT_EQ(delta(c, {{"server_address", "127.0.0.1:" + std::to_string(closed_port)},
                        {"error_type", "connection_failed"}}),
              1.0);
    EXPECT_EQ(delta("http_client_request_duration_seconds_count",
                    {{"server_address", server}, {"http_request_method", "GET"}, {"http_response_status_code", "200"}}),
              1.0);
  });
}

TEST_F(Metrics, SubApplicationMetricsAreScrapedWithTheRoot) {
  auto& mine = prometheus::BuildCounter().Name("shared_total").Help("Shared.").Register(app.metrics());
  mine.Add({{"where", "root"}}).Increment(2);
  loupe::application admin;
  // Registered before mounting, in the sub-application's own registry.
  prometheus::BuildCounter()
      .Name("admin_actions_total")
      .Help("Admin actions.")
      .Register(admin.metrics())
      .Add({})
      .Increment(3);
  prometheus::BuildCounter()
      .Name("shared_total")
      .Help("Shared.")
      .Register(admin.metrics())
      .Add({{"where", "admin"}})
      .Increment(5);
  auto& mounted = app.add_subapp("/admin", std::move(admin));
  EXPECT_EQ(&mounted.metrics(), &app.metrics());  // from now on, the root's
  start();
  run([&]() -> awaitable<void> {
    loupe::client_session http(loop);
    co_await http.get(url("/"));
    auto served = [](const std::string& t) { return counted(t) == 1.0; };
    const std::string text = co_await scrape_until(http, served);
    EXPECT_EQ(value_of(text, "admin_actions_total"), 3.0);
    EXPECT_EQ(value_of(text, "shared_total", {{"where", "root"}}), 2.0);
    EXPECT_EQ(value_of(text, "shared_total", {{"where", "admin"}}), 5.0);
    // One family, not two (a scrape with a family twice is invalid).
    EXPECT_EQ(count_lines(text, "# TYPE shared_total counter"), 1u);
    EXPECT_EQ(count_lines(text, "# TYPE http_server_requests_total counter"), 1u);
  });
}

TEST(MetricsLoop, LoopNamesAreUniqueAmongLiveLoops) {
  std::optional<loupe::loop> a(std::in_place, "twin");
  loupe::loop b("twin");
  loupe::loop c("twin");
  EXPECT_EQ(a->name(), "twin");
  EXPECT_EQ(b.name(), "twin-2");
  EXPECT_EQ(c.name(), "twin-3");
  const std::string text = loupe::metrics::exposition(prometheus::Registry{});
  std::size_t series = 0;
  for (const auto& smp : parse_exposition(text))
    if (smp.name == "loupe_tasks" && smp.labels.at("loop").starts_with("twin")) ++series;
  EXPECT_EQ(series, 3u);  // one per loop, none twice
  a.reset();
  loupe::loop d("twin");  // the name is free again
  EXPECT_EQ(d.name(), "twin");
}

TEST(MetricsLoop, LoopAndTaskSeriesAreReadFromTheLoops) {
  loupe::loop lp("metrics-loop-test");
  const auto saved = loupe::get_tracking_options();
  loupe::set_tracking_options({.slow_callback = 20ms, .watchdog = 0ms});
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    for (int i = 0; i < 5; ++i) co_await loupe::spawn(lp, "quick", nothing(), boost::asio::use_awaitable);
    // One slow callback, and one cancelled task.
    co_await loupe::spawn(lp, "slow", block_loop(30ms), boost::asio::use_awaitable);
    const auto id = loupe::spawn(lp, "forever", sleep_long());
    co_await loupe::sleep_for(1ms);
    lp.cancel(id);
    co_await loupe::testkit::wait_until([&] { return !lp.find_task(id); });
  });
  loupe::set_tracking_options(saved);
  const std::string text = loupe::metrics::exposition(prometheus::Registry{});
  const labels mine{{"loop", "metrics-loop-test"}};
  EXPECT_GE(value_of(text, "loupe_tasks_finished_total", {{"loop", "metrics-loop-test"}, {"outcome", "ok"}}).value_or(0),
            6.0);
  EXPECT_EQ(value_of(text, "loupe_tasks_finished_total", {{"loop", "metrics-loop-test"}, {"outcome", "cancelled"}}), 1.0);
  EXPECT_GE(value_of(text, "loupe_tasks_spawned_total", mine).value_or(0), 8.0);
  EXPECT_EQ(value_of(text, "loupe_loop_slow_callbacks_total", mine), 1.0);
  EXPECT_EQ(value_of(text, "loupe_loop_stalls_total", mine), 0.0);
  const auto count = value_of(text, "loupe_loop_callback_duration_seconds_count", mine);
  ASSERT_TRUE(count);
  EXPECT_GT(*count, 5.0);
  labels inf = mine;
  inf["le"] = "+Inf";
  EXPECT_EQ(value_of(text, "loupe_loop_callback_duration_seconds_bucket", inf), count);
  labels fast = mine;
  fast["le"] = "0.01";
  EXPECT_LE(value_of(text, "loupe_loop_callback_duration_seconds_bucket", fast).value_or(1e9), *count - 1);
  const auto busy = value_of(text, "loupe_loop_callback_duration_seconds_sum", mine);
  EXPECT_TRUE(busy && *busy >= 0.03);
  EXPECT_TRUE(value_of(text, "loupe_tasks", mine));
  EXPECT_TRUE(value_of(text, "loupe_loop_lag_seconds_count", mine));
  EXPECT_TRUE(value_of(text, "loupe_log_records_dropped_total"));
}

TEST(MetricsProcess, ProcessSeriesComeFromProc) {
  const std::string text = loupe::metrics::exposition(prometheus::Registry{});
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto start = value_of(text, "process_start_time_seconds");
  ASSERT_TRUE(start);
  EXPECT_LE(*start, now + 1);
  EXPECT_GT(*start, now - 3600);  // this test binary started within the hour
  EXPECT_GT(value_of(text, "process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_GT(value_of(text, "process_virtual_memory_bytes").value_or(0),
            value_of(text, "process_resident_memory_bytes").value_or(0));
  EXPECT_GE(value_of(text, "process_open_fds").value_or(0), 3.0);
  EXPECT_GT(value_of(text, "process_max_fds").value_or(0), value_of(text, "process_open_fds").value_or(0));
  EXPECT_GE(value_of(text, "process_cpu_seconds_total").value_or(-1), 0.0);
}

TEST(MetricsRunner, WorkerLoopsShareOneSetWithPerLoopSeries) {
  loupe::loop main("main");
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  app.add_metrics_route();
  loupe::app_runner runner(main, app, {.host = "127.0.0.1", .port = 0, .workers = 2});
  loupe::testkit::run(main, [&]() -> awaitable<void> {
    const auto ep = co_await runner.start();
    std::vector<loupe::testkit::raw_client> clients;
    for (int i = 0; i < 16; ++i) {
      clients.emplace_back(main.get_executor());
      co_await clients.back().connect(ep);
    }
    for (auto& c : clients)
      for (int k = 0; k < 3; ++k) {
        auto res = co_await c.request(http::verb::get, "/");
        EXPECT_EQ(res.result_int(), 200);
      }
    // A worker loop counts a request once its response is written, which the
    // client may see first: wait (bounded) for the last ones.
    std::string text;
    co_await loupe::testkit::wait_until([&] {
      text = loupe::metrics::exposition(app.metrics());
      return value_of(text, "http_server_requests_total", {{"http_route", "/"}}) == 48.0;
    });
    EXPECT_EQ(count_lines(text, "# TYPE http_server_requests_total counter"), 1u);
    EXPECT_EQ(value_of(text, "http_server_requests_total", {{"http_route", "/"}}), 48.0);
    // One series per loop for the per-loop families.
    EXPECT_TRUE(value_of(text, "http_server_connections_accepted_total", {{"loop", "main"}}));
    EXPECT_TRUE(value_of(text, "http_server_connections_accepted_total", {{"loop", "worker-1"}}));
    const double accepted = value_of(text, "http_server_connections_accepted_total", {{"loop", "main"}}).value_or(0) +
                            value_of(text, "http_server_connections_accepted_total", {{"loop", "worker-1"}}).value_or(0);
    EXPECT_EQ(accepted, 16.0);
    EXPECT_TRUE(value_of(text, "loupe_loop_callback_duration_seconds_count", {{"loop", "worker-1"}}));
    co_await runner.stop(1s);
  });
}

TEST(MetricsText, MethodLabelFollowsOpenTelemetry) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
    EXPECT_EQ(loupe::metrics::method_label(m), m);
  EXPECT_EQ(loupe::metrics::method_label("PURGE"), "_OTHER");
  EXPECT_EQ(loupe::metrics::method_label("get"), "_OTHER");
  EXPECT_EQ(loupe::metrics::method_label(""), "_OTHER");
}
