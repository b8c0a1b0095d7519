// testkit: the loupe test fixture — servers, clients, the host map, teardown
// in order, and the end-of-test checks (connections, tasks, logs, slow callbacks).
#include <loupe/testkit/test.hpp>
#include <loupe/testkit/tls.hpp>

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>

#include <sstream>

namespace loupe::testkit {

using namespace std::chrono_literals;

using detail::ms;

namespace {
void fail(const std::string& message);
}  // namespace

// The capture is installed by the constructor and the checks run from
// TearDown (or the destructor), so that fixtures overriding SetUp/TearDown
// without calling these still get them.
test::test() {
  log::options o;
  o.level = log::level();
  o.queue_size = 1 << 16;  // a test's records are all kept, not overrun
  o.sinks = {capture_.sink()};
  log::configure(o);
}

test::~test() {
  if (finished_) return;
  // TearDown was overridden without calling test::TearDown(): the derived
  // fixture's members (its application) are gone, so the loop must not run.
  fail("a fixture overrode TearDown() without calling loupe::testkit::test::TearDown(): "
       "the end-of-test checks did not run");
  finished_ = true;
  clients_.clear();
  links_.clear();
  servers_.clear();
}

void test::SetUp() {}

void test::TearDown() { finish(); }

test_server& test::server(application& app, server_options opts) {
  servers_.push_back(std::make_unique<test_server>(loop, app, std::move(opts), network_));
  return *servers_.back();
}

test_server& test::server(application&& app, server_options opts) {
  owned_apps_.push_back(std::move(app));
  return server(owned_apps_.back(), std::move(opts));
}

test_server& test::raw_server(handler h, server_options opts) {
  servers_.push_back(std::make_unique<raw_test_server>(loop, std::move(h), std::move(opts), network_));
  return *servers_.back();
}

test_client& test::client(const test_server& srv, client_options opts) { return client(srv.url(""), std::move(opts)); }

test_client& test::client(const chaos_link& link, client_options opts) { return client(link.url(""), std::move(opts)); }

test_client& test::client(std::string base_url, client_options opts) {
  // An https base URL: the test CA's servers are trusted (tls.hpp).
  if (base_url.starts_with("https://") && opts.tls.verify && opts.tls.ca_file.empty() && opts.tls.ca_pem.empty())
    opts.tls.ca_pem = test_ca::shared().cert_pem();
  clients_.push_back(std::make_unique<test_client>(loop, std::move(base_url), std::move(opts)));
  return *clients_.back();
}

void test::map_host(std::string host, const test_server& srv) { map_host(std::move(host), srv.where()); }
void test::map_host(std::string host, const chaos_link& link) { map_host(std::move(host), link.where()); }
void test::map_host(std::string host, const address& to) {
  if (to.in_memory()) loupe::map_host(loop, std::move(host), memory_endpoint{to.memory});
  else loupe::map_host(loop, std::move(host), to.tcp);
}

chaos_link& test::chaos(const test_server& srv, link_faults faults) {
  links_.push_back(std::make_unique<chaos_link>(loop, srv.where(), std::move(faults)));
  return *links_.back();
}
void test::map_host(std::string host, const fault_server& srv) { loupe::map_host(loop, std::move(host), srv.endpoint()); }

client_response test::fetch(const test_server& srv, std::string_view path, boost::beast::http::verb method,
                            request_options opts) {
  if (loop::current() == &loop)
    throw std::logic_error("testkit::test::fetch runs the loop itself: call it outside a coroutine body "
                           "(inside one, co_await client(srv).get(...))");
  auto& http = client(srv);
  const std::string target(path);
  return testkit::run(
      loop, [&]() -> awaitable<client_response> { co_return co_await http.request(method, target, opts); }, deadline_);
}

void test::forbid_slow_callbacks(std::chrono::milliseconds limit) {
  if (!slow_limit_) saved_slow_ = get_tracking_options().slow_callback;
  slow_limit_ = limit;
  auto t = get_tracking_options();
  t.slow_callback = limit;
  set_tracking_options(t);
}

std::vector<log_record> test::logs(const log_query& q) const { return capture_.find(q); }

void test::expect_log(log_query q) { expected_logs_.push_back(std::move(q)); }

namespace {
// A failure reported at the test's own file and line, not at this file's.
void fail(const std::string& message) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  GTEST_MESSAGE_AT_(info ? info->file() : __FILE__, info ? info->line() : __LINE__, message.c_str(),
                    ::testing::TestPartResult::kNonFatalFailure);
}
}  // namespace

