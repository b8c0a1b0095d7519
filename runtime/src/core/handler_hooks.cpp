// Asio's handler-tracking hooks: the current task of every callback, what a
// task waits on (operation, object, the co_await's file:line), busy time, and
// the slow-callback report (asyncio's slow_callback_duration).
#include "core/loop_internals.hpp"

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

}  // namespace

std::atomic<std::int64_t> detail::slow_threshold_ns{100'000'000};
std::atomic<std::int64_t> detail::watchdog_threshold_ns{1'000'000'000};

void set_tracking_options(const tracking_options& opts) {
  detail::slow_threshold_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(opts.slow_callback).count());
  detail::watchdog_threshold_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(opts.watchdog).count());
}

tracking_options get_tracking_options() {
  tracking_options o;
  o.slow_callback =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(detail::slow_threshold_ns.load()));
  o.watchdog = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(detail::watchdog_threshold_ns.load()));
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

void handler_creation(tracked_handler& h, const void* context, const char* object_type, const char* op_name) noexcept {
  task_record* t = current_task();
  if (!t) return;
  // Only the task's own loop may complete (and count references of) its handlers.
  if (context != static_cast<const boost::asio::execution_context*>(&access::of(*t->owner).ctx)) return;
  ++t->refs;
  h.task_ = t;
  h.op_ = op_name;
  h.object_ = object_type;
  h.file_ = location_file;
  h.line_ = location_line;
  // The operation a task started last is what it waits on: queued work
  // (post, dispatch) makes it scheduled, anything else suspended.
  const bool queued = object_type &&
                      (std::strcmp(object_type, "io_context") == 0 || std::strcmp(object_type, "strand") == 0);
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
  // A task that started no operation in this callback (it finished, or it
  // was resumed by a plain callback) is no longer running; nor is the one the
  // thread was handed to last (a task whose awaited child ended, still
  // waiting for another).
  // (Only at the end of an outermost callback: a nested one returns to code
  // of its caller's, which runs on.)
  task_record* last = !l || l->depth == 1 ? current_task() : nullptr;
  for (task_record* t : {task_, last}) {
    if (t && !t->done && t->state.load(std::memory_order_relaxed) == task_state::running) {
      t->state.store(task_state::suspended, std::memory_order_relaxed);
      t->suspended_since_ns.store(end, std::memory_order_relaxed);
    }
  }
  set_current_task(saved_);
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
    // The record is the stalling task's: its name and request, as the
    // watchdog's first record gives them (it said "task":"" before).
    std::string name;
    request_info request;
    describe_task(*l, longest_task_id, name, request);
    const std::string req = request.method.empty() ? std::string() : " serving " + to_string(request);
    log::write(log::runtime(), spdlog::level::warn,
               fmt::format("loop '{}' stall ended: the callback of task {} '{}'{} ran {} ms in all", l->name,
                           longest_task_id, name, req, took / 1'000'000),
               {{"event", "stall_ended"},
                {"loop", l->name},
                {"duration_ms", took / 1'000'000},
                {"method", request.method},
                {"route", request.route}},
               {longest_task_id, name, request.request_id});
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
    const std::string req = ev.request.method.empty() ? std::string() : " serving " + to_string(ev.request);
    const std::string where = to_string(ev.resumed_from);
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

}  // namespace detail
}  // namespace loupe
