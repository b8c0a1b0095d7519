// cancel: cancels a live task; the console then waits, bounded, for it to end
// and says how (cancel_outcome).
#include "cancel.hpp"

#include "registry.hpp"
#include "table.hpp"
#include "text.hpp"

#include <loupe/runtime/loop.hpp>

#include <fmt/format.h>

namespace loupe::monitor::detail {

cancel_reply cancel(const command_call& call) {
  const auto id = parse_id(call.args);
  if (!id) return {cancel_reply::usage, 0, {}, {}};
  const auto t = find_live(*id);
  if (!t) return {cancel_reply::not_found, *id, {}, {}};
  switch (loop::cancel_anywhere(*id, cancel_source::console)) {
    case cancel_result::requested: return {cancel_reply::requested, *id, t->name, {}};
    case cancel_result::refused: return {cancel_reply::refused, *id, t->name, t->cancel_note};
    case cancel_result::redirected: return {cancel_reply::redirected, *id, t->name, t->cancel_note};
    case cancel_result::not_found: break;
  }
  return {cancel_reply::ended_first, *id, {}, {}};
}

std::string to_string(const cancel_reply& r) {
  switch (r.status) {
    case cancel_reply::usage: return "usage: cancel ID\n";
    case cancel_reply::not_found: return fmt::format("no live task #{} (see ps)\n", r.id);
    case cancel_reply::ended_first: return fmt::format("task #{} ended before it could be cancelled\n", r.id);
    case cancel_reply::requested: return fmt::format("cancelling task #{} '{}'...\n", r.id, r.name);
    case cancel_reply::refused: return fmt::format("refused: task #{} '{}' is not cancelled: {}\n", r.id, r.name, r.note);
    case cancel_reply::redirected:
      return fmt::format("task #{} '{}' is not cancelled; instead, this {}\n", r.id, r.name, r.note);
  }
  return {};
}

std::optional<std::string> cancel_outcome(std::uint64_t id) {
  if (auto f = find_finished(id)) return fmt::format("task #{} '{}' ended: {}\n", id, f->info.name, finished_outcome(*f));
  if (!find_live(id)) return fmt::format("task #{} ended\n", id);
  return std::nullopt;
}

std::string still_alive(std::uint64_t id) {
  return fmt::format("task #{} is still alive {:g} s after the cancellation (blocked, or it ignores it)\n", id,
                     std::chrono::duration<double>(cancel_polls * cancel_poll_interval).count());
}

}  // namespace loupe::monitor::detail
