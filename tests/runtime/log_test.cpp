// The JSON log formatter keeps every line valid JSON.
#include <loupe/runtime/log.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/run.hpp>
#include <loupe/testkit/wait.hpp>
#include <loupe/runtime/task.hpp>
#include <loupe/runtime/tracking.hpp>
#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

using loupe::awaitable;
using namespace std::chrono_literals;

TEST(LogJson, EscapingProducesValidJsonForHostileText) {
  const std::string hostile[] = {
      "plain", "quote \" backslash \\ slash /", "new\nline\r\ttab", std::string("nul\0byte", 8),
      "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff\xfe utf8 \xc3",
      "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "{\"inject\":1}"};
  for (const auto& s : hostile) {
    std::string out = "\"";
    loupe::log::append_json_escaped(out, s);
    out += "\"";
    boost::system::error_code ec;
    auto v = boost::json::parse(out, ec);
    ASSERT_FALSE(ec) << "invalid JSON for input of size " << s.size() << ": " << out;
    ASSERT_TRUE(v.is_string());
  }
  std::string valid = "\"";
  loupe::log::append_json_escaped(valid, "caf\xc3\xa9 \"q\"\n");
  valid += "\"";
  EXPECT_EQ(boost::json::parse(valid).as_string(), "caf\xc3\xa9 \"q\"\n");
}

TEST(LogJson, FormatParsing) {
  EXPECT_EQ(loupe::log::parse_format("json"), loupe::log::format::json);
  EXPECT_EQ(loupe::log::parse_format("text"), loupe::log::format::text);
  EXPECT_THROW(loupe::log::parse_format("xml"), std::invalid_argument);
}

// ---- the logger end to end: records through spdlog into a sink -------------

namespace {

// Collects finished lines; optionally blocks until released (a slow disk).
class collecting_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  void hold() { held_ = true; }
  void release() {
    {
      std::lock_guard lock(gate_m_);
      held_ = false;
    }
    gate_.notify_all();
  }
  bool wait_blocked(std::chrono::milliseconds d) {
    std::unique_lock lock(gate_m_);
    return gate_.wait_for(lock, d, [&] { return blocked_; });
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    {
      std::unique_lock lock(gate_m_);
      if (held_) {
        blocked_ = true;
        gate_.notify_all();
        gate_.wait(lock, [&] { return !held_.load(); });
      }
    }
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    lines_.emplace_back(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
  std::mutex gate_m_;
  std::condition_variable gate_;
  std::atomic<bool> held_{false};
  bool blocked_ = false;
};

class Log : public ::testing::Test {
 protected:
  void SetUp() override { use({}); }
  void TearDown() override {
    sink->release();
    loupe::log::configure({});  // back to stderr
  }
  void use(loupe::log::options o) {
    sink = std::make_shared<collecting_sink>();
    o.sinks = {sink};
    loupe::log::configure(o);
  }
  // Every line written so far, each parsed as one JSON object.
  std::vector<boost::json::object> records() {
    EXPECT_TRUE(loupe::log::flush());
    std::vector<boost::json::object> out;
    for (const auto& line : sink->lines()) {
      EXPECT_FALSE(line.empty());
      EXPECT_EQ(line.back(), '\n');
      EXPECT_EQ(line.find('\n'), line.size() - 1) << "one record per line: " << line;
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      EXPECT_FALSE(ec) << "not JSON: " << line;
      if (!ec) {
        EXPECT_TRUE(v.is_object()) << line;
        if (v.is_object()) out.push_back(v.as_object());
      }
    }
    return out;
  }
  std::shared_ptr<collecting_sink> sink;
};

const std::string hostile[] = {
    "plain", "quote \" backslash \\ slash /", "new\nline\r\ttab", std::string("nul\0byte", 8),
    "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff\xfe utf8 \xc3",
    "overlong \xc0\xaf", "surrogate \xed\xa0\x80", "{\"inject\":1}", "\"}\n{\"level\":\"fake\"", "{}",
    std::string(3000, 'x') + "\xe2\x82"};

bool valid_utf8(const std::string& s) {
  std::string out;
  loupe::log::append_json_escaped(out, s);
  return out.find("\xef\xbf\xbd") == std::string::npos;
}

awaitable<void> log_inside() {
  loupe::log::app().info("inside a task");
  co_return;
}

}  // namespace

TEST_F(Log, HostileMessagesAndFieldsGiveOneValidJsonObjectPerLine) {
  for (const auto& s : hostile) {
    loupe::log::app().warn("{}", s);
    loupe::log::write(loupe::log::runtime(), spdlog::level::err, s,
                      {{s, s}, {"n", -42}, {"u", std::uint64_t{18446744073709551615ull}}, {"pi", 3.25},
                       {"nan", std::nan("")}, {"yes", true}, {"msg", "not the message"}, {"ts", 1}});
  }
  const auto recs = records();
  ASSERT_EQ(recs.size(), 2 * std::size(hostile));
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    const auto& input = hostile[i / 2];
    for (const char* key : {"ts", "level", "logger", "msg"}) EXPECT_TRUE(r.contains(key)) << key;
    if (valid_utf8(input)) {
      EXPECT_EQ(r.at("msg").as_string(), input);
    }
    // RFC 3339 UTC with milliseconds.
    const std::string ts(r.at("ts").as_string());
    EXPECT_EQ(ts.size(), 24u) << ts;
    EXPECT_EQ(ts[10], 'T');
    EXPECT_EQ(ts[19], '.');
    EXPECT_EQ(ts.back(), 'Z');
    EXPECT_FALSE(r.contains("task_id"));  // not inside a task
    if (i % 2 == 0) {
      EXPECT_EQ(r.at("level"), "warning");
      EXPECT_EQ(r.at("logger"), "app");
      continue;
    }
    EXPECT_EQ(r.at("level"), "error");
    EXPECT_EQ(r.at("logger"), "loupe");
    EXPECT_EQ(r.at("n").as_int64(), -42);
    EXPECT_EQ(r.at("u").as_uint64(), 18446744073709551615ull);
    EXPECT_EQ(r.at("pi").as_double(), 3.25);
    EXPECT_TRUE(r.at("nan").is_null());
    EXPECT_EQ(r.at("yes").as_bool(), true);
    // A field never replaces the record's own keys.
    EXPECT_EQ(r.at("field_msg"), "not the message");
    EXPECT_EQ(r.at("field_ts").as_int64(), 1);
    if (valid_utf8(input)) {
      EXPECT_EQ(r.at("msg").as_string(), input);
      if (input != "msg" && input != "ts") {
        EXPECT_EQ(r.at(input).as_string(), input);
      }
    }
  }
}

TEST_F(Log, TextFormatKeepsOneRecordPerLine) {
  use({.format = loupe::log::format::text});
  loupe::log::write(loupe::log::app(), spdlog::level::info, "two\nlines", {{"key", "a value"}, {"n", 3}});
  ASSERT_TRUE(loupe::log::flush());
  const auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("info"), std::string::npos);
  EXPECT_NE(lines[0].find("[app] two\\nlines key=\"a value\" n=3\n"), std::string::npos) << lines[0];
}

