// Handler tracking hooks, slow-callback reports and the loop watchdog.
#include "loop_impl.hpp"

#include <loupe/runtime/detail/asio_tracking.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/tracking.hpp>

#include <condition_variable>
#include <csignal>
#include <cstring>
#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <sstream>
#include <thread>

namespace loupe {

namespace {

std::atomic<std::int64_t> slow_threshold_ns{100'000'000};
std::atomic<std::int64_t> watchdog_threshold_ns{1'000'000'000};

// The outermost location given while an operation is being initiated.
thread_local const char* location_file = nullptr;
thread_local int location_line = 0;

std::string describe_wait(const wait_info& w) {
  std::string s;
  s += w.operation ? w.operation : "?";
  if (w.object) s.append(" on ").append(w.object);
  if (w.file) s.append(" at ").append(w.file).append(":").append(std::to_string(w.line));
  return s;
}

}  // namespace

void set_tracking_options(const tracking_options& opts) {
  slow_threshold_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(opts.slow_callback).count());
  watchdog_threshold_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(opts.watchdog).count());
}

tracking_options get_tracking_options() {
  tracking_options o;
  o.slow_callback = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(slow_threshold_ns.load()));
  o.watchdog = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(watchdog_threshold_ns.load()));
  return o;
}

namespace detail {

void set_current_task(task_record* r) noexcept;

// ---- hooks -------------------------------------------------------------------

tracked_handler::~tracked_handler() {
  if (task_) release(task_);
}

void handler_creation(tracked_handler& h, const char* object_type, const char* op_name) noexcept {
  task_record* t = current_task();
  if (!t) return;
  t->refs.fetch_add(1, std::memory_order_relaxed);
  h.task_ = t;
  h.op_ = op_name;
  h.object_ = object_type;
  h.file_ = location_file;
  h.line_ = location_line;
  // The operation a task started last is what it waits on.
  t->wait_op.store(op_name, std::memory_order_relaxed);
  t->wait_object.store(object_type, std::memory_order_relaxed);
  t->wait_file.store(location_file, std::memory_order_relaxed);
  t->wait_line.store(location_line, std::memory_order_relaxed);
}

handler_location::handler_location(const char* file, int line, const char*) noexcept
    : pushed_(file != nullptr && location_file == nullptr) {
  if (pushed_) {
    location_file = file;
    location_line = line;
  }
}

handler_location::~handler_location() {
  if (pushed_) {
    location_file = nullptr;
    location_line = 0;
  }
}

tracked_completion::~tracked_completion() {
  if (active_) invocation_end();
  if (task_) release(task_);
}

void tracked_completion::invocation_begin() noexcept {
  active_ = true;
  start_ns_ = now_ns();
  saved_ = current_task();
  set_current_task(task_);
  if (task_) {
    task_->state.store(task_state::running, std::memory_order_relaxed);
    task_->resumes.fetch_add(1, std::memory_order_relaxed);
  }
  if (loop::impl* l = current_loop_impl()) {
    if (l->depth++ == 0) {
      l->callback_task.store(task_ ? task_->id : 0, std::memory_order_relaxed);
      l->callback_seq.fetch_add(1, std::memory_order_relaxed);
      l->callback_start_ns.store(start_ns_, std::memory_order_release);
    }
  }
}

void tracked_completion::invocation_end() noexcept {
  if (!active_) return;
  active_ = false;
  const std::int64_t end = now_ns();
  const std::int64_t took = end - start_ns_;
  set_current_task(saved_);
  if (task_ && !task_->done) {
    task_->busy_ns.fetch_add(took, std::memory_order_relaxed);
    task_->suspended_since_ns.store(end, std::memory_order_relaxed);
    const bool queued = task_->wait_op.load(std::memory_order_relaxed) != nullptr &&
                        (std::strcmp(task_->wait_object.load(std::memory_order_relaxed), "io_context") == 0 ||
                         std::strcmp(task_->wait_object.load(std::memory_order_relaxed), "strand") == 0);
    task_->state.store(queued ? task_state::scheduled : task_state::suspended, std::memory_order_relaxed);
  }
  loop::impl* l = current_loop_impl();
  if (!l || --l->depth != 0) return;
  l->callback_start_ns.store(0, std::memory_order_release);
  l->callbacks.fetch_add(1, std::memory_order_relaxed);
  l->busy_ns.fetch_add(took, std::memory_order_relaxed);

  const std::uint64_t seq = l->callback_seq.load(std::memory_order_relaxed);
  if (l->stall_reported_seq.load(std::memory_order_acquire) == seq) {
    log::runtime().warn("loop '{}' stall ended: the callback of task {} ran {} ms in all", l->name,
                        task_ ? task_->id : 0, took / 1'000'000);
  }
  const std::int64_t threshold = slow_threshold_ns.load(std::memory_order_relaxed);
  if (threshold > 0 && took >= threshold) {
    slow_event ev;
    ev.type = slow_event::kind::slow_callback;
    ev.when = std::chrono::system_clock::now();
    ev.duration = std::chrono::nanoseconds(took);
    ev.resumed_from = wait_info{op_, object_, file_, line_};
    if (task_) {
      ev.task_id = task_->id;
      std::lock_guard lock(l->mutex);
      ev.task_name = task_->name;
      ev.request = task_->request;
    }
    l->slow_callbacks.fetch_add(1, std::memory_order_relaxed);
    std::string req;
    if (!ev.request.method.empty())
      req = fmt::format(" serving {} {} (route '{}'{}{})", ev.request.method, ev.request.target, ev.request.route,
                        ev.request.request_id.empty() ? "" : ", request ", ev.request.request_id);
    log::runtime().warn("slow callback: task {} '{}'{} ran {:.1f} ms on loop '{}'; it resumed from {}", ev.task_id,
                        ev.task_name, req, static_cast<double>(took) / 1e6, l->name, describe_wait(ev.resumed_from));
    record_slow_event(*l, std::move(ev));
  }
}

void record_slow_event(loop::impl& l, slow_event ev) {
  std::lock_guard lock(l.mutex);
  if (l.slow.size() >= l.slow_capacity) l.slow.pop_front();
  l.slow.push_back(std::move(ev));
}

// ---- watchdog ----------------------------------------------------------------
//
// One thread for the process. Every tick it looks at each running loop's
// current callback; one that has run past the threshold is reported once,
// with the loop thread's stack captured by a signal sent to that thread.

namespace {

int stack_signal() { return SIGRTMIN + 3; }
constexpr int max_frames = 64;

struct stack_capture {
  void* frames[max_frames];
  std::atomic<int> count{-1};
};
stack_capture capture;  // one capture at a time (the watchdog thread is alone)

void on_stack_signal(int) {
  const int saved = errno;
  capture.count.store(::backtrace(capture.frames, max_frames), std::memory_order_release);
  errno = saved;
}

std::string symbolize(void* const* frames, int n) {
  std::ostringstream out;
  for (int i = 0; i < n; ++i) {
    Dl_info info{};
    out << "  #" << i << " " << frames[i];
    if (::dladdr(frames[i], &info) && info.dli_sname) {
      int status = 0;
      char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
      out << " " << (status == 0 && demangled ? demangled : info.dli_sname);
      std::free(demangled);
      out << "+" << static_cast<const char*>(frames[i]) - static_cast<const char*>(info.dli_saddr);
    }
    if (info.dli_fname) out << " (" << info.dli_fname << ")";
    out << "\n";
  }
  return out.str();
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
      const std::int64_t threshold = watchdog_threshold_ns.load(std::memory_order_relaxed);
      const auto tick = std::chrono::nanoseconds(
          threshold > 0 ? std::clamp<std::int64_t>(threshold / 10, 5'000'000, 100'000'000) : 100'000'000);
      cv_.wait_for(lock, tick, [this] { return stop_; });
      if (stop_ || threshold <= 0) continue;
      for (loop::impl* l : loops_) check(*l, threshold);
    }
  }

