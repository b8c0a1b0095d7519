// loupe/testkit/logs.hpp — log records captured during a test.
//
// A loupe test (test.hpp) captures every record the runtime and the
// application log, as JSON lines, and can look them up:
//
//   auto warnings = logs({.level = spdlog::level::warn, .message = "slow"});
//   EXPECT_EQ(logs({.logger = "loupe.access", .fields = {{"status", "404"}}}).size(), 1u);
//   expect_log({.level = spdlog::level::err, .message = "boom"});   // this ERROR is expected
//
// An ERROR (or CRITICAL) record that no expect_log() matches fails the test at
// its end, and so does an expect_log() that matched nothing.
#pragma once

#include <boost/json/object.hpp>
#include <spdlog/common.h>
#include <spdlog/sinks/sink.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loupe::testkit {

/// One captured record.
struct log_record {
  spdlog::level::level_enum level = spdlog::level::info;
  std::string logger;
  std::string msg;
  boost::json::object json;  ///< the whole record: ts, level, logger, msg, task_id, request_id, fields
  std::string line;          ///< as written
  /// A field's value as text (strings as they are, other values as JSON), or nullopt.
  std::optional<std::string> field(std::string_view key) const;
};

/// What to look for. Empty parts match anything.
struct log_query {
  std::optional<spdlog::level::level_enum> level;   ///< this level exactly
  std::string message;                              ///< a substring of `msg`
  std::string logger;                               ///< "loupe", "loupe.access", "app"
  std::vector<std::pair<std::string, std::string>> fields;  ///< each field equals (as text)
  bool matches(const log_record& r) const;
  std::string describe() const;
};

/// A spdlog sink that keeps the lines written to it (thread-safe). The test
/// fixture installs one with log::configure; usable on its own too.
class log_capture {
 public:
  log_capture();
  /// The sink to pass in log::options::sinks.
  spdlog::sink_ptr sink() const;
  /// Every record so far (flushes the log writer first), parsed.
  std::vector<log_record> records() const;
  std::vector<log_record> find(const log_query& q) const;

  class line_sink;

 private:
  std::shared_ptr<line_sink> sink_;
};

}  // namespace loupe::testkit
