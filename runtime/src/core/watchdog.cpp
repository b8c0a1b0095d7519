// The watchdog: a thread outside the loops that notices a callback still
// running past a threshold and reports it while it blocks (Envoy's watchdog,
// Seastar's stall detector). One thread for the process: every tick it looks
// at each running loop's current callback; one that has run past the
// threshold is reported once, with the loop thread's stack captured by a
// signal sent to that thread.

#include "core/loop_internals.hpp"
#include "core/symbolize.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/tracking.hpp>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <execinfo.h>
#include <mutex>
#include <thread>

namespace loupe {
namespace detail {

namespace {

int stack_signal() { return SIGRTMIN + 3; }
std::atomic<stall_observer> the_stall_observer{nullptr};
std::atomic<bool> warm_up_wanted{false};
constexpr int max_frames = 40;

// One capture at a time (callers hold the watchdog's mutex). The requester
// publishes a ticket; the handler claims it (so a late signal from a capture
// that timed out finds nothing to claim and cannot write over the next
// capture), writes the frames and publishes the ticket as filled. The
// ticket hand-offs also order the frames between the two threads.
struct stack_capture {
  void* frames[max_frames];
  int count = 0;
  std::atomic<unsigned> wanted{0};  // ticket to fill; 0 = none
  std::atomic<unsigned> filled{0};  // last ticket filled
  unsigned last_ticket = 0;         // requester side only
  bool broken = false;              // a claimed capture never finished
};
stack_capture capture;

void on_stack_signal(int) {
  const int saved = errno;
  const unsigned ticket = capture.wanted.exchange(0, std::memory_order_acq_rel);
  if (ticket != 0) {
    capture.count = ::backtrace(capture.frames, max_frames);
    capture.filled.store(ticket, std::memory_order_release);
  }
  errno = saved;
}

class watchdog {
 public:
  static watchdog& instance() {
    static watchdog w;
    return w;
  }

  void attach(loop::impl* l) {
    std::lock_guard lock(m_);
    loops_.push_back(l);
    if (!thread_.joinable()) {
      struct sigaction sa {};
      sa.sa_handler = on_stack_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      ::sigaction(stack_signal(), &sa, nullptr);
      void* warm[2];
      ::backtrace(warm, 2);  // loads the unwinder now, not inside the signal handler
      thread_ = std::thread([this] { run(); });
    }
  }

  void detach(loop::impl* l) {
    std::lock_guard lock(m_);
    loops_.erase(std::remove(loops_.begin(), loops_.end(), l), loops_.end());
  }

  // The stack of `l`'s thread now, if `l` is running (attached); safe from
  // any thread: the loop cannot detach (and its thread end) meanwhile.
  std::string stack_of(loop::impl* l) {
    std::lock_guard lock(m_);
    if (std::find(loops_.begin(), loops_.end(), l) == loops_.end()) return {};
    if (pthread_equal(l->thread, pthread_self())) return "  (the loop is on this thread)\n";
    return capture_stack(*l).named();
  }

  ~watchdog() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock lock(m_);
    while (!stop_) {
      if (warm_up_wanted.exchange(false, std::memory_order_relaxed)) {
        lock.unlock();
        warm_up_symbolizer();
        lock.lock();
      }
      const std::int64_t threshold = watchdog_threshold_ns.load(std::memory_order_relaxed);
      const auto tick = std::chrono::nanoseconds(threshold > 0
                                                     ? std::clamp<std::int64_t>(threshold / 10, 5'000'000, 100'000'000)
                                                     : 100'000'000);
      cv_.wait_for(lock, tick, [this] { return stop_; });
      if (stop_ || threshold <= 0) continue;
      for (loop::impl* l : loops_) check(*l, threshold);
    }
  }

  struct raw_stack {
    void* frames[max_frames];
    int count = 0;  // 0: not captured
    std::string named() const {
      return count > 0 ? symbolize(frames, count, /*first_is_exact=*/true) : "  (stack not captured)\n";
    }
  };

