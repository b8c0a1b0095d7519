// The loop, its task registry and the rings of finished tasks and slow events.
#include "exceptions.hpp"
#include "loop_impl.hpp"

#include <loupe/runtime/log.hpp>

#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <utility>

namespace loupe {

namespace {
thread_local loop::impl* current_loop = nullptr;
thread_local detail::task_record* current_task_ptr = nullptr;
std::atomic<std::uint64_t> task_ids{0};

// Makes `l` this thread's current loop while in scope.
class current_loop_scope {
 public:
  explicit current_loop_scope(loop::impl* l) noexcept : saved_(current_loop) { current_loop = l; }
  ~current_loop_scope() {
    // Log records staged by this loop's callbacks go to the writer before the
    // loop stops running (a posted hand-over might never run).
    log::detail::hand_over_staged();
    current_loop = saved_;
  }
  current_loop_scope(const current_loop_scope&) = delete;
  current_loop_scope& operator=(const current_loop_scope&) = delete;

 private:
  loop::impl* saved_;
};

}  // namespace

const char* to_string(task_state s) noexcept {
  switch (s) {
    case task_state::scheduled: return "scheduled";
    case task_state::running: return "running";
    case task_state::suspended: return "suspended";
    case task_state::done: return "done";
  }
  return "?";
}

const char* to_string(cancel_source s) noexcept {
  switch (s) {
    case cancel_source::none: return "none";
    case cancel_source::console: return "console";
    case cancel_source::shutdown: return "shutdown";
    case cancel_source::parent: return "parent";
    case cancel_source::api: return "api";
  }
  return "?";
}

const char* to_string(task_outcome o) noexcept {
  switch (o) {
    case task_outcome::ok: return "ok";
    case task_outcome::error: return "error";
    case task_outcome::cancelled: return "cancelled";
    case task_outcome::abandoned: return "abandoned";
  }
  return "?";
}

namespace {
// Every loop alive in the process, for metrics.
std::mutex all_loops_mutex;
std::vector<const loop*>& all_loops() {
  static std::vector<const loop*> v;
  return v;
}
}  // namespace

loop::loop(std::string name) {
  std::lock_guard lock(all_loops_mutex);
  // Names are unique among live loops (they label metrics and listings): a
  // second "main" becomes "main-2".
  const auto taken = [](const std::string& n) {
    return std::any_of(all_loops().begin(), all_loops().end(), [&](const loop* l) { return l->name() == n; });
  };
  if (taken(name)) {
    std::string candidate;
    for (unsigned i = 2;; ++i) {
      candidate = name + "-" + std::to_string(i);
      if (!taken(candidate)) break;
    }
    name = std::move(candidate);
  }
  impl_ = std::make_unique<impl>(*this, std::move(name));
  all_loops().push_back(this);
}

loop::~loop() {
  {
    std::lock_guard lock(all_loops_mutex);
    auto& v = all_loops();
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
  }
  impl_->lag_timer.reset();
}

void loop::visit_all(void (*fn)(const loop&, void*), void* ctx) {
  std::lock_guard lock(all_loops_mutex);
  for (const loop* l : all_loops()) fn(*l, ctx);
}

cancel_result loop::cancel_anywhere(std::uint64_t id, cancel_source by) {
  std::lock_guard lock(all_loops_mutex);
  for (const loop* l : all_loops())
    if (l->find_task(id)) return const_cast<loop*>(l)->cancel(id, by);  // every loop is created non-const
  return cancel_result::not_found;
}

const std::string& loop::name() const noexcept { return impl_->name; }
boost::asio::io_context& loop::context() noexcept { return impl_->ctx; }
loop::executor_type loop::get_executor() noexcept { return impl_->ctx.get_executor(); }

namespace {
std::atomic<void (*)()> thread_start_hook{nullptr};

// Attaches the loop to the watchdog for the duration of run().
class running_scope {
 public:
  explicit running_scope(loop::impl& l) : l_(l) {
    thread_local bool hooked = false;
    if (!hooked) {
      if (auto* hook = thread_start_hook.load(std::memory_order_acquire)) {
        hook();
        hooked = true;
      }
    }
    l_.thread = pthread_self();
    l_.running.store(true, std::memory_order_release);
    detail::watchdog_attach(l_);
  }
  ~running_scope() {
    detail::watchdog_detach(l_);
    l_.running.store(false, std::memory_order_release);
  }