TEST_F(Log, RecordsInsideATaskCarryItsIdAndName) {
  loupe::loop lp("log-test");
  const auto id = loupe::spawn(lp, "ctx-task", log_inside());
  lp.run();
  loupe::log::app().info("outside");
  const auto recs = records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].at("task_id").as_int64(), static_cast<std::int64_t>(id));
  EXPECT_EQ(recs[0].at("task"), "ctx-task");
  EXPECT_FALSE(recs[0].contains("request_id"));
  EXPECT_FALSE(recs[1].contains("task_id"));
}

TEST_F(Log, ExplicitContextNamesAnotherTask) {
  loupe::log::write(loupe::log::runtime(), spdlog::level::warn, "about task 7", {{"k", "v"}},
                    {7, "someone", "req-7"});
  const auto recs = records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].at("task_id").as_int64(), 7);
  EXPECT_EQ(recs[0].at("task"), "someone");
  EXPECT_EQ(recs[0].at("request_id"), "req-7");
  EXPECT_EQ(recs[0].at("k"), "v");
}

TEST_F(Log, AFullQueueDropsAndCountsInsteadOfBlocking) {
  use({.queue_size = 8});
  sink->hold();
  loupe::log::app().info("first");  // the writer takes it and blocks in the sink
  ASSERT_TRUE(sink->wait_blocked(5s));
  const auto dropped_before = loupe::log::dropped_records();
  // The writer is stuck: 100 more records must not wait for it.
  auto writes = std::async(std::launch::async, [] {
    for (int i = 0; i < 100; ++i) loupe::log::app().info("record {}", i);
  });
  const bool returned = writes.wait_for(5s) == std::future_status::ready;
  sink->release();
  writes.wait();
  EXPECT_TRUE(returned) << "a logging call waited for the writer";
  const auto dropped = loupe::log::dropped_records() - dropped_before;
  EXPECT_EQ(dropped, 100u - 8u);
  const auto recs = records();
  ASSERT_EQ(recs.size(), 1u + 8u);
  EXPECT_EQ(recs[0].at("msg"), "first");
  EXPECT_EQ(recs[1].at("msg"), "record 92");  // the oldest were dropped
  EXPECT_EQ(recs[8].at("msg"), "record 99");
}