  // Called with m_ held (so `l` stays attached while we look at it).
  void check(loop::impl& l, std::int64_t threshold) {
    const std::int64_t start = l.callback_start_ns.load(std::memory_order_acquire);
    if (start == 0) return;
    const std::uint64_t seq = l.callback_seq.load(std::memory_order_relaxed);
    if (l.stall_reported_seq.load(std::memory_order_relaxed) == seq) return;
    const std::int64_t blocked = now_ns() - start;
    if (blocked < threshold) return;
    // Capture the loop thread's stack while it is still blocked.
    capture.count.store(-1, std::memory_order_relaxed);
    std::string stack;
    if (::pthread_kill(l.thread, stack_signal()) == 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (capture.count.load(std::memory_order_acquire) < 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      const int n = capture.count.load(std::memory_order_acquire);
      stack = n > 0 ? symbolize(capture.frames, n) : std::string("  (stack not captured)\n");
    }
    if (l.callback_seq.load(std::memory_order_relaxed) != seq) return;  // it ended meanwhile
    l.stall_reported_seq.store(seq, std::memory_order_release);
    l.stalls.fetch_add(1, std::memory_order_relaxed);

    slow_event ev;
    ev.type = slow_event::kind::stall;
    ev.when = std::chrono::system_clock::now();
    ev.duration = std::chrono::nanoseconds(blocked);
    ev.task_id = l.callback_task.load(std::memory_order_relaxed);
    ev.stack = stack;
    {
      std::lock_guard reg(l.mutex);
      for (auto* r = l.head; r; r = r->next)
        if (r->id == ev.task_id) {
          ev.task_name = r->name;
          ev.request = r->request;
          break;
        }
    }
    std::string req;
    if (!ev.request.method.empty())
      req = fmt::format(" serving {} {} (route '{}')", ev.request.method, ev.request.target, ev.request.route);
    log::runtime().error("watchdog: loop '{}' has been blocked for {} ms by a callback of task {} '{}'{}; loop thread stack:\n{}",
                         l.name, blocked / 1'000'000, ev.task_id, ev.task_name, req, stack);
    record_slow_event(l, std::move(ev));
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::vector<loop::impl*> loops_;
  std::thread thread_;
  bool stop_ = false;
};

}  // namespace

void watchdog_attach(loop::impl& l) { watchdog::instance().attach(&l); }
void watchdog_detach(loop::impl& l) { watchdog::instance().detach(&l); }

}  // namespace detail
}  // namespace loupe
