// loupe/runtime/log.hpp — loupe's loggers (spdlog): JSON lines or text,
// written by a background thread so that logging never blocks a loop.
//
//   loupe::log::configure({.format = loupe::log::format::json});
//   loupe::log::app().info("cache warmed in {} ms", ms);            // plain spdlog
//   loupe::log::info(loupe::log::app(), "cache warmed", {{"ms", ms}, {"entries", n}});
//
// A JSON record is one object per line:
//
//   {"ts":"2026-11-22T06:30:01.123Z","level":"info","logger":"app","msg":"cache warmed",
//    "task_id":42,"task":"http.request","request_id":"5f0c…","ms":12,"entries":300}
//
// `ts` is RFC 3339 UTC with milliseconds. `task_id`, `task` and `request_id`
// are present when the record is written inside a task (and a request); they
// are captured on the calling thread, so records written from a request
// handler — by loupe or by the application — can be joined with its access
// log record. Then come the record's own fields, in the order given. Every
// line is valid JSON whatever the message or the fields hold (quotes,
// newlines, control bytes, invalid UTF-8 become escapes or U+FFFD).
//
// Records are formatted on the calling thread and queued for one writer
// thread. On a loop's thread they are staged first and queued together once
// the loop's current batch of ready callbacks has run (or 256 are staged, or
// `flush` is called, or the loop stops): one wake-up of the writer per batch
// instead of one per record. When the queue is full the oldest queued record
// is dropped and counted (`dropped_records()`, exported as
// loupe_log_records_dropped_total): a loop never waits for stderr.
//
// Loggers: "loupe" (the runtime), "loupe.access" (one record per request),
// "app" (application code). All are thread-safe; `set_level` may be called
// while running (the console does).
#pragma once

#include <spdlog/common.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace loupe::log {

enum class format { json, text };

struct options {
  log::format format = format::json;
  spdlog::level::level_enum level = spdlog::level::info;
  /// Records the writer thread may have queued before the oldest is dropped.
  std::size_t queue_size = 8192;
  /// Where records go; empty means stderr. Sinks receive finished lines
  /// (their own formatter is not used).
  std::vector<spdlog::sink_ptr> sinks;
};

/// Installs the format, level and sinks on every loupe logger. Records queued
/// before the call are written to the previous sinks first. Thread-safe.
void configure(const options& opts);
/// The runtime's own records ("loupe").
spdlog::logger& runtime();
/// One record per HTTP request ("loupe.access").
spdlog::logger& access();
/// For application code ("app").
spdlog::logger& app();

/// Changes the level of every loupe logger, at any time, from any thread.
void set_level(spdlog::level::level_enum level);
spdlog::level::level_enum level();
/// Parses "trace", "debug", "info", "warning" (or "warn"), "error",
/// "critical", "off"; throws std::invalid_argument otherwise.
spdlog::level::level_enum parse_level(std::string_view text);
/// Parses "json" / "text"; throws std::invalid_argument otherwise.
format parse_format(const std::string& text);

/// Waits (up to `timeout`) until every record written before the call has
/// reached the sinks, and flushes them. Returns false on timeout.
bool flush(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
/// Records dropped because the writer's queue was full, since start-up.
std::uint64_t dropped_records();

/// A field value: text, integer, floating point or boolean.
class value {
 public:
  enum class kind : std::uint8_t { text, signed_int, unsigned_int, real, boolean };
  value(std::string_view s) noexcept : kind_(kind::text), text_(s) {}
  value(const char* s) noexcept : kind_(kind::text), text_(s ? s : "") {}
  value(const std::string& s) noexcept : kind_(kind::text), text_(s) {}
  value(bool b) noexcept : kind_(kind::boolean), u_(b ? 1 : 0) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  value(T v) noexcept {
    if constexpr (std::is_signed_v<T>) {
      kind_ = kind::signed_int;
      i_ = v;
    } else {
      kind_ = kind::unsigned_int;
      u_ = v;
    }
  }
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  value(T v) noexcept : kind_(kind::real), d_(static_cast<double>(v)) {}

  kind type() const noexcept { return kind_; }
  std::string_view text() const noexcept { return text_; }
  std::int64_t signed_int() const noexcept { return i_; }
  std::uint64_t unsigned_int() const noexcept { return u_; }
  double real() const noexcept { return d_; }

 private:
  kind kind_ = kind::text;
  std::string_view text_;
  union {
    std::int64_t i_;
    std::uint64_t u_ = 0;
    double d_;
  };
};

/// One key-value field of a record. The key and text values are only
/// borrowed for the duration of the call.
struct field {
  std::string_view key;
  log::value value;
};
using fields = std::initializer_list<field>;

/// Whose record it is. By default the current task's; a record about another
/// task (a slow-callback report, the access log) names that task instead.
struct context {
  std::uint64_t task_id = 0;
  std::string_view task;
  std::string_view request_id;
};

/// Writes one record with fields, and the current task's context.
void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f = {});
/// Writes one record with fields, on behalf of `ctx` rather than the current task.
void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f, const context& ctx);

inline void debug(spdlog::logger& lg, std::string_view msg, fields f = {}) { write(lg, spdlog::level::debug, msg, f); }
inline void info(spdlog::logger& lg, std::string_view msg, fields f = {}) { write(lg, spdlog::level::info, msg, f); }
inline void warn(spdlog::logger& lg, std::string_view msg, fields f = {}) { write(lg, spdlog::level::warn, msg, f); }
inline void error(spdlog::logger& lg, std::string_view msg, fields f = {}) { write(lg, spdlog::level::err, msg, f); }

/// Appends `text` to `out` as the inside of a JSON string (escaped; invalid
/// UTF-8 becomes U+FFFD).
void append_json_escaped(std::string& out, std::string_view text);

/// A WARN record on "loupe" at most once per interval (10 s), saying how many
/// were suppressed meanwhile: for an event that repeats fast, like an accept
/// loop out of descriptors failing 20 times a second. Not thread-safe: one
/// per loop or thread.
class throttled_warning {
 public:
  explicit throttled_warning(std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
      : interval_(interval) {}
  void operator()(std::string_view message) {
    const auto now = std::chrono::steady_clock::now();
    if (said_ && now - last_ < interval_) {
      ++suppressed_;
      return;
    }
    if (suppressed_ != 0) runtime().warn("{} ({} more since the last report)", message, suppressed_);
    else runtime().warn("{}", message);
    said_ = true;
    last_ = now;
    suppressed_ = 0;
  }

 private:
  std::chrono::steady_clock::duration interval_;
  bool said_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::size_t suppressed_ = 0;
};

}  // namespace loupe::log