// A barrier (what flush() waits for) pushed out of a full queue must not
// leave later flushes waiting for it.
TEST_F(Log, AFlushPushedOutOfAFullQueueDoesNotBreakLaterFlushes) {
  use({.queue_size = 8});
  sink->hold();
  loupe::log::app().info("first");
  ASSERT_TRUE(sink->wait_blocked(5s));
  loupe::log::app().flush();  // queues a barrier without waiting for room
  for (int i = 0; i < 20; ++i) loupe::log::app().info("record {}", i);  // pushes it out
  sink->release();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(loupe::log::flush(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "flush waited for the barrier that was dropped";
  EXPECT_EQ(records().back().at("msg"), "record 19");
}

// Reconfiguring while other threads log: every line stays whole, and the old
// writer is drained by configure() itself.
TEST_F(Log, ConfigureWhileOtherThreadsLog) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&stop, t] {
      for (int i = 0; !stop.load(); ++i) loupe::log::info(loupe::log::app(), "busy", {{"thread", t}, {"i", i}});
    });
  std::vector<std::shared_ptr<collecting_sink>> sinks;
  for (int round = 0; round < 20; ++round) {
    use({.queue_size = 256});
    sinks.push_back(sink);
    std::this_thread::sleep_for(2ms);
  }
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_TRUE(loupe::log::flush(5s));
  std::size_t lines = 0;
  for (const auto& s : sinks)
    for (const auto& line : s->lines()) {
      ++lines;
      boost::system::error_code ec;
      auto v = boost::json::parse(line, ec);
      ASSERT_FALSE(ec) << line;
      EXPECT_EQ(v.as_object().at("msg"), "busy");
    }
  EXPECT_GT(lines, 0u);
}

TEST_F(Log, LevelChangesWhileRunning) {
  loupe::log::set_level(spdlog::level::warn);
  EXPECT_EQ(loupe::log::level(), spdlog::level::warn);
  loupe::log::app().info("hidden");
  loupe::log::write(loupe::log::access(), spdlog::level::info, "hidden too");
  loupe::log::app().warn("shown");
  loupe::log::set_level(spdlog::level::info);
  loupe::log::app().info("shown again");
  const auto recs = records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].at("msg"), "shown");
  EXPECT_EQ(recs[1].at("msg"), "shown again");
}