void test::report_body_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const detail::fatal_failure&) {
    // Already reported by CO_ASSERT_*.
  } catch (const deadline_exceeded& d) {
    fail(d.what());
  } catch (const deadlock_detected& d) {
    fail(d.what());
  } catch (const std::exception& x) {
    fail(std::string("the test body threw: ") + x.what());
  } catch (...) {
    fail("the test body threw a non-standard exception");
  }
}

void test::finish() {
  if (finished_) return;
  finished_ = true;
  std::string leaked_connections;
  try {
    testkit::run(
        loop,
        [&]() -> awaitable<void> {
          // Clients first: what they keep open is theirs, not a leak.
          for (auto& c : clients_) co_await c->close();
          // Chaos links next: they stand between the clients and the servers.
          for (auto& l : links_) co_await l->close();
          // Then every server must see its connections end (bounded wait:
          // a closed client's connection ends when the server reads EOF).
          const auto until = loupe::clock::now() + 500ms;
          auto open = [&] {
            std::size_t n = 0;
            for (auto& s : servers_) n += s->closed() ? 0 : s->native().connection_count();
            return n;
          };
          while (open() > 0 && loupe::clock::now() < until) co_await sleep_for(2ms);
          for (auto& s : servers_) {
            if (s->closed()) continue;
            for (const auto& c : s->native().connections()) {
              leaked_connections += (c.memory ? "  in memory"
                                              : "  from " + c.remote.address().to_string() + ":" +
                                                    std::to_string(c.remote.port())) +
                                    " to the server at " + s->where().text() +
                                    (c.websocket    ? " (a WebSocket)"
                                     : c.in_handler ? " (a request in its handler)"
                                                    : " (idle keep-alive)") +
                                    "\n";
            }
          }
          for (auto& s : servers_) co_await s->close(1s);
          // Then whatever the test started must have ended.
          const auto drained = loupe::clock::now() + 1s;
          while (loop.live_task_count() > 1 && loupe::clock::now() < drained) co_await sleep_for(2ms);
        },
        10s);
  } catch (const std::exception& e) {
    fail(std::string("teardown did not finish: ") + e.what());
  }
  if (leak_check_) {
    if (!leaked_connections.empty()) fail("connection(s) left open at the end of the test:\n" + leaked_connections);
    if (loop.live_task_count() > 0)
      fail("task(s) left alive at the end of the test (leaked): " + describe_live_tasks(loop));
  }
  check_slow_callbacks();
  check_logs();
  if (HasFailure()) {
    const auto recs = capture_.records();
    std::ostringstream out;
    const std::size_t from = recs.size() > 200 ? recs.size() - 200 : 0;
    out << "captured log (" << recs.size() << " record(s)" << (from ? ", the last 200" : "") << "):\n";
    for (std::size_t i = from; i < recs.size(); ++i) out << "  " << recs[i].line << "\n";
    std::fputs(out.str().c_str(), stdout);
  }
  clients_.clear();
  links_.clear();
  servers_.clear();
  if (slow_limit_) {
    auto t = get_tracking_options();
    t.slow_callback = saved_slow_;
    set_tracking_options(t);
  }
  log::options restore;
  restore.level = log::level();
  log::configure(restore);
}

void test::check_slow_callbacks() {
  if (!slow_limit_) return;
  for (const auto& e : loop.slow_events()) {
    if (e.type != slow_event::kind::slow_callback || e.duration < *slow_limit_) continue;
    std::string what = "a callback ran " + ms(e.duration) + " (limit " + std::to_string(slow_limit_->count()) + " ms)";
    if (e.task_id) what += " in task #" + std::to_string(e.task_id) + " '" + e.task_name + "'";
    if (auto r = to_string(e.request); !r.empty()) what += ", serving " + r + detail::request_id_text(e.request);
    if (auto w = to_string(e.resumed_from); !w.empty()) what += ", resumed from " + w;
    fail("slow callback: " + what);
  }
}

void test::check_logs() {
  const auto recs = capture_.records();
  std::vector<bool> seen(expected_logs_.size(), false);
  std::string unexpected;
  for (const auto& r : recs) {
    bool expected = false;
    for (std::size_t i = 0; i < expected_logs_.size(); ++i)
      if (expected_logs_[i].matches(r)) expected = seen[i] = true;
    if (!expected && r.level >= spdlog::level::err && r.level != spdlog::level::off) unexpected += "  " + r.line + "\n";
  }
  if (!unexpected.empty())
    fail("unexpected ERROR log record(s) (an exception escaping a handler logs one; "
         "expect_log() them if the test means it):\n" +
         unexpected);
  for (std::size_t i = 0; i < expected_logs_.size(); ++i)
    if (!seen[i]) fail("expected a log record matching " + expected_logs_[i].describe() + ", saw none");
}

}  // namespace loupe::testkit