 private:
  loop::impl& l_;
};
}  // namespace

void loop::run() {
  current_loop_scope scope(impl_.get());
  running_scope running(*impl_);
  impl_->ctx.run();
}

std::size_t loop::run_for(std::chrono::steady_clock::duration d) {
  current_loop_scope scope(impl_.get());
  running_scope running(*impl_);
  return impl_->ctx.run_for(d);
}

std::size_t loop::run_one_for(std::chrono::steady_clock::duration d) {
  current_loop_scope scope(impl_.get());
  running_scope running(*impl_);
  return impl_->ctx.run_one_for(d);
}

void loop::set_thread_start_hook(void (*hook)()) { thread_start_hook.store(hook, std::memory_order_release); }

std::string loop::native_stack() const { return detail::loop_thread_stack(*impl_); }
bool loop::running() const noexcept { return impl_->running.load(std::memory_order_acquire); }

std::optional<loop::callback_info> loop::current_callback() const {
  const std::int64_t start = impl_->callback_start_ns.load(std::memory_order_acquire);
  if (start == 0) return std::nullopt;
  return callback_info{impl_->callback_task.load(std::memory_order_relaxed),
                       std::chrono::nanoseconds(detail::now_ns() - start)};
}

void loop::stop() { impl_->ctx.stop(); }
bool loop::stopped() const noexcept { return impl_->ctx.stopped(); }
void loop::restart() { impl_->ctx.restart(); }
loop* loop::current() noexcept { return current_loop ? &current_loop->owner : nullptr; }

task_info loop::impl::snapshot(const detail::task_record& r) const {
  task_info t;
  snapshot_into(r, t);
  return t;
}

void loop::impl::snapshot_into(const detail::task_record& r, task_info& t) const {
  t.id = r.id;
  t.name = r.name;
  t.loop = name;
  t.parent_id = r.parent_id;
  t.spawn_site = r.site;
  t.state = r.done ? task_state::done : r.state.load(std::memory_order_relaxed);
  t.created = r.created;
  t.suspended_since = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(r.suspended_since_ns.load(std::memory_order_relaxed)));
  t.wait.operation = r.wait_op.load(std::memory_order_relaxed);
  t.wait.object = r.wait_object.load(std::memory_order_relaxed);
  t.wait.file = r.wait_file.load(std::memory_order_relaxed);
  t.wait.line = r.wait_line.load(std::memory_order_relaxed);
  t.resume_count = r.resumes.load(std::memory_order_relaxed);
  t.busy = std::chrono::nanoseconds(r.busy_ns.load(std::memory_order_relaxed));
  t.request = r.request;
}

namespace {
std::atomic<void (*)()> registry_walk_hook{nullptr};
}  // namespace

void detail::set_registry_walk_hook_for_test(void (*hook)()) { registry_walk_hook.store(hook); }

std::vector<task_info> loop::tasks() const {
  std::vector<task_info> out;
  auto& i = *impl_;
  // A walk a slice at a time. Between slices the lock may pass to the loop
  // thread, which may start and end tasks meanwhile: the walk's place is kept
  // by a cursor linked into the list (a record with id 0, which walkers skip),
  // so that no record it points at can disappear under it.
  constexpr std::size_t slice = 64;
  detail::task_record cursor;
  const auto unlink = [&i](detail::task_record& r) {
    if (r.prev) r.prev->next = r.next; else i.head = r.next;
    if (r.next) r.next->prev = r.prev; else i.tail = r.prev;
    r.prev = r.next = nullptr;
  };
  std::lock_guard lock(i.mutex);
  out.reserve(i.live.load(std::memory_order_relaxed));
  detail::task_record* r = i.head;
  while (r) {
    for (std::size_t n = 0; r && n < slice; r = r->next) {
      if (r->id == 0) continue;  // another walk's cursor
      out.push_back(i.snapshot(*r));
      ++n;
    }
    if (!r) break;
    // Park the cursor before r, let the loop in, go on from the cursor.
    cursor.prev = r->prev;
    cursor.next = r;
    if (r->prev) r->prev->next = &cursor; else i.head = &cursor;
    r->prev = &cursor;
    if (auto* hook = registry_walk_hook.load(std::memory_order_relaxed)) hook();
    i.mutex.let_waiters_in();
    r = cursor.next;
    unlink(cursor);
  }
  return out;
}