TEST(LogLevels, Parsing) {
  EXPECT_EQ(loupe::log::parse_level("debug"), spdlog::level::debug);
  EXPECT_EQ(loupe::log::parse_level("warn"), spdlog::level::warn);
  EXPECT_EQ(loupe::log::parse_level("warning"), spdlog::level::warn);
  EXPECT_EQ(loupe::log::parse_level("off"), spdlog::level::off);
  EXPECT_THROW(loupe::log::parse_level("loud"), std::invalid_argument);
}

namespace {
awaitable<void> child_logs() {
  loupe::log::app().info("from a child task");
  co_return;
}
}  // namespace

// A handler's record, its child task's record and the access record carry the
// request's id; the handler's and the access record the request task's id.
TEST_F(Log, RequestRecordsShareTheRequestIdWithTheAccessLog) {
  loupe::loop lp("log-request");
  loupe::application app;
  app.get("/work", [&lp](loupe::request&) -> awaitable<loupe::response> {
    loupe::log::info(loupe::log::app(), "working", {{"step", 1}});
    co_await loupe::spawn(lp, "helper", child_logs(), boost::asio::use_awaitable);
    co_return loupe::response::text("done");
  });
  loupe::server srv(lp, app);
  const auto ep = srv.listen("127.0.0.1", 0);
  std::vector<std::string> ids;
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::client_session http(lp);
    const std::string url = "http://127.0.0.1:" + std::to_string(ep.port()) + "/work";
    loupe::request_options sane;
    sane.headers = {{"X-Request-ID", "client-id-1"}};
    ids.emplace_back((co_await http.get(url, sane)).header("X-Request-ID").value_or(""));
    loupe::request_options spaced;
    spaced.headers = {{"X-Request-ID", "has space"}};
    ids.emplace_back((co_await http.get(url, spaced)).header("X-Request-ID").value_or(""));
    loupe::request_options long_id;
    long_id.headers = {{"X-Request-ID", std::string(129, 'a')}};
    ids.emplace_back((co_await http.get(url, long_id)).header("X-Request-ID").value_or(""));
    ids.emplace_back((co_await http.get(url)).header("X-Request-ID").value_or(""));
    ids.emplace_back((co_await http.get(url)).header("X-Request-ID").value_or(""));
    // The access record follows the write, which the client may see first.
    co_await loupe::testkit::wait_until([&] { return srv.requests_served() == 5; });
  });
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[0], "client-id-1");
  for (std::size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].size(), 32u) << ids[i];
    EXPECT_EQ(ids[i].find_first_not_of("0123456789abcdef"), std::string::npos) << ids[i];
  }
  EXPECT_NE(ids[3], ids[4]);

  const auto recs = records();
  for (const auto& id : ids) {
    const boost::json::object *handler = nullptr, *child = nullptr, *access = nullptr;
    for (const auto& r : recs) {
      if (!r.contains("request_id") || r.at("request_id") != id.c_str()) continue;
      if (r.at("msg") == "working") handler = &r;
      if (r.at("msg") == "from a child task") child = &r;
      if (r.at("logger") == "loupe.access") access = &r;
    }
    ASSERT_TRUE(handler && child && access) << "records for request " << id;
    EXPECT_EQ(handler->at("task"), "http.request");
    EXPECT_EQ(handler->at("step").as_int64(), 1);
    EXPECT_EQ(access->at("task_id"), handler->at("task_id"));
    EXPECT_EQ(child->at("task"), "helper");
    EXPECT_NE(child->at("task_id"), handler->at("task_id"));
    EXPECT_EQ(access->at("method"), "GET");
    EXPECT_EQ(access->at("path"), "/work");
    EXPECT_EQ(access->at("route"), "/work");
    EXPECT_EQ(access->at("status").as_int64(), 200);
    EXPECT_EQ(access->at("response_bytes").as_int64(), 4);
    EXPECT_EQ(access->at("remote"), "127.0.0.1");
    EXPECT_TRUE(access->at("duration_ms").is_double());
    EXPECT_NE(std::string(access->at("user_agent").as_string()).find("loupe"), std::string::npos);
  }
}

