// The console's commands. They run on the console's thread and read the
// loops through their thread-safe readers (loop::for_each, tasks(),
// finished_tasks(), slow_events(), stats(), native_stack()).
#include "commands.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/metrics.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <limits>
#include <optional>
#include <sstream>

namespace loupe::monitor::detail {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> out;
  std::string word;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      any = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (any) out.push_back(std::move(word));
      word.clear();
      any = false;
    } else {
      word += c;
      any = true;
    }
  }
  if (any) out.push_back(std::move(word));
  return out;
}

namespace {

// How `cancel ID` starts its answer while the task has not ended yet.
constexpr std::string_view cancelling = "cancelling task #";

std::string human(std::chrono::nanoseconds d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  if (ms < 1) return fmt::format("{:.2f}ms", ms);
  if (ms < 1000) return fmt::format("{:.0f}ms", ms);
  if (ms < 120'000) return fmt::format("{:.1f}s", ms / 1000);
  const auto s = static_cast<long long>(ms / 1000);
  if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

double millis(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string short_path(const char* file) {
  std::string_view f = file ? file : "";
  const auto slash = f.rfind('/');
  return std::string(slash == std::string_view::npos ? f : f.substr(slash + 1));
}

std::string location(const char* file, int line, bool full) {
  if (!file || !*file) return "-";
  return (full ? std::string(file) : short_path(file)) + ":" + std::to_string(line);
}

std::string wait_text(const wait_info& w) {
  if (!w.operation && !w.object) return "-";
  std::string out = w.operation ? w.operation : "?";
  if (w.object) out.append(" on ").append(w.object);
  return out;
}

std::string request_text(const request_info& r) {
  if (r.method.empty()) return "-";
  std::string out = r.method + " " + r.target;
  if (!r.route.empty()) out += " (route " + r.route + ")";
  return out;
}

std::chrono::nanoseconds suspended_for(const task_info& t, clock_type::time_point now) {
  return t.state == task_state::suspended ? std::chrono::nanoseconds(now - t.suspended_since) : std::chrono::nanoseconds(0);
}

json::object request_json(const request_info& r) {
  return {{"method", r.method}, {"target", r.target}, {"route", r.route}, {"request_id", r.request_id}};
}

json::object task_json(const task_info& t, clock_type::time_point now) {
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
  if (!t.request.method.empty()) o["request"] = request_json(t.request);
  return o;
}

std::vector<task_info> all_tasks() {
  std::vector<task_info> out;
  loop::for_each([&](const loop& l) {
    auto v = l.tasks();
    out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  });
  return out;
}

std::vector<finished_task> all_finished() {
  std::vector<finished_task> out;
  loop::for_each([&](const loop& l) {
    auto v = l.finished_tasks();
    out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.finished < b.finished; });
  return out;
}

std::optional<task_info> find_live(std::uint64_t id) {
  std::optional<task_info> out;
  loop::for_each([&](const loop& l) {
    if (!out) out = l.find_task(id);
  });
  return out;
}

std::optional<finished_task> find_finished(std::uint64_t id) {
  std::optional<finished_task> out;
  loop::for_each([&](const loop& l) {
    if (!out) out = l.find_finished(id);
  });
  return out;
}

std::optional<std::uint64_t> parse_id(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  std::string_view a = args[0];
  if (!a.empty() && a.front() == '#') a.remove_prefix(1);
  std::uint64_t id = 0;
  const auto [p, ec] = std::from_chars(a.data(), a.data() + a.size(), id);
  if (ec != std::errc{} || p != a.data() + a.size()) return std::nullopt;
  return id;
}

std::string finished_outcome(const finished_task& f) {
  std::string out = to_string(f.outcome);
  if (f.outcome == task_outcome::cancelled && f.cancelled_by != cancel_source::none)
    out += std::string(" by ") + to_string(f.cancelled_by);
  if (!f.error.empty()) out += ": " + f.error;
  return out;
}

json::object finished_json(const finished_task& f, clock_type::time_point now) {
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

std::string wall_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:02}:{:02}:{:02}.{:03}Z", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

struct command_help {
  const char* name;
  const char* usage;
  const char* help;
};

constexpr command_help builtin[] = {
    {"ps", "ps [FILTER] [--state running|scheduled|suspended] [--loop NAME] [--limit N | --all] [--sites] [--json]",
     "live tasks, longest-suspended first, one page (100) unless --limit N or --all; FILTER matches the name or the "
     "route; --sites: a summary by spawn site"},
    {"where", "where ID [--json]",
     "what task ID waits on (operation, object, the co_await's file:line), for how long, its spawn site, "
     "parents and request"},
    {"pstree", "pstree [--json]", "live tasks as a tree by parent"},
    {"cancel", "cancel ID", "cancels task ID and reports how it ended (refused in read-only mode)"},
    {"ps-terminated", "ps-terminated [FILTER] [--json]", "recently finished tasks, newest last, with their outcome"},
    {"where-terminated", "where-terminated ID [--json]", "one finished task: outcome, error, spawn site, request"},
    {"slow", "slow [--json]", "recent slow callbacks and watchdog stalls (stalls with the loop thread's stack)"},
    {"loops", "loops [--json]", "per loop: live tasks, callbacks per second, lag p50/p99, busy ratio"},
    {"stacktrace", "stacktrace [LOOP] [--json]", "the native stacks of the loop threads, now"},
    {"log-level", "log-level [LEVEL]", "shows the log level, or sets it (trace debug info warning error critical off)"},
    {"metrics", "metrics [PREFIX] [--json]", "current metric values (samples whose name starts with PREFIX)"},
    {"help", "help [COMMAND]", "this list, or one command's usage"},
    {"quit", "quit", "closes this console (also: exit, Ctrl-D)"},
};

}  // namespace

std::string commands::run(std::string_view line, bool& quit) {
  auto words = split_words(line);
  if (words.empty()) return {};
  const std::string cmd = words.front();
  words.erase(words.begin());
  bool json_out = false;
  std::erase_if(words, [&](const std::string& w) {
    if (w == "--json") return json_out = true;
    return false;
  });
  try {
    if (cmd == "quit" || cmd == "exit") {
      quit = true;
      return "bye\n";
    }
    if (cmd == "help" || cmd == "?") return help(words);
    if (cmd == "ps") return ps(words, json_out);
    if (cmd == "where") return where(words, json_out);
    if (cmd == "pstree") return pstree(json_out);
    if (cmd == "cancel") return cancel(words);
    if (cmd == "ps-terminated") return ps_terminated(words, json_out);
    if (cmd == "where-terminated") return where_terminated(words, json_out);
    if (cmd == "slow") return slow(json_out);
    if (cmd == "loops") return loops(json_out);
    if (cmd == "stacktrace") return stacktrace(words, json_out);
    if (cmd == "log-level") return log_level(words);
    if (cmd == "metrics") return metrics(words, json_out);
    for (const auto& x : extra_) {
      if (x.name != cmd) continue;
      if (x.changes_state && opts_.read_only) return "error: '" + cmd + "' is refused: the console is read-only\n";
      if (!x.run) continue;
      return x.run(words);
    }
    return "unknown command '" + cmd + "' (type help)\n";
  } catch (const std::exception& e) {
    return "error: " + std::string(e.what()) + "\n";
  }
}

std::optional<awaitable<std::string>> commands::async_command(std::string_view line) {
  auto words = split_words(line);
  if (words.empty()) return std::nullopt;
  const std::string cmd = words.front();
  words.erase(words.begin());
  for (const auto& x : extra_) {
    if (x.name != cmd || !x.run_async) continue;
    if (x.changes_state && opts_.read_only) return std::nullopt;  // run() says why
    return x.run_async(words);
  }
  return std::nullopt;
}

void commands::sample() {
  const auto now = clock_type::now();
  std::lock_guard lock(samples_m_);
  std::map<std::string, std::pair<loop_sample, loop_sample>> next;
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    loop_sample fresh{now, s.callbacks, s.busy};
    auto it = samples_.find(l.name());
    next[l.name()] = {it == samples_.end() ? fresh : it->second.second, fresh};
  });
  samples_ = std::move(next);
}

std::string commands::ps(const std::vector<std::string>& args, bool as_json) {
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
    if (!filter.empty() && t.name.find(filter) == std::string::npos && t.request.route.find(filter) == std::string::npos &&
        t.request.target.find(filter) == std::string::npos)
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
        a.push_back(json::object{{"spawn_site", where}, {"name", s.name}, {"count", s.count}, {"states", st},
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
                       t.name, wait_text(t.wait), location(t.wait.file, t.wait.line, false), request_text(t.request));
  }
  if (matched > tasks.size())
    out += fmt::format("{} of {} task(s), the longest-suspended first (--limit N or --all for more)\n", tasks.size(),
                       matched);
  else
    out += fmt::format("{} task(s)\n", tasks.size());
  return out;
}

std::string commands::where(const std::vector<std::string>& args, bool as_json) {
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
  if (as_json) {
    auto o = task_json(*t, now);
    o["parents"] = std::move(parents);
    return json::serialize(o) + "\n";
  }
  std::string out = fmt::format("task #{} '{}' on loop '{}': {}\n", t->id, t->name, t->loop, to_string(t->state));
  if (t->state == task_state::suspended) {
    out += fmt::format("  waiting for:  {}\n", wait_text(t->wait));
    out += fmt::format("  at:           {}\n", location(t->wait.file, t->wait.line, true));
    out += fmt::format("  for:          {}\n", human(suspended_for(*t, now)));
  }
  out += fmt::format("  age:          {} (resumed {} times, busy {})\n", human(now - t->created), t->resume_count,
                     human(t->busy));
  out += fmt::format("  spawned at:   {}\n",
                     location(t->spawn_site.file_name(), static_cast<int>(t->spawn_site.line()), true));
  if (!t->request.method.empty())
    out += fmt::format("  request:      {} request_id={}\n", request_text(t->request), t->request.request_id);
  out += chain.empty() ? "  parents:      none\n" : "  parents:\n" + chain;
  return out;
}

std::string commands::pstree(bool as_json) {
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
  std::function<void(const task_info&, const std::string&, bool, bool)> draw = [&](const task_info& t,
                                                                                  const std::string& indent, bool last,
                                                                                  bool root) {
    out += indent + (root ? "" : last ? "└─ " : "├─ ");
    out += fmt::format("#{} {} [{}{}] {}{}\n", t.id, t.name, to_string(t.state),
                       t.state == task_state::suspended ? " " + human(suspended_for(t, now)) : "",
                       t.wait.operation ? wait_text(t.wait) : "",
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

std::string commands::cancel(const std::vector<std::string>& args) {
  if (opts_.read_only) return "error: 'cancel' is refused: the console is read-only\n";
  const auto id = parse_id(args);
  if (!id) return "usage: cancel ID\n";
  const auto t = find_live(*id);
  if (!t) return fmt::format("no live task #{} (see ps)\n", *id);
  if (loop::cancel_anywhere(*id, cancel_source::console) != cancel_result::requested)
    return fmt::format("task #{} ended before it could be cancelled\n", *id);
  return fmt::format("{}{} '{}'...\n", cancelling, *id, t->name);
}

std::optional<std::uint64_t> commands::pending_cancel(std::string_view out) {
  if (!out.starts_with(cancelling)) return std::nullopt;
  out.remove_prefix(cancelling.size());
  std::uint64_t id = 0;
  if (std::from_chars(out.data(), out.data() + out.size(), id).ec != std::errc{}) return std::nullopt;
  return id;
}

std::string commands::still_alive(std::uint64_t id) {
  return fmt::format("task #{} is still alive {:g} s after the cancellation (blocked, or it ignores it)\n", id,
                     std::chrono::duration<double>(cancel_polls * cancel_poll_interval).count());
}

std::optional<std::string> commands::cancel_outcome(std::uint64_t id) {
  if (auto f = find_finished(id)) return fmt::format("task #{} '{}' ended: {}\n", id, f->info.name, finished_outcome(*f));
  if (!find_live(id)) return fmt::format("task #{} ended\n", id);
  return std::nullopt;
}

std::string commands::ps_terminated(const std::vector<std::string>& args, bool as_json) {
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
  std::string out = fmt::format("{:>6} {:<10} {:<20} {:>9} {:>9}  {:<28} {}\n", "ID", "LOOP", "NAME", "LIFETIME",
                                "ENDED", "OUTCOME", "REQUEST");
  for (const auto& f : done)
    out += fmt::format("{:>6} {:<10} {:<20} {:>9} {:>9}  {:<28} {}\n", f.info.id, f.info.loop, f.info.name,
                       human(f.finished - f.info.created), human(now - f.finished) + " ago", finished_outcome(f),
                       request_text(f.info.request));
  out += fmt::format("{} finished task(s) in the ring\n", done.size());
  return out;
}

std::string commands::where_terminated(const std::vector<std::string>& args, bool as_json) {
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
  out += fmt::format("  last wait:    {} at {}\n", wait_text(f->info.wait), location(f->info.wait.file, f->info.wait.line, true));
  out += fmt::format("  spawned at:   {}\n",
                     location(f->info.spawn_site.file_name(), static_cast<int>(f->info.spawn_site.line()), true));
  if (f->info.parent_id) out += fmt::format("  parent:       #{}\n", f->info.parent_id);
  if (!f->info.request.method.empty())
    out += fmt::format("  request:      {} request_id={}\n", request_text(f->info.request), f->info.request.request_id);
  return out;
}

std::string commands::slow(bool as_json) {
  struct row {
    std::string loop;
    slow_event e;
  };
  std::vector<row> rows;
  loop::for_each([&](const loop& l) {
    for (auto& e : l.slow_events()) rows.push_back({l.name(), std::move(e)});
  });
  std::sort(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.e.when < b.e.when; });
  if (as_json) {
    json::array a;
    for (const auto& r : rows) {
      json::object o{{"loop", r.loop},
                     {"kind", r.e.type == slow_event::kind::stall ? "stall" : "slow_callback"},
                     {"when", wall_time(r.e.when)},
                     {"duration_ms", millis(r.e.duration)},
                     {"task_id", r.e.task_id},
                     {"task", r.e.task_name},
                     {"resumed_from", wait_text(r.e.resumed_from)},
                     {"resumed_at", location(r.e.resumed_from.file, r.e.resumed_from.line, true)},
                     {"stack", r.e.stack}};
      if (!r.e.request.method.empty()) o["request"] = request_json(r.e.request);
      a.push_back(std::move(o));
    }
    return json::serialize(a) + "\n";
  }
  if (rows.empty()) return "no slow callbacks or stalls recorded\n";
  std::string out;
  for (const auto& r : rows) {
    const bool stall = r.e.type == slow_event::kind::stall;
    out += fmt::format("{} loop '{}' {} {} task #{} '{}'{}", wall_time(r.e.when), r.loop,
                       stall ? "STALL (still blocked after)" : "slow callback", human(r.e.duration), r.e.task_id,
                       r.e.task_name, r.e.request.method.empty() ? "" : " serving " + request_text(r.e.request));
    if (r.e.resumed_from.operation)
      out += fmt::format(", resumed from {} at {}", wait_text(r.e.resumed_from),
                         location(r.e.resumed_from.file, r.e.resumed_from.line, false));
    out += "\n";
    if (stall && !r.e.stack.empty()) out += r.e.stack;
  }
  return out;
}

std::string commands::loops(bool as_json) {
  std::lock_guard lock(samples_m_);
  const auto now = clock_type::now();
  json::array a;
  std::string out = fmt::format("{:<12} {:<8} {:>6} {:>12} {:>9} {:>9} {:>6} {:>7} {:>7}\n", "LOOP", "STATE", "TASKS",
                                "CALLBACKS/S", "LAG P50", "LAG P99", "BUSY", "SLOW", "STALLS");
  loop::for_each([&](const loop& l) {
    const auto s = l.stats();
    double rate = 0, busy = 0;
    if (auto it = samples_.find(l.name()); it != samples_.end()) {
      // From the older sample to now: at least a second of history once the sampler has run twice.
      const auto& base = it->second.first;
      const double secs = std::chrono::duration<double>(now - base.at).count();
      if (secs > 0.05) {
        rate = static_cast<double>(s.callbacks - base.callbacks) / secs;
        busy = std::chrono::duration<double>(s.busy - base.busy).count() / secs;
      }
    }
    const bool running = l.running();
    if (as_json) {
      a.push_back(json::object{{"loop", l.name()},
                               {"running", running},
                               {"live_tasks", s.live_tasks},
                               {"callbacks_per_second", rate},
                               {"lag_p50_ms", millis(s.lag_p50)},
                               {"lag_p99_ms", millis(s.lag_p99)},
                               {"lag_max_ms", millis(s.lag_max)},
                               {"busy_ratio", std::min(busy, 1.0)},
                               {"callbacks", s.callbacks},
                               {"slow_callbacks", s.slow_callbacks},
                               {"stalls", s.stalls}});
    } else {
      out += fmt::format("{:<12} {:<8} {:>6} {:>12.1f} {:>9} {:>9} {:>5.0f}% {:>7} {:>7}\n", l.name(),
                         running ? "running" : "idle", s.live_tasks, rate,
                         s.lag_count ? human(s.lag_p50) : "-", s.lag_count ? human(s.lag_p99) : "-",
                         std::min(busy, 1.0) * 100, s.slow_callbacks, s.stalls);
    }
  });
  return as_json ? json::serialize(a) + "\n" : out;
}

std::string commands::stacktrace(const std::vector<std::string>& args, bool as_json) {
  const std::string only = args.empty() ? std::string() : args[0];
  const auto now_tasks = all_tasks();
  json::array a;
  std::string out;
  loop::for_each([&](const loop& l) {
    if (!only.empty() && l.name() != only) return;
    std::string header = "loop '" + l.name() + "'";
    json::object o{{"loop", l.name()}, {"running", l.running()}};
    if (!l.running()) {
      out += header + ": not running\n";
      a.push_back(std::move(o));
      return;
    }
    if (auto cb = l.current_callback()) {
      std::string name;
      for (const auto& t : now_tasks)
        if (t.id == cb->task_id) name = t.name;
      header += fmt::format(": running a callback of task #{} '{}' for {}", cb->task_id, name, human(cb->running_for));
      o["task_id"] = cb->task_id;
      o["callback_ms"] = millis(cb->running_for);
    } else {
      header += ": waiting for events";
    }
    const std::string stack = l.native_stack();
    o["stack"] = stack;
    a.push_back(std::move(o));
    out += header + "\n" + (stack.empty() ? "  (not captured)\n" : stack);
  });
  if (as_json) return json::serialize(a) + "\n";
  return out.empty() ? "no such loop\n" : out;
}

std::string commands::log_level(const std::vector<std::string>& args) {
  if (args.empty()) {
    const auto name = spdlog::level::to_string_view(log::level());
    return "log level: " + std::string(name.data(), name.size()) + "\n";
  }
  if (opts_.read_only) return "error: 'log-level' is refused: the console is read-only\n";
  const auto lvl = log::parse_level(args[0]);
  log::set_level(lvl);
  const auto name = spdlog::level::to_string_view(lvl);
  log::runtime().warn("log level set to {} from the console", std::string_view(name.data(), name.size()));
  return "log level set to " + std::string(name.data(), name.size()) + "\n";
}

std::string commands::metrics(const std::vector<std::string>& args, bool as_json) {
  const std::string prefix = args.empty() ? std::string() : args[0];
  const std::string text = app_ ? loupe::metrics::exposition(*app_) : loupe::metrics::exposition(prometheus::Registry{});
  json::array a;
  std::string out;
  for (const auto& s : loupe::metrics::parse_exposition(text)) {
    if (!s.name.starts_with(prefix)) continue;
    if (as_json) {
      json::object labels;
      for (const auto& [k, v] : s.labels) labels[k] = v;
      a.push_back(json::object{{"name", s.name}, {"labels", labels}, {"value", s.value}});
      continue;
    }
    std::string l;
    for (const auto& [k, v] : s.labels) l += fmt::format("{}{}=\"{}\"", l.empty() ? "" : ",", k, v);
    out += s.name + (l.empty() ? "" : "{" + l + "}") + " " + fmt::format("{}", s.value) + "\n";
  }
  if (as_json) return json::serialize(a) + "\n";
  return out.empty() ? "no metric starts with '" + prefix + "'\n" : out;
}

std::string commands::help(const std::vector<std::string>& args) {
  if (!args.empty()) {
    for (const auto& c : builtin)
      if (args[0] == c.name) return fmt::format("usage: {}\n  {}\n", c.usage, c.help);
    for (const auto& x : extra_)
      if (args[0] == x.name) return fmt::format("usage: {}\n  {}\n", x.usage, x.help);
    return "unknown command '" + args[0] + "' (type help)\n";
  }
  std::string out = "commands:\n";
  for (const auto& c : builtin) out += fmt::format("  {:<18} {}\n", c.name, c.help);
  for (const auto& x : extra_) out += fmt::format("  {:<18} {}\n", x.name, x.help);
  out += "listings take --json; ";
  out += opts_.read_only ? "this console is read-only (cancel and log-level LEVEL are refused)\n"
                         : "help COMMAND shows its usage\n";
  return out;
}

}  // namespace loupe::monitor::detail
