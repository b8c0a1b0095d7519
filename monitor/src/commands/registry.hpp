// Private: the tasks of every loop, read through the loops' thread-safe
// readers, and the task ID a user typed.
//
//   const auto id = parse_id(call.args);          // "42" or "#42"
//   if (const auto t = id ? find_live(*id) : std::nullopt) ...
#pragma once

#include <loupe/runtime/loop.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::monitor::detail {

/// The live tasks of every loop.
inline std::vector<task_info> all_tasks() {
  std::vector<task_info> out;
  loop::for_each([&](const loop& l) {
    auto v = l.tasks();
    out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  });
  return out;
}

/// The finished tasks every loop's ring keeps, oldest first.
inline std::vector<finished_task> all_finished() {
  std::vector<finished_task> out;
  loop::for_each([&](const loop& l) {
    auto v = l.finished_tasks();
    out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.finished < b.finished; });
  return out;
}

inline std::optional<task_info> find_live(std::uint64_t id) {
  std::optional<task_info> out;
  loop::for_each([&](const loop& l) {
    if (!out) out = l.find_task(id);
  });
  return out;
}

inline std::optional<finished_task> find_finished(std::uint64_t id) {
  std::optional<finished_task> out;
  loop::for_each([&](const loop& l) {
    if (!out) out = l.find_finished(id);
  });
  return out;
}

/// The first argument as a task ID ("42" or "#42"), or nothing.
inline std::optional<std::uint64_t> parse_id(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  std::string_view a = args[0];
  if (!a.empty() && a.front() == '#') a.remove_prefix(1);
  std::uint64_t id = 0;
  const auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), id);
  if (ec != std::errc{} || p != a.data() + a.size()) return std::nullopt;
  return id;
}

}  // namespace loupe::monitor::detail
