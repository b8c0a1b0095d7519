// Private: how the console's commands write tasks, waits, requests and times,
// as text and as JSON — one function each, shared by every command.
//
//   out += fmt::format("{} {}\n", wait_text(t.wait), location(t.wait.file, t.wait.line, false));
//   a.push_back(task_json(t, clock_type::now()));
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/json/object.hpp>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

namespace loupe::monitor::detail {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

// ---- text --------------------------------------------------------------------

/// "async_wait on deadline_timer"; "-" when the task waits on nothing. Reads
/// as everywhere else (loupe::to_string), without the file:line: its column.
inline std::string wait_text(const wait_info& w) {
  if (!w.operation && !w.object) return "-";
  return to_string(wait_info{w.operation, w.object, nullptr, 0});
}

/// A task's wait: as above, naming the task it awaits ("await on task #9").
inline std::string wait_text(const task_info& t) {
  std::string out = wait_text(t.wait);
  if (t.awaiting != 0) out += " #" + std::to_string(t.awaiting);
  return out;
}

/// "GET /sleep?ms=5 (route /sleep)" (loupe::to_string); "-" when it serves none.
inline std::string request_text(const request_info& r) {
  if (r.method.empty()) return "-";
  return to_string(r);
}

/// The request column of a task: what it does when that is known (a client
/// task: "GET http://upstream/x"), else the request it serves.
inline std::string request_text(const task_info& t) { return t.what.empty() ? request_text(t.request) : t.what; }

/// A duration for people: 0.42ms, 12ms, 3.4s, 5m07s, 2h03m.
inline std::string human(std::chrono::nanoseconds d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  if (ms < 1) return fmt::format("{:.2f}ms", ms);
  if (ms < 1000) return fmt::format("{:.0f}ms", ms);
  if (ms < 120'000) return fmt::format("{:.1f}s", ms / 1000);
  const auto s = static_cast<long long>(ms / 1000);
  if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

inline double millis(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

/// file:line ("-" for none); `full` keeps the path, else the file's name only.
inline std::string location(const char* file, int line, bool full) {
  if (!file || !*file) return "-";
  std::string_view f = file;
  if (!full) {
    const auto slash = f.rfind('/');
    if (slash != std::string_view::npos) f.remove_prefix(slash + 1);
  }
  return std::string(f) + ":" + std::to_string(line);
}

inline std::chrono::nanoseconds suspended_for(const task_info& t, clock_type::time_point now) {
  return t.state == task_state::suspended ? std::chrono::nanoseconds(now - t.suspended_since)
                                          : std::chrono::nanoseconds(0);
}

/// "cancelled by console", "error: what", "ok".
inline std::string finished_outcome(const finished_task& f) {
  std::string out = to_string(f.outcome);
  if (f.outcome == task_outcome::cancelled && f.cancelled_by != cancel_source::none)
    out += std::string(" by ") + to_string(f.cancelled_by);
  if (!f.error.empty()) out += ": " + f.error;
  return out;
}

/// HH:MM:SS.mmmZ
inline std::string wall_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:02}:{:02}:{:02}.{:03}Z", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// ---- JSON --------------------------------------------------------------------

inline json::object request_json(const request_info& r) {
  return {{"method", r.method},         {"target", r.target},           {"route", r.route},
          {"request_id", r.request_id}, {"client_gone", r.client_gone}, {"ended", r.ended}};
}

inline json::object task_json(const task_info& t, clock_type::time_point now) {
  json::object o{{"id", t.id},
                 {"name", t.name},
                 {"loop", t.loop},
                 {"state", to_string(t.state)},
                 {"parent_id", t.parent_id},
                 {"age_ms", millis(now - t.created)},
                 {"suspended_ms", millis(suspended_for(t, now))},
                 {"resumes", t.resume_count},
                 {"busy_ms", millis(t.busy)},
                 {"spawn_site", location(t.spawn_site.file_name(), static_cast<int>(t.spawn_site.line()), true)}};
  json::object w{{"operation", t.wait.operation ? t.wait.operation : ""},
                 {"object", t.wait.object ? t.wait.object : ""},
                 {"file", t.wait.file ? t.wait.file : ""},
                 {"line", t.wait.line}};
  o["wait"] = std::move(w);
  if (t.awaiting != 0) o["awaiting"] = t.awaiting;
  if (!t.what.empty()) o["what"] = t.what;
  if (!t.request.method.empty()) o["request"] = request_json(t.request);
  return o;
}

inline json::object finished_json(const finished_task& f, clock_type::time_point now) {
  json::object o = task_json(f.info, f.finished);
  o.erase("suspended_ms");
  o["state"] = "finished";
  o["outcome"] = to_string(f.outcome);
  o["cancelled_by"] = to_string(f.cancelled_by);
  o["error"] = f.error;
  o["lifetime_ms"] = millis(f.finished - f.info.created);
  o["finished_ago_ms"] = millis(now - f.finished);
  return o;
}

}  // namespace loupe::monitor::detail
