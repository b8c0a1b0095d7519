// testkit::run: a loop driven on the test's thread under a deadline.
#include <loupe/testkit/run.hpp>

#include <loupe/runtime/loop.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

namespace loupe::testkit {

namespace detail {

std::string ms(std::chrono::nanoseconds d) {
  std::ostringstream out;
  out << std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0 << " ms";
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

namespace detail {

void run_until(loop& l, const bool& done, const deadline& limit) {
  const auto started = std::chrono::steady_clock::now();
  // The backstop: a callback that never returns (a blocking call, or a body
  // that swallows cancellation in a loop) keeps this thread from ever seeing
  // the deadline. Ten seconds past it, another thread reports the live tasks
  // and the loop thread's stack, and ends the process.
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
  while (!done) {
    const auto now = std::chrono::steady_clock::now();
    const auto budget = limit.get();
    const auto until = started + budget;
    if (now >= until) {
      std::string message = "test deadline of " +
                            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(budget).count()) +
                            " ms exceeded; " + describe_live_tasks(l);
      // Let the test's task unwind (its awaits fail with operation_aborted).
      for (const auto& t : l.tasks())
        if (t.name == "test") l.cancel(t.id, cancel_source::api);
      const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!done && std::chrono::steady_clock::now() < grace) {
        l.run_for(std::chrono::milliseconds(10));
        if (l.stopped()) l.restart();
      }
      throw deadline_exceeded(message);
    }
    // One handler at a time, so the test ends as soon as its body does.
    const auto step = std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50));
    if (l.run_one_for(step) == 0 && l.stopped()) l.restart();
  }
}

}  // namespace detail
}  // namespace loupe::testkit
