// loupe's loggers and the JSON-lines formatter.
#include <loupe/runtime/log.hpp>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace loupe::log {
namespace {

// One JSON object per record: {"ts":"2026-01-02T03:04:05.678Z","level":"info","logger":"loupe","msg":"..."}
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string out;
    out.reserve(96 + msg.payload.size());
    out += "{\"ts\":\"";
    append_timestamp(out, msg.time);
    out += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    out.append(level.data(), level.size());
    out += "\",\"logger\":\"";
    append_json_escaped(out, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    out += "\",\"msg\":\"";
    append_json_escaped(out, std::string_view(msg.payload.data(), msg.payload.size()));
    out += "\"}\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }

 private:
  static void append_timestamp(std::string& out, spdlog::log_clock::time_point tp) {
    using namespace std::chrono;
    const auto secs = time_point_cast<seconds>(tp);
    const auto ms = duration_cast<milliseconds>(tp - secs).count();
    const std::time_t t = system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    out.append(buf, static_cast<std::size_t>(n));
  }
};

std::shared_ptr<spdlog::logger> make_logger(const char* name) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto lg = std::make_shared<spdlog::logger>(name, std::move(sink));
  lg->set_formatter(std::make_unique<json_formatter>());
  lg->flush_on(spdlog::level::warn);
  return lg;
}

struct loggers {
  std::shared_ptr<spdlog::logger> runtime = make_logger("loupe");
  std::shared_ptr<spdlog::logger> app = make_logger("app");
};

loggers& all() {
  static loggers l;
  return l;
}

}  // namespace

void configure(const options& opts) {
  for (auto* lg : {all().runtime.get(), all().app.get()}) {
    if (opts.format == format::json) {
      lg->set_formatter(std::make_unique<json_formatter>());
    } else {
      lg->set_formatter(std::make_unique<spdlog::pattern_formatter>(
          "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v"));
    }
    lg->set_level(opts.level);
  }
}

spdlog::logger& runtime() { return *all().runtime; }
spdlog::logger& app() { return *all().app; }

void set_level(spdlog::level::level_enum level) {
  all().runtime->set_level(level);
  all().app->set_level(level);
}

format parse_format(const std::string& text) {
  if (text == "json") return format::json;
  if (text == "text") return format::text;
  throw std::invalid_argument("unknown log format '" + text + "' (expected json or text)");
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++p;
      continue;
    }
    // A UTF-8 sequence: copy it if well-formed, else emit U+FFFD for one byte.
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    bool ok = len != 0 && static_cast<std::size_t>(end - p) >= len;
    for (std::size_t i = 1; ok && i < len; ++i) {
      if ((p[i] & 0xc0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (ok) {
      // Reject overlong forms, surrogates and values past U+10FFFF.
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
          (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        ok = false;
    }
    if (ok) {
      out.append(reinterpret_cast<const char*>(p), len);
      p += len;
    } else {
      out += "\xef\xbf\xbd";
      ++p;
    }
  }
}

}  // namespace loupe::log