std::size_t loop::live_task_count() const noexcept { return impl_->live.load(std::memory_order_relaxed); }

std::optional<task_info> loop::find_task(std::uint64_t id) const {
  std::lock_guard lock(impl_->mutex);
  if (auto it = impl_->by_id.find(id); it != impl_->by_id.end()) return impl_->snapshot(*it->second);
  return std::nullopt;
}

std::vector<finished_task> loop::finished_tasks() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->finished.to_vector();
}

std::optional<finished_task> loop::find_finished(std::uint64_t id) const {
  std::lock_guard lock(impl_->mutex);
  if (const auto* f = impl_->find_finished(id)) return *f;
  return std::nullopt;
}

void loop::set_finished_capacity(std::size_t n) {
  std::lock_guard lock(impl_->mutex);
  impl_->finished.set_capacity(n);
}

std::vector<slow_event> loop::slow_events() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->slow.begin(), impl_->slow.end()};
}

loop_stats loop::stats() const {
  loop_stats s;
  s.callbacks = impl_->callbacks.load(std::memory_order_relaxed);
  s.slow_callbacks = impl_->slow_callbacks.load(std::memory_order_relaxed);
  s.stalls = impl_->stalls.load(std::memory_order_relaxed);
  s.tasks_spawned = impl_->spawned.load(std::memory_order_relaxed);
  s.tasks_finished = impl_->finished_count.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < s.tasks_finished_by_outcome.size(); ++i)
    s.tasks_finished_by_outcome[i] = impl_->finished_by_outcome[i].load(std::memory_order_relaxed);
  s.live_tasks = impl_->live.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < s.callback_buckets.size(); ++i)
    s.callback_buckets[i] = impl_->callback_buckets[i].load(std::memory_order_relaxed);
  s.busy = std::chrono::nanoseconds(impl_->busy_ns.load(std::memory_order_relaxed));
  for (std::size_t i = 0; i < s.lag_buckets.size(); ++i)
    s.lag_buckets[i] = impl_->lag_buckets[i].load(std::memory_order_relaxed);
  s.lag_count = impl_->lag_count.load(std::memory_order_relaxed);
  s.lag_sum = std::chrono::nanoseconds(impl_->lag_sum_ns.load(std::memory_order_relaxed));
  s.lag_max = std::chrono::nanoseconds(impl_->lag_max_ns.load(std::memory_order_relaxed));
  auto quantile = [&](double q) -> std::chrono::nanoseconds {
    std::uint64_t total = 0;
    for (auto c : s.lag_buckets) total += c;
    if (total == 0) return {};
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < s.lag_buckets.size(); ++i) {
      seen += s.lag_buckets[i];
      if (seen >= rank) return i < loop_stats::lag_bucket_bounds.size() ? std::chrono::nanoseconds(loop_stats::lag_bucket_bounds[i]) : s.lag_max;
    }
    return s.lag_max;
  };
  s.lag_p50 = quantile(0.50);
  s.lag_p99 = quantile(0.99);
  return s;
}

cancel_result loop::cancel(std::uint64_t id, cancel_source by) {
  if (!find_task(id)) return cancel_result::not_found;
  // Looked up again on the loop's own thread: records are only ever touched there.
  boost::asio::post(impl_->ctx, [l = impl_.get(), id, by] {
    detail::task_record* found = nullptr;
    {
      std::lock_guard lock(l->mutex);
      if (auto it = l->by_id.find(id); it != l->by_id.end()) found = it->second;
    }
    if (found && !found->done) {
      found->cancelled_by = by;
      (found->cancel_via ? found->cancel_via : found)->signal.emit(boost::asio::cancellation_type::terminal);
    }
  });
  return cancel_result::requested;
}

