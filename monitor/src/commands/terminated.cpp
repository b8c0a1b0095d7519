// ps-terminated and where-terminated: the tasks the loops' rings keep after
// they end, with their outcome.
#include "registry.hpp"
#include "table.hpp"
#include "text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace loupe::monitor::detail {

std::string ps_terminated(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  const std::string filter = args.empty() ? std::string() : args[0];
  const auto now = clock_type::now();
  auto done = all_finished();
  std::erase_if(done, [&](const finished_task& f) {
    return !filter.empty() && f.info.name.find(filter) == std::string::npos &&
           f.info.request.route.find(filter) == std::string::npos;
  });
  if (as_json) {
    json::array a;
    for (const auto& f : done) a.push_back(finished_json(f, now));
    return json::serialize(a) + "\n";
  }
  std::string out = fmt::format("{:>6} {:<10} {:<20} {:>9} {:>9}  {:<28} {}\n", "ID", "LOOP", "NAME", "LIFETIME", "ENDED",
                                "OUTCOME", "REQUEST");
  for (const auto& f : done)
    out += fmt::format("{:>6} {:<10} {:<20} {:>9} {:>9}  {:<28} {}\n", f.info.id, f.info.loop, f.info.name,
                       human(f.finished - f.info.created), human(now - f.finished) + " ago", finished_outcome(f),
                       request_text(f.info.request));
  out += fmt::format("{} finished task(s) in the ring\n", done.size());
  return out;
}

std::string where_terminated(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  const auto id = parse_id(args);
  if (!id) return "usage: where-terminated ID\n";
  const auto f = find_finished(*id);
  if (!f) {
    if (find_live(*id)) return fmt::format("task #{} is still alive: see where {}\n", *id, *id);
    return fmt::format("no finished task #{} in the ring\n", *id);
  }
  const auto now = clock_type::now();
  if (as_json) return json::serialize(finished_json(*f, now)) + "\n";
  std::string out = fmt::format("task #{} '{}' on loop '{}': {}\n", f->info.id, f->info.name, f->info.loop,
                                finished_outcome(*f));
  out += fmt::format("  lived:        {} (ended {} ago)\n", human(f->finished - f->info.created),
                     human(now - f->finished));
  out += fmt::format("  last wait:    {} at {}\n", wait_text(f->info.wait),
                     location(f->info.wait.file, f->info.wait.line, true));
  out += fmt::format("  spawned at:   {}\n",
                     location(f->info.spawn_site.file_name(), static_cast<int>(f->info.spawn_site.line()), true));
  if (f->info.parent_id) out += fmt::format("  parent:       #{}\n", f->info.parent_id);
  if (!f->info.request.method.empty())
    out += fmt::format("  request:      {} request_id={}\n", request_text(f->info.request), f->info.request.request_id);
  return out;
}

}  // namespace loupe::monitor::detail
