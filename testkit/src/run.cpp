// testkit::run: a loop driven on the test's thread under a deadline.
#include <loupe/testkit/run.hpp>

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace loupe::testkit {

namespace detail {

std::string ms(std::chrono::nanoseconds d) {
  // Milliseconds below ten seconds, seconds above (virtual time runs to hours).
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  const double us = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  if (d < std::chrono::seconds(10)) out << us / 1000.0 << " ms";
  else out << us / 1e6 << " s";
  return out.str();
}

std::string request_id_text(const request_info& r) {
  return r.request_id.empty() ? std::string() : " request_id=" + r.request_id;
}

}  // namespace detail

std::string describe_live_tasks(const loop& l) {
  std::ostringstream out;
  const auto now = std::chrono::steady_clock::now();
  const auto tasks = l.tasks();
  out << tasks.size() << " live task(s) on loop '" << l.name() << "':\n";
  for (const auto& t : tasks) {
    using namespace detail;
    out << "  #" << t.id << " '" << t.name << "' " << to_string(t.state) << ", age " << ms(now - t.created);
    if (t.state == task_state::suspended) {
      out << ", waiting " << ms(now - t.suspended_since);
      if (auto w = to_string(t.wait); !w.empty()) {
        out << " for " << w;
        if (t.awaiting) out << " (task #" << t.awaiting << ")";
      }
    }
    if (!t.what.empty()) out << ", doing " << t.what;
    if (auto r = to_string(t.request); !r.empty()) out << ", serving " << r << request_id_text(t.request);
    out << ", spawned at " << t.spawn_site.file_name() << ":" << t.spawn_site.line();
    if (t.parent_id) out << " by #" << t.parent_id;
    out << "\n";
  }
  return out.str();
}

std::string describe_wait_graph(const loop& l) {
  std::string out = describe_live_tasks(l);
  const auto tasks = l.tasks();
  std::map<std::uint64_t, const task_info*> by_id;
  for (const auto& t : tasks) by_id[t.id] = &t;
  // Each task awaits at most one task: follow the arrows from every task;
  // a walk that comes back to a task of its own path has found a cycle.
  std::map<std::uint64_t, int> seen;  // 1: on the current path, 2: done
  for (const auto& start : tasks) {
    std::vector<const task_info*> path;
    const task_info* t = &start;
    while (t && seen[t->id] == 0) {
      seen[t->id] = 1;
      path.push_back(t);
      auto it = t->awaiting ? by_id.find(t->awaiting) : by_id.end();
      t = it == by_id.end() ? nullptr : it->second;
    }
    if (t && seen[t->id] == 1) {
      out += "a cycle of tasks awaiting each other:";
      auto from = std::find(path.begin(), path.end(), t);
      for (auto it = from; it != path.end(); ++it) {
        const auto& w = (*it)->wait;
        out += std::string(it == from ? " " : " -> ") + "#" + std::to_string((*it)->id) + " '" + (*it)->name +
               "' awaits #" + std::to_string((*it)->awaiting);
        if (w.file) out += std::string(" at ") + w.file + ":" + std::to_string(w.line);
      }
      out += "\n";
    }
    for (const auto* p : path) seen[p->id] = 2;
  }
  return out;
}

namespace detail {

namespace {

// Tasks waiting in settle(), by loop (the loop's thread only).
std::map<const loop*, std::vector<loupe::timer*>>& settlers() {
  static thread_local std::map<const loop*, std::vector<loupe::timer*>> m;
  return m;
}

// Whether the loop stays quiet for a moment of real time: a byte written on
// loopback, or a completion posted by another thread, shows up within it.
// Handlers that run meanwhile are run (and the answer is no).
bool quiet_for_a_moment(loop& l) {
  boost::asio::steady_timer moment(l.context(), std::chrono::microseconds(50));
  bool over = false;
  moment.async_wait([&over](const boost::system::error_code&) { over = true; });
  std::size_t ran = 0;
  while (!over) {
    ran += l.run_one_for(std::chrono::milliseconds(100));
    if (l.stopped()) l.restart();
  }
  return ran <= 1;
}

// Changes whenever a task of `l` makes progress.
std::uint64_t progress_mark(const loop& l) {
  const auto stats = l.stats();
  std::uint64_t mark = stats.tasks_finished + stats.tasks_spawned;
  for (const auto& t : l.tasks()) mark += t.resume_count;
  return mark;
}

std::string deadline_message(const loop& l, std::chrono::nanoseconds budget, bool is_virtual) {
  return "test deadline of " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(budget).count()) +
         " ms" + (is_virtual ? " of virtual time" : "") + " exceeded; " + describe_wait_graph(l);
}

// Lets the test's task unwind (its awaits fail with operation_aborted).
void cancel_test_task(loop& l, const bool& done) {
  for (const auto& t : l.tasks())
    if (t.name == "test") l.cancel(t.id, cancel_source::api);
  const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!done && std::chrono::steady_clock::now() < grace) {
    l.run_for(std::chrono::milliseconds(10));
    if (l.stopped()) l.restart();
  }
}

// Ends the test with `Failure`: its task is cancelled and unwound first.
template <class Failure>
[[noreturn]] void end_test(loop& l, const bool& done, const std::string& message) {
  cancel_test_task(l, done);
  throw Failure(message);
}

void wake_settlers(const loop& l) {
  auto it = settlers().find(&l);
  if (it == settlers().end()) return;
  for (auto* t : it->second) t->cancel();
  settlers().erase(it);
}

bool has_settlers(const loop& l) {
  auto it = settlers().find(&l);
  return it != settlers().end() && !it->second.empty();
}

}  // namespace