  // The loop thread's frames now, unnamed (naming them reads debug
  // information: slow the first time). Called with m_ held (so `l` stays
  // attached, and its thread alive).
  static raw_stack capture_stack(loop::impl& l) {
    const raw_stack none{};
    if (capture.broken) return none;
    if (++capture.last_ticket == 0) ++capture.last_ticket;  // 0 means "none"
    const unsigned ticket = capture.last_ticket;
    capture.wanted.store(ticket, std::memory_order_release);
    if (::pthread_kill(l.thread, stack_signal()) != 0) {
      capture.wanted.store(0, std::memory_order_relaxed);
      return none;
    }
    const auto filled = [&](std::chrono::milliseconds within) {
      const auto until = std::chrono::steady_clock::now() + within;
      while (capture.filled.load(std::memory_order_acquire) != ticket) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      return true;
    };
    if (!filled(std::chrono::milliseconds(200))) {
      // Withdraw the ticket. If the handler already claimed it, it is writing
      // the frames now: wait for it to finish before the buffer is reused.
      if (capture.wanted.exchange(0, std::memory_order_acq_rel) == ticket) return none;
      if (!filled(std::chrono::seconds(2))) {
        capture.broken = true;  // never reuse a buffer a handler may still write
        return none;
      }
    }
    // Frames 0 and 1 are the signal handler and the kernel's signal trampoline.
    raw_stack out;
    out.count = std::max(capture.count - 2, 0);
    std::copy_n(capture.frames + 2, out.count, out.frames);
    return out;
  }

  // Called with m_ held (so `l` stays attached while we look at it).
  void check(loop::impl& l, std::int64_t threshold) {
    const std::int64_t start = l.callback_start_ns.load(std::memory_order_acquire);
    if (start == 0) return;
    const std::uint64_t seq = l.callback_seq.load(std::memory_order_relaxed);
    if (l.stall_reported_seq.load(std::memory_order_relaxed) == seq) return;
    const std::int64_t blocked = now_ns() - start;
    if (blocked < threshold) return;
    // Capture the loop thread's stack while it is still blocked, and what it
    // runs; only then name the frames, which the first time reads the debug
    // information (run_app has it read at start-up): the callback may end
    // meanwhile, and its "stall ended" record is then written first.
    const raw_stack raw = capture_stack(l);
    const std::uint64_t task_id = l.callback_task.load(std::memory_order_relaxed);
    if (l.callback_seq.load(std::memory_order_relaxed) != seq) return;  // it ended meanwhile
    l.stall_reported_seq.store(seq, std::memory_order_release);
    l.stalls.fetch_add(1, std::memory_order_relaxed);

    slow_event ev;
    ev.type = slow_event::kind::stall;
    ev.when = std::chrono::system_clock::now();
    ev.duration = std::chrono::nanoseconds(blocked);
    ev.task_id = task_id;
    describe_task(l, ev.task_id, ev.task_name, ev.request);
    const std::string stack = raw.named();
    ev.stack = stack;
    const std::string req = ev.request.method.empty() ? std::string() : " serving " + to_string(ev.request);
    const std::string msg = fmt::format(
        "watchdog: loop '{}' has been blocked for {} ms by a callback of task {} '{}'{}; loop thread stack:\n{}", l.name,
        blocked / 1'000'000, ev.task_id, ev.task_name, req, stack);
    log::write(log::runtime(), spdlog::level::err, msg,
               {{"event", "stall"},
                {"loop", l.name},
                {"blocked_ms", blocked / 1'000'000},
                {"method", ev.request.method},
                {"route", ev.request.route}},
               {ev.task_id, ev.task_name, ev.request.request_id});
    const std::uint64_t task = ev.task_id;
    record_slow_event(l, std::move(ev));
    if (auto* observe = the_stall_observer.load(std::memory_order_acquire)) observe(l.name, task);
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::vector<loop::impl*> loops_;
  std::thread thread_;
  bool stop_ = false;
};

}  // namespace

void watchdog_attach(loop::impl& l) { watchdog::instance().attach(&l); }
void prepare_stack_names() noexcept { warm_up_wanted.store(true, std::memory_order_relaxed); }
std::string loop_thread_stack(loop::impl& l) { return watchdog::instance().stack_of(&l); }
void watchdog_detach(loop::impl& l) { watchdog::instance().detach(&l); }

}  // namespace detail

void set_stall_observer(stall_observer f) { detail::the_stall_observer.store(f, std::memory_order_release); }

}  // namespace loupe
