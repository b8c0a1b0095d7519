// Test support: the shared preamble of the log's tests (tests/runtime/
// log_test.cpp, log_format_test.cpp, access_log_test.cpp): a `Log` fixture
// whose sink collects finished lines, and small helpers.
#pragma once

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

// ---- the logger end to end: records through spdlog into a sink -------------

namespace loupe_test {

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

const std::string hostile[] = {"plain",
                               "quote \" backslash \\ slash /",
                               "new\nline\r\ttab",
                               std::string("nul\0byte", 8),
                               "\x01\x1f\x7f",
                               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                               "bad \xff\xfe utf8 \xc3",
                               "overlong \xc0\xaf",
                               "surrogate \xed\xa0\x80",
                               "{\"inject\":1}",
                               "\"}\n{\"level\":\"fake\"",
                               "{}",
                               std::string(3000, 'x') + "\xe2\x82"};

inline bool valid_utf8(const std::string& s) {
  std::string out;
  loupe::log::append_json_escaped(out, s);
  return out.find("\xef\xbf\xbd") == std::string::npos;
}

inline awaitable<void> log_inside() {
  loupe::log::app().info("inside a task");
  co_return;
}

}  // namespace loupe_test

using namespace loupe_test;
