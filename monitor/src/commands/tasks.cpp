// ps, where and pstree: the live tasks of every loop — a page of them, one
// with its wait and parents, all of them as a tree.
#include "registry.hpp"
#include "table.hpp"
#include "text.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>
#include <map>

namespace loupe::monitor::detail {

namespace {
// Rows `ps` prints unless told otherwise.
constexpr std::size_t ps_page = 100;
}  // namespace

std::string ps(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  std::string filter, state, loop_name;
  bool sites = false;
  std::size_t limit = ps_page;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--sites") sites = true;
    else if (args[i] == "--state" && i + 1 < args.size()) state = args[++i];
    else if (args[i] == "--loop" && i + 1 < args.size()) loop_name = args[++i];
    else if (args[i] == "--all") limit = std::numeric_limits<std::size_t>::max();
    else if (args[i] == "--limit" && i + 1 < args.size()) {
      const std::string& v = args[++i];
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc{} || p != v.data() + v.size() || limit == 0)
        return "error: --limit takes a positive number of rows\n";
    } else if (args[i].starts_with("--")) return "error: unknown option " + args[i] + " (see help ps)\n";
    else filter = args[i];
  }
  const auto now = clock_type::now();
  auto tasks = all_tasks();
  std::erase_if(tasks, [&](const task_info& t) {
    if (!state.empty() && to_string(t.state) != state) return true;
    if (!loop_name.empty() && t.loop != loop_name) return true;
    if (!filter.empty() && t.name.find(filter) == std::string::npos &&
        t.request.route.find(filter) == std::string::npos && t.request.target.find(filter) == std::string::npos)
      return true;
    return false;
  });
  std::stable_sort(tasks.begin(), tasks.end(),
                   [&](const auto& a, const auto& b) { return suspended_for(a, now) > suspended_for(b, now); });
  if (sites) {
    struct site {
      std::size_t count = 0;
      std::map<std::string, std::size_t> states;
      std::string name;
      std::chrono::nanoseconds oldest{0};
    };
    std::map<std::string, site> by_site;
    for (const auto& t : tasks) {
      auto& s = by_site[location(t.spawn_site.file_name(), static_cast<int>(t.spawn_site.line()), false)];
      ++s.count;
      ++s.states[to_string(t.state)];
      if (s.name.empty()) s.name = t.name;
      s.oldest = std::max(s.oldest, std::chrono::nanoseconds(now - t.created));
    }
    std::vector<std::pair<std::string, site>> rows(by_site.begin(), by_site.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
    if (as_json) {
      json::array a;
      for (const auto& [where, s] : rows) {
        json::object st;
        for (const auto& [k, v] : s.states) st[k] = v;
        a.push_back(json::object{{"spawn_site", where},
                                 {"name", s.name},
                                 {"count", s.count},
                                 {"states", st},
                                 {"oldest_ms", millis(s.oldest)}});
      }
      return json::serialize(a) + "\n";
    }
    std::string out = fmt::format("{:>6}  {:<28} {:<18} {:>9}  {}\n", "COUNT", "SPAWN SITE", "NAME", "OLDEST", "STATES");
    for (const auto& [where, s] : rows) {
      std::string states;
      for (const auto& [k, v] : s.states) states += fmt::format("{}{}={}", states.empty() ? "" : " ", k, v);
      out += fmt::format("{:>6}  {:<28} {:<18} {:>9}  {}\n", s.count, where, s.name, human(s.oldest), states);
    }
    return out;
  }
  // One page by default: a reply for 5,000 tasks was 622 KB.
  const std::size_t matched = tasks.size();
  if (tasks.size() > limit) tasks.resize(limit);
  if (as_json) {
    json::array a;
    for (const auto& t : tasks) a.push_back(task_json(t, now));
    return json::serialize(a) + "\n";
  }
  std::string out = fmt::format("{:>6} {:<10} {:<9} {:>8} {:>9}  {:<20} {:<28} {:<24} {}\n", "ID", "LOOP", "STATE", "AGE",
                                "SUSPENDED", "NAME", "WAIT", "LOCATION", "REQUEST");
  for (const auto& t : tasks) {
    out += fmt::format("{:>6} {:<10} {:<9} {:>8} {:>9}  {:<20} {:<28} {:<24} {}\n", t.id, t.loop, to_string(t.state),
                       human(now - t.created), t.state == task_state::suspended ? human(suspended_for(t, now)) : "-",
                       t.name, wait_text(t), location(t.wait.file, t.wait.line, false), request_text(t));
  }
  if (matched > tasks.size())
    out += fmt::format("{} of {} task(s), the longest-suspended first (--limit N or --all for more)\n", tasks.size(),
                       matched);
  else out += fmt::format("{} task(s)\n", tasks.size());
  return out;
}