void loop::enable_lag_sampling(std::chrono::milliseconds interval) {
  impl_->lag_interval = interval;
  impl_->lag_timer = std::make_unique<boost::asio::steady_timer>(impl_->ctx);
  // A plain callback, not a task: it belongs to the loop, not to the application.
  struct sampler {
    loop::impl* l;
    std::chrono::steady_clock::time_point due;
    void operator()(const boost::system::error_code& ec) {
      if (ec || !l->lag_timer) return;
      const auto late = std::chrono::steady_clock::now() - due;
      const std::int64_t ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(late).count());
      std::size_t b = 0;
      while (b < loop_stats::lag_bucket_bounds.size() &&
             ns > std::chrono::duration_cast<std::chrono::nanoseconds>(loop_stats::lag_bucket_bounds[b]).count())
        ++b;
      detail::bump(l->lag_buckets[b], 1);
      detail::bump(l->lag_count, 1);
      detail::bump(l->lag_sum_ns, ns);
      if (ns > l->lag_max_ns.load(std::memory_order_relaxed)) l->lag_max_ns.store(ns, std::memory_order_relaxed);
      due = std::chrono::steady_clock::now() + l->lag_interval;
      l->lag_timer->expires_at(due);
      l->lag_timer->async_wait(*this);
    }
  };
  const auto due = std::chrono::steady_clock::now() + interval;
  impl_->lag_timer->expires_at(due);
  impl_->lag_timer->async_wait(sampler{impl_.get(), due});
}

