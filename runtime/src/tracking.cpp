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
thread_local bool location_is_library = false;

// Time within one callback is split into segments by task switches (a task
// awaited by another starts and ends inside its parent's callback). Each
// segment is charged to its task; the task with the longest segment is the
// one a slow-callback report names.
thread_local std::int64_t segment_start_ns = 0;
thread_local std::uint64_t longest_task_id = 0;
thread_local std::int64_t longest_segment_ns = -1;

std::string describe_wait(const wait_info& w) {
  if (w.operation && !w.object && !w.file) return w.operation;
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


namespace {
void close_segment(std::int64_t now) noexcept {
  task_record* t = current_task();
  const std::int64_t d = now - segment_start_ns;
  if (t) bump(t->busy_ns, d);
  if (d > longest_segment_ns) {
    longest_segment_ns = d;
    longest_task_id = t ? t->id : 0;
  }
  segment_start_ns = now;
}
}  // namespace

void switch_task(task_record* to) noexcept {
  loop::impl* l = current_loop_impl();
  if (l && l->depth > 0) {
    close_segment(now_ns());
    l->callback_task.store(to ? to->id : 0, std::memory_order_relaxed);
  }
  set_current_task(to);
}

// ---- hooks -------------------------------------------------------------------

tracked_handler::~tracked_handler() {
  if (task_) release(task_);
}

void handler_creation(tracked_handler& h, const void* context, const char* object_type,
                      const char* op_name) noexcept {
  task_record* t = current_task();
  if (!t) return;
  // Only the task's own loop may complete (and count references of) its handlers.
  if (context != static_cast<const boost::asio::execution_context*>(&t->owner->internals().ctx)) return;
  ++t->refs;
  h.task_ = t;
  h.op_ = op_name;
  h.object_ = object_type;
  h.file_ = location_file;
  h.line_ = location_line;
  // The operation a task started last is what it waits on: queued work
  // (post, dispatch) makes it scheduled, anything else suspended.
  const bool queued = object_type && (std::strcmp(object_type, "io_context") == 0 ||
                                      std::strcmp(object_type, "strand") == 0);
  t->state.store(queued ? task_state::scheduled : task_state::suspended, std::memory_order_relaxed);
  // The start of the running segment stands for "now": no clock read per operation.
  t->suspended_since_ns.store(segment_start_ns, std::memory_order_relaxed);
  t->wait_op.store(op_name, std::memory_order_relaxed);
  t->wait_object.store(object_type, std::memory_order_relaxed);
  t->wait_file.store(location_file, std::memory_order_relaxed);
  t->wait_line.store(location_line, std::memory_order_relaxed);
}

namespace {
// Whether a source file is Boost's own. Locations are string literals, so the
// answer is cached by address (a search per operation showed in profiles).
bool is_library_file(const char* file) noexcept {
  struct entry {
    const char* file;
    bool library;
  };
  thread_local entry cache[64] = {};
  entry& e = cache[(reinterpret_cast<std::uintptr_t>(file) >> 3) & 63];
  if (e.file != file) e = {file, std::strstr(file, "/boost/") != nullptr};
  return e.library;
}
}  // namespace

handler_location::handler_location(const char* file, int line, const char*) noexcept
    : saved_file_(location_file), saved_line_(location_line), saved_library_(location_is_library), pushed_(false) {
  if (!file) return;
  const bool library = is_library_file(file);
  if (location_file && library && !location_is_library) return;
  pushed_ = true;
  location_file = file;
  location_line = line;
  location_is_library = library;
}

handler_location::~handler_location() {
  if (pushed_) {
    location_file = saved_file_;
    location_line = saved_line_;
    location_is_library = saved_library_;
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
  if (task_) {
    task_->state.store(task_state::running, std::memory_order_relaxed);
    bump(task_->resumes, 1);
  }
  loop::impl* l = current_loop_impl();
  if (!l) {
    set_current_task(task_);
    return;
  }
  if (l->depth++ == 0) {
    segment_start_ns = start_ns_;
    longest_segment_ns = -1;
    longest_task_id = 0;
    set_current_task(task_);
    l->callback_task.store(task_ ? task_->id : 0, std::memory_order_relaxed);
    bump(l->callback_seq, 1);
    l->callback_start_ns.store(start_ns_, std::memory_order_release);
  } else {
    close_segment(start_ns_);
    set_current_task(task_);
    l->callback_task.store(task_ ? task_->id : 0, std::memory_order_relaxed);
  }
}

void tracked_completion::invocation_end() noexcept {
  if (!active_) return;
  active_ = false;
  const std::int64_t end = now_ns();
  const std::int64_t took = end - start_ns_;
  loop::impl* l = current_loop_impl();
  if (l) close_segment(end);
  else if (task_) bump(task_->busy_ns, took);
  set_current_task(saved_);
  // A task that started no operation in this callback (it finished, or it
  // was resumed by a plain callback) is no longer running.
  if (task_ && !task_->done && task_->state.load(std::memory_order_relaxed) == task_state::running) {
    task_->state.store(task_state::suspended, std::memory_order_relaxed);
    task_->suspended_since_ns.store(end, std::memory_order_relaxed);
  }
  if (!l) return;
  if (--l->depth != 0) {
    l->callback_task.store(saved_ ? saved_->id : 0, std::memory_order_relaxed);
    return;
  }
  l->callback_start_ns.store(0, std::memory_order_release);
  bump(l->callbacks, 1);
  bump(l->busy_ns, took);
  {
    std::size_t b = 0;
    while (b < loop_stats::callback_bucket_bounds.size() &&
           took > std::chrono::nanoseconds(loop_stats::callback_bucket_bounds[b]).count())
      ++b;
    bump(l->callback_buckets[b], 1);
  }

  const std::uint64_t seq = l->callback_seq.load(std::memory_order_relaxed);
  if (l->stall_reported_seq.load(std::memory_order_acquire) == seq) {
    log::write(log::runtime(), spdlog::level::warn,
               fmt::format("loop '{}' stall ended: the callback of task {} ran {} ms in all", l->name,
                           longest_task_id, took / 1'000'000),
               {{"event", "stall_ended"}, {"loop", l->name}, {"duration_ms", took / 1'000'000}},
               {longest_task_id, {}, {}});
  }
  const std::int64_t threshold = slow_threshold_ns.load(std::memory_order_relaxed);
  if (threshold > 0 && took >= threshold) {
    slow_event ev;
    ev.type = slow_event::kind::slow_callback;
    ev.when = std::chrono::system_clock::now();
    ev.duration = std::chrono::nanoseconds(took);
    ev.task_id = longest_task_id;
    // The callback resumed its own task; a task that started inside it ran from its start.
    if (task_ && task_->id == ev.task_id) ev.resumed_from = wait_info{op_, object_, file_, line_};
    else ev.resumed_from = wait_info{"task start", nullptr, nullptr, 0};
    describe_task(*l, ev.task_id, ev.task_name, ev.request);
    l->slow_callbacks.fetch_add(1, std::memory_order_relaxed);
    std::string req;
    if (!ev.request.method.empty())
      req = fmt::format(" serving {} {} (route '{}')", ev.request.method, ev.request.target, ev.request.route);
    const std::string where = describe_wait(ev.resumed_from);
    const std::string msg = fmt::format("slow callback: task {} '{}'{} ran {:.1f} ms on loop '{}'; it resumed from {}",
                                        ev.task_id, ev.task_name, req, static_cast<double>(took) / 1e6, l->name, where);
    // The record is the slow task's, wherever the report is written from.
    log::write(log::runtime(), spdlog::level::warn, msg,
               {{"event", "slow_callback"},
                {"loop", l->name},
                {"duration_ms", static_cast<double>(took) / 1e6},
                {"resumed_from", where},
                {"method", ev.request.method},
                {"route", ev.request.route}},
               {ev.task_id, ev.task_name, ev.request.request_id});
    record_slow_event(*l, std::move(ev));
  }
}

void describe_task(loop::impl& l, std::uint64_t id, std::string& name, request_info& request) {
  if (id == 0) return;
  std::lock_guard lock(l.mutex);
  if (auto it = l.by_id.find(id); it != l.by_id.end()) {
    name = it->second->name;
    request = it->second->request;
    return;
  }
  if (const auto* f = l.find_finished(id)) {
    name = f->info.name;
    request = f->info.request;
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
std::atomic<stall_observer> the_stall_observer{nullptr};
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

std::string symbolize(void* const* frames, int n) {
  std::ostringstream out;
  for (int i = 0; i < n; ++i) {
    Dl_info info{};
    out << "  #" << i << " " << frames[i];
    if (::dladdr(frames[i], &info) && info.dli_sname) {
      int status = 0;
      char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
      std::string_view fn = status == 0 && demangled ? demangled : info.dli_sname;
      if (fn.size() > 160) out << " " << fn.substr(0, 157) << "...";
      else out << " " << fn;
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

  // The stack of `l`'s thread now, if `l` is running (attached); safe from
  // any thread: the loop cannot detach (and its thread end) meanwhile.
  std::string stack_of(loop::impl* l) {
    std::lock_guard lock(m_);
    if (std::find(loops_.begin(), loops_.end(), l) == loops_.end()) return {};
    if (pthread_equal(l->thread, pthread_self())) return "  (the loop is on this thread)\n";
    return capture_stack(*l);
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

  // Called with m_ held (so `l` stays attached, and its thread alive).
  static std::string capture_stack(loop::impl& l) {
    const std::string none = "  (stack not captured)\n";
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
    const int n = capture.count;
    return n > 2 ? symbolize(capture.frames + 2, n - 2) : none;
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
    std::string stack = capture_stack(l);
    if (l.callback_seq.load(std::memory_order_relaxed) != seq) return;  // it ended meanwhile
    l.stall_reported_seq.store(seq, std::memory_order_release);
    l.stalls.fetch_add(1, std::memory_order_relaxed);

    slow_event ev;
    ev.type = slow_event::kind::stall;
    ev.when = std::chrono::system_clock::now();
    ev.duration = std::chrono::nanoseconds(blocked);
    ev.task_id = l.callback_task.load(std::memory_order_relaxed);
    ev.stack = stack;
    describe_task(l, ev.task_id, ev.task_name, ev.request);
    std::string req;
    if (!ev.request.method.empty())
      req = fmt::format(" serving {} {} (route '{}')", ev.request.method, ev.request.target, ev.request.route);
    const std::string msg =
        fmt::format("watchdog: loop '{}' has been blocked for {} ms by a callback of task {} '{}'{}; loop thread stack:\n{}",
                    l.name, blocked / 1'000'000, ev.task_id, ev.task_name, req, stack);
    log::write(log::runtime(), spdlog::level::err, msg,
               {{"event", "stall"}, {"loop", l.name}, {"blocked_ms", blocked / 1'000'000},
                {"method", ev.request.method}, {"route", ev.request.route}},
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
std::string loop_thread_stack(loop::impl& l) { return watchdog::instance().stack_of(&l); }
void watchdog_detach(loop::impl& l) { watchdog::instance().detach(&l); }

}  // namespace detail

void set_stall_observer(stall_observer f) { detail::the_stall_observer.store(f, std::memory_order_release); }

}  // namespace loupe
