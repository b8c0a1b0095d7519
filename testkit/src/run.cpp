// testkit::run: a loop driven on the test's thread under a deadline.
#include <loupe/testkit/run.hpp>

#include <sstream>

namespace loupe::testkit {

std::string describe_tasks(const loop& l) {
  std::ostringstream out;
  const auto now = std::chrono::steady_clock::now();
  const auto tasks = l.tasks();
  out << tasks.size() << " live task(s) on loop '" << l.name() << "':\n";
  for (const auto& t : tasks) {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - t.created).count();
    out << "  #" << t.id << " " << t.name << "  age " << age << " ms  spawned at "
        << t.spawn_site.file_name() << ":" << t.spawn_site.line() << "\n";
  }
  return out.str();
}

namespace detail {

void run_until(loop& l, const bool& done, std::chrono::steady_clock::duration deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  l.restart();
  while (!done) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) {
      std::string message =
          "test deadline of " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count()) +
          " ms exceeded; " + describe_tasks(l);
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