namespace detail {

loop::impl* current_loop_impl() noexcept { return current_loop; }
task_record* current_task() noexcept { return current_task_ptr; }
std::uint64_t current_task_id() noexcept { return current_task_ptr ? current_task_ptr->id : 0; }
void set_current_task(task_record* r) noexcept { current_task_ptr = r; }

namespace {
// A task that gave the thread up without starting an operation (it awaits
// another task) is suspended from now.
void mark_suspended(task_record* t) noexcept {
  t->state.store(task_state::suspended, std::memory_order_relaxed);
  t->suspended_since_ns.store(now_ns(), std::memory_order_relaxed);
}
}  // namespace

task_scope::task_scope(task_record* r) noexcept : saved_(current_task_ptr) { current_task_ptr = r; }
task_scope::~task_scope() {
  task_record* out = current_task_ptr;
  if (out == saved_) return;
  // A task started inline (Asio dispatches a new coroutine at once on its own
  // thread) that suspended without an operation on this loop — awaiting
  // another task — is suspended, not running.
  if (out && !out->done && out->state.load(std::memory_order_relaxed) == task_state::running) mark_suspended(out);
  switch_task(saved_);
}

void note_awaiting_task(std::source_location at) noexcept {
  task_record* t = current_task_ptr;
  if (!t) return;
  t->wait_op.store("await", std::memory_order_relaxed);
  t->wait_object.store("task", std::memory_order_relaxed);
  t->wait_file.store(at.file_name(), std::memory_order_relaxed);
  t->wait_line.store(static_cast<int>(at.line()), std::memory_order_relaxed);
}

inline_task::inline_task(loop& l, std::string name, std::source_location site) {
  note_awaiting_task(site);
  rec_ = create_task(l, std::move(name), site, false);
  task_record* caller = current_task_ptr;
  rec_->cancel_via = caller;
  if (caller) mark_suspended(caller);  // awaiting the inline task
  enter_task(rec_);
}

inline_task::~inline_task() {
  // Destroyed without end(): the caller's frame was destroyed while the task
  // was suspended (its loop destroyed), as for an abandoned spawned task.
  if (!ended_) finish_task(rec_, nullptr, true);
}

std::uint64_t inline_task::id() const noexcept { return rec_->id; }

bool inline_task::end(std::exception_ptr error) noexcept {
  ended_ = true;
  const bool cancellation = error && is_cancellation(error);
  // loop::cancel names who asked before it signals; with nobody named, the
  // cancellation came through the caller's own slot: the caller's.
  const bool itself = cancellation && rec_->cancelled_by != cancel_source::none;
  if (cancellation && !itself) rec_->cancelled_by = cancel_source::parent;
  leave_task(rec_);
  finish_task(rec_, std::move(error));
  return itself;
}

boost::asio::io_context& loop_context(loop& l) noexcept { return l.internals().ctx; }
boost::asio::cancellation_slot task_slot(task_record* r) noexcept { return r->signal.slot(); }
std::uint64_t task_id(const task_record* r) noexcept { return r->id; }

task_record* create_task(loop& l, std::string name, std::source_location site, bool detached) {
  auto& i = l.internals();
  auto* r = new task_record;
  r->owner = &l;
  r->id = task_ids.fetch_add(1, std::memory_order_relaxed) + 1;
  r->parent_id = current_task_id();
  // A task started while serving a request serves it too: its records and
  // reports carry the request (read here on the parent's own thread).
  if (current_task_ptr && !current_task_ptr->request.request_id.empty()) r->request = current_task_ptr->request;
  if (!detached && current_task_ptr) {
    r->resume_to = current_task_ptr;
    ++r->resume_to->refs;
  }
  r->name = std::move(name);
  r->site = site;
  r->created = std::chrono::steady_clock::now();
  r->suspended_since_ns.store(now_ns(), std::memory_order_relaxed);
  std::lock_guard lock(i.mutex);
  r->prev = i.tail;
  if (i.tail) i.tail->next = r; else i.head = r;
  i.tail = r;
  i.by_id.emplace(r->id, r);
  i.live.fetch_add(1, std::memory_order_relaxed);
  i.spawned.fetch_add(1, std::memory_order_relaxed);
  return r;
}

void finish_task(task_record* r, std::exception_ptr error, bool abandoned) noexcept {
  auto& i = r->owner->internals();
  task_outcome outcome = task_outcome::ok;
  cancel_source by = cancel_source::none;
  if (abandoned) {
    outcome = task_outcome::abandoned;
  } else if (!error) {
    // ok
  } else if (r->cancelled_by != cancel_source::none && is_cancellation(error)) {
    outcome = task_outcome::cancelled;
    by = r->cancelled_by;
  } else {
    outcome = task_outcome::error;
  }
  const std::string what = outcome == task_outcome::error ? describe(error) : std::string();
  const auto finished_at = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(i.mutex);
    r->done = true;
    r->state.store(task_state::done, std::memory_order_relaxed);
    if (r->prev) r->prev->next = r->next; else i.head = r->next;
    if (r->next) r->next->prev = r->prev; else i.tail = r->prev;
    r->prev = r->next = nullptr;
    i.by_id.erase(r->id);
    i.live.fetch_sub(1, std::memory_order_relaxed);
    // Into the ring of recent endings, overwriting the oldest entry in place
    // (its strings' storage is reused: no allocation per task once full).
    if (i.finished.capacity() > 0) {
      finished_task& f = i.finished.push();
      i.snapshot_into(*r, f.info);
      f.info.state = task_state::done;
      f.outcome = outcome;
      f.cancelled_by = by;
      f.finished = finished_at;
      f.error = what;
    }
  }
  i.finished_count.fetch_add(1, std::memory_order_relaxed);
  i.finished_by_outcome[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  // A finished task resumes nobody any more: dropping that reference now
  // breaks the cycle a parent's cancellation forwarder would otherwise keep
  // with an abandoned child (both destroyed with their loop).
  if (task_record* parent = std::exchange(r->resume_to, nullptr)) release(parent);
  release(r);
}

void release(task_record* r) noexcept {
  while (r && --r->refs == 0) {
    task_record* next = r->resume_to;
    delete r;
    r = next;
  }
}

void forward_cancellation(task_record* r, boost::asio::cancellation_type_t type) noexcept {
  if (r->done) return;
  if (r->cancelled_by == cancel_source::none) r->cancelled_by = cancel_source::parent;
  r->signal.emit(type);
}

void enter_task(task_record* r) noexcept {
  r->state.store(task_state::running, std::memory_order_relaxed);
  bump(r->resumes, 1);
  switch_task(r);
}
void leave_task(task_record* r) noexcept {
  // Hand the thread back to the task that awaits this one, if it is still alive
  // (a callback-token spawn may outlive the task that started it).
  switch_task(r->resume_to && !r->resume_to->done ? r->resume_to : nullptr);
}

task_ref::task_ref(task_record* r) noexcept : r_(r) { ++r_->refs; }
task_ref::task_ref(const task_ref& o) noexcept : r_(o.r_) {
  if (r_) ++r_->refs;
}
task_ref::~task_ref() {
  if (r_) release(r_);
}

void log_task_exception(std::uint64_t id, const std::string& name, std::exception_ptr e) noexcept {
  if (is_cancellation(e)) {
    log::runtime().info("task {} '{}' cancelled", id, name);
    return;
  }
  log::runtime().error("task {} '{}' failed: {}", id, name, describe(e));
}

void set_request_info(request_info info) {
  task_record* r = current_task_ptr;
  if (!r) return;
  auto& i = r->owner->internals();
  std::lock_guard lock(i.mutex);
  r->request = std::move(info);
}

}  // namespace detail
}  // namespace loupe