// A request refused before the application (bad framing, a malformed field)
// still gets a request id, echoed in the error response and in its access
// record, with what could safely be read of its request line.
TEST_F(Log, RefusedRequestsGetARequestIdAndAnAccessRecord) {
  loupe::loop lp("log-refused");
  loupe::application app;
  app.get("/", [](loupe::request&) -> awaitable<loupe::response> { co_return loupe::response::text("hi"); });
  loupe::server srv(lp, app, {.max_header_bytes = 4096});
  const auto ep = srv.listen("127.0.0.1", 0);
  std::string bad_id, field_id;
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::testkit::raw_client bad(lp.get_executor());
    co_await bad.connect(ep);
    co_await bad.send("GET /framing HTTP/1.1\r\nHost: a\r\nUser-Agent: refusal-test/1\r\n"
                      "X-Request-ID: refused-1\r\nTransfer-Encoding: gzip\r\n\r\n");
    auto res = co_await bad.read_response();
    EXPECT_EQ(res.result_int(), 400);
    bad_id = std::string(res["X-Request-ID"]);
    loupe::testkit::raw_client field(lp.get_executor());
    co_await field.connect(ep);
    co_await field.send("PUT /fields HTTP/1.1\r\nHost: a\r\nBad Name: p\r\n\r\n");
    res = co_await field.read_response();
    EXPECT_EQ(res.result_int(), 400);
    field_id = std::string(res["X-Request-ID"]);
    // The access records follow the writes, which the client may see first.
    co_await loupe::testkit::wait_until([&] {
      loupe::log::flush();
      std::size_t n = 0;
      for (const auto& line : sink->lines()) n += line.find("\"loupe.access\"") != std::string::npos;
      return n == 2;
    });
  });
  EXPECT_EQ(bad_id, "refused-1");
  EXPECT_EQ(field_id.size(), 32u) << field_id;
  const boost::json::object *bad = nullptr, *field = nullptr;
  const auto recs = records();
  for (const auto& r : recs) {
    if (r.at("logger") != "loupe.access") continue;
    if (r.at("request_id") == "refused-1") bad = &r;
    else field = &r;
  }
  ASSERT_TRUE(bad && field);
  EXPECT_EQ(bad->at("request_id"), "refused-1");
  EXPECT_EQ(bad->at("method"), "GET");
  EXPECT_EQ(bad->at("path"), "/framing");
  EXPECT_EQ(bad->at("route"), "_unmatched");
  EXPECT_EQ(bad->at("user_agent"), "refusal-test/1");
  EXPECT_EQ(field->at("request_id"), field_id.c_str());
  EXPECT_EQ(field->at("method"), "PUT");  // the request line was parsed before the bad field
  EXPECT_EQ(field->at("path"), "/fields");
}

TEST_F(Log, AccessLogCanBeTurnedOff) {
  loupe::loop lp("log-quiet");
  loupe::application app;
  app.get("/", [](loupe::request&) -> awaitable<loupe::response> { co_return loupe::response::text("hi"); });
  loupe::server srv(lp, app, {.access_log = false});
  const auto ep = srv.listen("127.0.0.1", 0);
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::client_session http(lp);
    auto res = co_await http.get("http://127.0.0.1:" + std::to_string(ep.port()) + "/");
    EXPECT_EQ(res.status_code(), 200u);
    co_await loupe::testkit::wait_until([&] { return srv.requests_served() == 1; });
  });
  for (const auto& r : records()) EXPECT_NE(r.at("logger"), "loupe.access") << r;
}