void run_until(loop& l, const bool& done, const deadline& limit) {
  const auto started = std::chrono::steady_clock::now();
  virtual_time* vt = virtual_time::current();
  auto started_v = clock::now();
  // The backstop: a callback that never returns (a blocking call, or a body
  // that swallows cancellation in a loop) keeps this thread from ever seeing
  // the deadline. Ten seconds (of real time) past it, another thread reports
  // the live tasks and the loop thread's stack, and ends the process.
  struct backstop {
    std::mutex m;
    std::condition_variable cv;
    bool over = false;
    std::thread t;
    ~backstop() {
      {
        std::lock_guard lock(m);
        over = true;
      }
      cv.notify_all();
      if (t.joinable()) t.join();
    }
  } guard;
  guard.t = std::thread([&guard, &l, &limit, started] {
    std::unique_lock lock(guard.m);
    while (!guard.over) {
      // The deadline may change while the body runs: look again every 100 ms.
      guard.cv.wait_for(lock, std::chrono::milliseconds(100));
      if (!guard.over && std::chrono::steady_clock::now() >= started + limit.get() + std::chrono::seconds(10)) {
        std::fprintf(stderr, "testkit: the test's loop is still busy 10 s past its deadline; %s\nloop thread stack:\n%s",
                     describe_live_tasks(l).c_str(), l.native_stack().c_str());
        std::fflush(nullptr);
        std::_Exit(1);
      }
    }
  });
  l.restart();
  // Under virtual time: a timer due before every other one, armed after the
  // clock jumps, so that the loop looks at its timers again.
  std::optional<loupe::timer> kick;
  bool kick_pending = false;
  std::uint64_t last_mark = 0;
  int housekeeping_only = 0;
  if (vt) kick.emplace(l.context());
  while (!done) {
    if (!vt && (vt = virtual_time::current())) {
      // The body turned virtual time on (test::use_virtual_time()).
      started_v = clock::now() - (std::chrono::steady_clock::now() - started);
      kick.emplace(l.context());
    }
    const auto budget = limit.get();
    const auto real_now = std::chrono::steady_clock::now();
    // Under virtual time the deadline is virtual, and real time is still
    // bounded (timers that keep re-arming would spin the clock for ever).
    const bool real_over = vt && real_now >= started + std::chrono::steady_clock::duration(default_deadline);
    // (On virtual time, reaching the deadline counts once the loop is idle:
    // a timer due at the deadline itself still fires.)
    const bool over = vt ? clock::now() > started_v + budget || real_over : real_now >= started + budget;
    if (over) {
      std::string message = real_over ? "test deadline of " + ms(default_deadline) + " of real time exceeded (at " +
                                            ms(clock::now() - started_v) + " of virtual time); " + describe_wait_graph(l)
                                      : deadline_message(l, budget, vt != nullptr);
      end_test<deadline_exceeded>(l, done, message);
    }
    // One handler at a time, so the test ends as soon as its body does.
    if (l.poll_one() > 0 || done) {
      if (l.stopped()) l.restart();
      continue;
    }
    if (l.stopped()) l.restart();
    if ((vt || has_settlers(l)) && (kick_pending || loupe::detail::outside_work().load(std::memory_order_relaxed) > 0)) {
      // The loop's timers are being looked at, or another thread will hand
      // work back (an executor job, a DNS lookup: a client's connect resolves
      // first): wait for it on real time, the clock standing still and
      // settle() not returning.
      l.run_one_for(std::chrono::milliseconds(5));
      continue;
    }
    if (!vt && !has_settlers(l)) {
      // Real time: wait for the next handler (a timer, I/O), up to the deadline.
      const auto until = started + budget;
      const auto now = std::chrono::steady_clock::now();
      const auto step = std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50));
      if (l.run_one_for(step) == 0 && l.stopped()) l.restart();
      continue;
    }
    // Nothing is ready: every task waits. Make sure (bytes on loopback and
    // completions from other threads arrive within a moment).
    if (!quiet_for_a_moment(l) || done) continue;
    if (has_settlers(l)) {
      wake_settlers(l);
      continue;
    }
    if (clock::now() >= started_v + budget) end_test<deadline_exceeded>(l, done, deadline_message(l, budget, true));
    // Virtual time: jump to the next timer; with none, nothing can wake the
    // loop again. Housekeeping timers alone (the server's check for clients
    // gone) wake it, but if two of their rounds change nothing, they never will.
    const auto next = vt->next_due();
    const auto housekeeping = vt->next_housekeeping_due();
    if (!next) {
      const std::uint64_t mark = progress_mark(l);
      housekeeping_only = (housekeeping_only > 0 && mark == last_mark) ? housekeeping_only + 1 : 1;
      last_mark = mark;
      if (!housekeeping || housekeeping_only > 2) {
        std::string message = "deadlock on loop '" + l.name() +
                              "': nothing is ready to run, no I/O is in flight and no timer is pending, so no "
                              "task can ever be woken (found after " +
                              ms(std::chrono::steady_clock::now() - started) + " of real time, at " +
                              ms(clock::now() - started_v) + " of the test's virtual time); " + describe_wait_graph(l) +
                              "(timers on loupe::clock count; a plain boost::asio::steady_timer keeps real time "
                              "and is not seen)\n";
        end_test<deadlock_detected>(l, done, message);
      }
    } else {
      housekeeping_only = 0;
    }
    auto to = next ? *next : *housekeeping;
    if (next && housekeeping && *housekeeping < to) to = *housekeeping;
    if (to > started_v + budget) {
      // Nothing happens before the deadline: say what would have, and when.
      std::string message = deadline_message(l, budget, true) + "the loop is idle; its next timer is due at " +
                            ms(to - started_v) + " of virtual time, after the deadline\n";
      vt->advance_to(started_v + budget);
      end_test<deadline_exceeded>(l, done, message);
    }
    vt->advance_to(to);
    kick->expires_at(clock::now() - clock::duration(1));
    kick->async_wait([&kick_pending](const boost::system::error_code&) { kick_pending = false; });
    kick_pending = true;
    vt->forget_due();  // the loop notes them again as it looks at its timers
  }
}

}  // namespace detail

awaitable<void> settle(std::source_location at) {
  loop* l = loop::current();
  if (!l) throw std::logic_error("testkit::settle() is awaited outside a loop");
  loupe::timer wake(l->context(), clock::time_point::max());
  detail::settlers()[l].push_back(&wake);
  struct leave {
    const loop* l;
    loupe::timer* t;
    ~leave() {
      auto it = detail::settlers().find(l);
      if (it == detail::settlers().end()) return;
      std::erase(it->second, t);
      if (it->second.empty()) detail::settlers().erase(it);
    }
  } guard{l, &wake};
  auto [ec] = co_await wake.async_wait(boost::asio::as_tuple(here(at)));
  (void)ec;
}

}  // namespace loupe::testkit