std::string where(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  const auto id = parse_id(args);
  if (!id) return "usage: where ID\n";
  const auto now = clock_type::now();
  const auto t = find_live(*id);
  if (!t) {
    if (find_finished(*id)) return fmt::format("task #{} has finished: see where-terminated {}\n", *id, *id);
    return fmt::format("no task #{} (see ps)\n", *id);
  }
  // The parent chain: live parents, then a finished one, then unknown.
  json::array parents;
  std::string chain;
  std::uint64_t p = t->parent_id;
  for (int depth = 0; p != 0 && depth < 32; ++depth) {
    if (auto live = find_live(p)) {
      chain += fmt::format("  #{} '{}' {} (spawned at {})\n", p, live->name, to_string(live->state),
                           location(live->spawn_site.file_name(), static_cast<int>(live->spawn_site.line()), true));
      parents.push_back(json::object{{"id", p}, {"name", live->name}, {"state", to_string(live->state)}});
      p = live->parent_id;
    } else if (auto done = find_finished(p)) {
      chain += fmt::format("  #{} '{}' finished ({})\n", p, done->info.name, finished_outcome(*done));
      parents.push_back(json::object{{"id", p}, {"name", done->info.name}, {"state", "finished"}});
      p = done->info.parent_id;
    } else {
      chain += fmt::format("  #{} (no longer known)\n", p);
      parents.push_back(json::object{{"id", p}, {"state", "unknown"}});
      break;
    }
  }
  // The await chain: the task's own wait, then each task it awaits in turn
  // (a handler awaiting a client request awaits that request's task).
  json::array awaits;
  std::string await_chain;
  {
    std::optional<task_info> cur = t;
    for (int depth = 0; cur && depth < 32; ++depth) {
      const auto& c = *cur;
      const std::string what = c.what.empty() ? "" : " " + c.what;
      await_chain += fmt::format("  {:>{}}#{} '{}'{}: {} at {}{}\n", "", depth * 2, c.id, c.name, what,
                                 c.state == task_state::suspended ? wait_text(c) : to_string(c.state),
                                 location(c.wait.file, c.wait.line, true),
                                 c.state == task_state::suspended ? ", for " + human(suspended_for(c, now)) : "");
      awaits.push_back(task_json(c, now));
      if (c.state != task_state::suspended || c.awaiting == 0) break;
      cur = find_live(c.awaiting);
    }
  }
  if (as_json) {
    auto o = task_json(*t, now);
    o["parents"] = std::move(parents);
    o["await_chain"] = std::move(awaits);
    return json::serialize(o) + "\n";
  }
  std::string out = fmt::format("task #{} '{}' on loop '{}': {}\n", t->id, t->name, t->loop, to_string(t->state));
  if (t->state == task_state::suspended) {
    out += fmt::format("  waiting for:  {}\n", wait_text(*t));
    out += fmt::format("  at:           {}\n", location(t->wait.file, t->wait.line, true));
    out += fmt::format("  for:          {}\n", human(suspended_for(*t, now)));
  }
  out += fmt::format("  age:          {} (resumed {} times, busy {})\n", human(now - t->created), t->resume_count,
                     human(t->busy));
  out += fmt::format("  spawned at:   {}\n",
                     location(t->spawn_site.file_name(), static_cast<int>(t->spawn_site.line()), true));
  if (!t->request.method.empty())
    out += fmt::format("  request:      {} request_id={}\n", request_text(t->request), t->request.request_id);
  if (!t->what.empty()) out += fmt::format("  doing:        {}\n", t->what);
  out += chain.empty() ? "  parents:      none\n" : "  parents:\n" + chain;
  if (t->state == task_state::suspended) out += "  await chain (each awaits the next):\n" + await_chain;
  return out;
}

std::string pstree(const command_call& call) {
  const bool as_json = call.json;
  const auto now = clock_type::now();
  const auto tasks = all_tasks();
  std::map<std::uint64_t, const task_info*> by_id;
  std::map<std::uint64_t, std::vector<const task_info*>> children;
  for (const auto& t : tasks) by_id[t.id] = &t;
  std::vector<const task_info*> roots;
  for (const auto& t : tasks) {
    if (t.parent_id && by_id.count(t.parent_id)) children[t.parent_id].push_back(&t);
    else roots.push_back(&t);
  }
  if (as_json) {
    std::function<json::object(const task_info&)> node = [&](const task_info& t) {
      json::object o = task_json(t, now);
      json::array kids;
      for (const auto* c : children[t.id]) kids.push_back(node(*c));
      o["children"] = std::move(kids);
      return o;
    };
    json::array a;
    for (const auto* r : roots) a.push_back(node(*r));
    return json::serialize(a) + "\n";
  }
  std::string out;
  std::function<void(const task_info&, const std::string&, bool, bool)> draw =
      [&](const task_info& t, const std::string& indent, bool last, bool root) {
    out += indent + (root ? "" : last ? "└─ " : "├─ ");
    out += fmt::format("#{} {} [{}{}] {}{}\n", t.id, t.name, to_string(t.state),
                       t.state == task_state::suspended ? " " + human(suspended_for(t, now)) : "",
                       t.wait.operation ? wait_text(t) : "",
                       t.request.method.empty() ? "" : "  " + request_text(t.request));
    const auto& kids = children[t.id];
    for (std::size_t i = 0; i < kids.size(); ++i)
      draw(*kids[i], root ? indent : indent + (last ? "   " : "│  "), i + 1 == kids.size(), false);
  };
  std::map<std::string, std::vector<const task_info*>> per_loop;
  for (const auto* r : roots) per_loop[r->loop].push_back(r);
  for (const auto& [name, rs] : per_loop) {
    out += "loop '" + name + "'\n";
    for (std::size_t i = 0; i < rs.size(); ++i) draw(*rs[i], "  ", i + 1 == rs.size(), true);
  }
  if (tasks.empty()) out = "no live tasks\n";
  return out;
}

}  // namespace loupe::monitor::detail