TEST_F(Log, SlowCallbackRecordNamesTheRequestThatCausedIt) {
  const auto saved = loupe::get_tracking_options();
  loupe::set_tracking_options({.slow_callback = 20ms, .watchdog = 0ms});
  loupe::loop lp("log-slow");
  loupe::application app;
  app.get("/block", [](loupe::request&) -> awaitable<loupe::response> {
    loupe::log::app().info("about to block");
    std::this_thread::sleep_for(40ms);  // blocks the loop on purpose
    co_return loupe::response::text("blocked");
  });
  loupe::server srv(lp, app);
  const auto ep = srv.listen("127.0.0.1", 0);
  loupe::testkit::run(lp, [&]() -> awaitable<void> {
    loupe::client_session http(lp);
    loupe::request_options o;
    o.headers = {{"X-Request-ID", "slow-1"}};
    co_await http.get("http://127.0.0.1:" + std::to_string(ep.port()) + "/block", o);
    co_await loupe::testkit::wait_until([&] { return srv.requests_served() == 1; });
  });
  loupe::set_tracking_options(saved);
  const boost::json::object *handler = nullptr, *slow = nullptr, *access = nullptr;
  const auto recs = records();
  for (const auto& r : recs) {
    if (r.at("msg") == "about to block") handler = &r;
    if (r.contains("event") && r.at("event") == "slow_callback") slow = &r;
    if (r.at("logger") == "loupe.access") access = &r;
  }
  ASSERT_TRUE(handler && slow && access);
  for (const auto* r : {handler, slow, access}) {
    EXPECT_EQ(r->at("request_id"), "slow-1") << *r;
    EXPECT_EQ(r->at("task_id"), handler->at("task_id")) << *r;
  }
  EXPECT_EQ(slow->at("level"), "warning");
  EXPECT_EQ(slow->at("route"), "/block");
  EXPECT_GE(slow->at("duration_ms").as_double(), 40.0);
}

// Records written on a loop's thread are staged and handed to the writer in
// batches: they must still arrive without anyone calling flush(), and when
// the loop stops with records staged.
TEST_F(Log, RecordsStagedOnALoopArriveWithoutAFlush) {
  loupe::loop lp("staging");
  std::promise<void> stop;
  auto stopped = stop.get_future().share();
  std::thread t([&] {
    boost::asio::post(lp.context(), [] { loupe::log::app().info("staged on a loop"); });
    boost::asio::steady_timer keep(lp.context(), 5s);  // keeps the loop running, no flush anywhere
    keep.async_wait([](auto) {});
    std::thread([&] {
      stopped.wait();
      boost::asio::post(lp.context(), [&] { keep.cancel(); });
    }).detach();
    lp.run();
  });
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    for (const auto& l : sink->lines()) seen = seen || l.find("staged on a loop") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  stop.set_value();
  t.join();
  EXPECT_TRUE(seen) << "a staged record did not reach the sink while its loop ran";
  // Its timestamp is now (the date-time part is cached per second).
  const auto recs = records();
  ASSERT_FALSE(recs.empty());
  const std::string ts(recs.back().at("ts").as_string());
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char day[16];
  std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
  EXPECT_EQ(ts.substr(0, 10), day) << ts;
}

TEST_F(Log, RecordsStagedWhenALoopStopsAreHandedOver) {
  loupe::loop lp("staging-stop");
  std::promise<void> ran, done;
  std::thread t([&] {
    boost::asio::post(lp.context(), [&] {
      loupe::log::app().info("written just before the loop stops");
      lp.stop();  // the posted hand-over will not run
    });
    lp.run();
    ran.set_value();
    done.get_future().wait();  // the thread (and its staged records) stays alive
  });
  ran.get_future().wait();
  bool seen = false;
  for (const auto& r : records()) seen = seen || r.at("msg") == "written just before the loop stops";
  done.set_value();
  t.join();
  EXPECT_TRUE(seen);
}
