// The logger end to end: task and request context on records, a full queue
// that drops instead of blocking, configuration and levels while threads log,
// slow-callback records, records staged on a loop.
#include "support/log_fixture.hpp"

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
  loupe::log::write(loupe::log::runtime(), spdlog::level::warn, "about task 7", {{"k", "v"}}, {7, "someone", "req-7"});
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
