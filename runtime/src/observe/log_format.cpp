// How a log record reads: JSON (RFC 3339 timestamps, escaping that keeps
// every line valid JSON whatever the message holds) or text.
#include "observe/log_format.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace loupe::log {

namespace {

void append_timestamp(std::string& out, spdlog::log_clock::time_point tp, bool json) {
  using namespace std::chrono;
  const auto secs = time_point_cast<seconds>(tp);
  const auto ms = static_cast<int>(duration_cast<milliseconds>(tp - secs).count());
  // "YYYY-MM-DDTHH:MM:SS" changes once a second: formatted then, per thread
  // (gmtime and snprintf on every record were a quarter of an access record).
  thread_local seconds::rep cached_secs = -1;
  thread_local bool cached_json = false;
  thread_local char cached[24];
  if (secs.time_since_epoch().count() != cached_secs || json != cached_json) {
    const std::time_t t = system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof cached, json ? "%04d-%02d-%02dT%02d:%02d:%02d" : "%04d-%02d-%02d %02d:%02d:%02d",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs.time_since_epoch().count();
    cached_json = json;
  }
  out.append(cached, 19);
  const char frac[] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                       static_cast<char>('0' + ms % 10), 'Z'};
  out.append(frac, sizeof frac);
}

void append_number(std::string& out, const value& v) {
  char buf[32];
  std::to_chars_result r{};
  switch (v.type()) {
    case value::kind::signed_int: r = std::to_chars(buf, buf + sizeof buf, v.signed_int()); break;
    case value::kind::unsigned_int: r = std::to_chars(buf, buf + sizeof buf, v.unsigned_int()); break;
    default: {
      const double d = v.real();
      if (!std::isfinite(d)) {  // JSON has no NaN or infinity
        out += "null";
        return;
      }
      r = std::to_chars(buf, buf + sizeof buf, d);
    }
  }
  out.append(buf, r.ptr);
}

bool reserved_key(std::string_view k) {
  return k == "ts" || k == "level" || k == "logger" || k == "msg" || k == "task_id" || k == "task" || k == "request_id";
}

void append_json_field(std::string& out, std::string_view key, const value& v) {
  out += ",\"";
  // A field may not replace the record's own keys.
  if (reserved_key(key)) out += "field_";
  append_json_escaped(out, key);
  out += "\":";
  switch (v.type()) {
    case value::kind::text:
      out += '"';
      append_json_escaped(out, v.text());
      out += '"';
      break;
    case value::kind::boolean: out += v.unsigned_int() ? "true" : "false"; break;
    default: append_number(out, v);
  }
}

// Text values are quoted when they would not read as one word.
void append_text_value(std::string& out, const value& v) {
  if (v.type() == value::kind::boolean) {
    out += v.unsigned_int() ? "true" : "false";
  } else if (v.type() != value::kind::text) {
    append_number(out, v);
  } else {
    const auto t = v.text();
    const bool plain = !t.empty() && t.find_first_of(" \"=\\") == std::string_view::npos &&
                       std::all_of(t.begin(), t.end(),
                                   [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
    if (plain) {
      append_json_escaped(out, t);  // still repairs invalid UTF-8
    } else {
      out += '"';
      append_json_escaped(out, t);
      out += '"';
    }
  }
}

}  // namespace

void detail::format_record(std::string& line, log::format f, spdlog::log_clock::time_point time,
                           spdlog::level::level_enum level, std::string_view logger, std::string_view text,
                           const context& ctx, const fields* extra) {
  line.reserve(128 + text.size());
  if (f == format::json) {
    line += "{\"ts\":\"";
    append_timestamp(line, time, true);
    line += "\",\"level\":\"";
    const auto lv = spdlog::level::to_string_view(level);
    line.append(lv.data(), lv.size());
    line += "\",\"logger\":\"";
    append_json_escaped(line, logger);
    line += "\",\"msg\":\"";
    append_json_escaped(line, text);
    line += '"';
    if (ctx.task_id != 0) {
      line += ",\"task_id\":";
      line += std::to_string(ctx.task_id);
      line += ",\"task\":\"";
      append_json_escaped(line, ctx.task);
      line += '"';
    }
    if (!ctx.request_id.empty()) {
      line += ",\"request_id\":\"";
      append_json_escaped(line, ctx.request_id);
      line += '"';
    }
    if (extra)
      for (const auto& f : *extra) append_json_field(line, f.key, f.value);
    line += "}\n";
  } else {
    append_timestamp(line, time, false);
    line += ' ';
    const auto lv = spdlog::level::to_string_view(level);
    line.append(lv.data(), lv.size());
    line.append(lv.size() < 8 ? 8 - lv.size() : 1, ' ');
    line += '[';
    append_json_escaped(line, logger);
    line += "] ";
    append_json_escaped(line, text);
    if (ctx.task_id != 0) {
      line += " task_id=" + std::to_string(ctx.task_id) + " task=";
      append_text_value(line, value(ctx.task));
    }
    if (!ctx.request_id.empty()) {
      line += " request_id=";
      append_text_value(line, value(ctx.request_id));
    }
    if (extra)
      for (const auto& f : *extra) {
        line += ' ';
        append_json_escaped(line, f.key);
        line += '=';
        append_text_value(line, f.value);
      }
    line += '\n';
  }
}

namespace {
// Bytes a JSON string holds as they are: printable ASCII but the quote and backslash.
constexpr std::array<bool, 256> plain_json = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();
}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // A run of characters that need no escaping is appended at once.
    const auto* run = p;
    while (p < end && plain_json[*p]) ++p;
    if (p != run) out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
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
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    }
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
