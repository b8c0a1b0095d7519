// A task's life: its record from start to end (spawned or inline), the
// current task of a thread, awaiting another task, references held by
// Asio's handlers, and how a task ended (into the finished ring).
#include "core/exceptions.hpp"
#include "core/loop_internals.hpp"

#include <loupe/runtime/log.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>

#include <atomic>
#include <utility>

namespace loupe {

namespace {
thread_local detail::task_record* current_task_ptr = nullptr;
std::atomic<std::uint64_t> task_ids{0};
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
    case cancel_source::client: return "client";
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

bool is_cancellation(const boost::system::error_code& ec) noexcept { return ec == boost::asio::error::operation_aborted; }

bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return is_cancellation(se.code());
  } catch (...) {
  }
  return false;
}

std::string to_string(const wait_info& w) {
  std::string out;
  if (!w.operation && !w.object && !w.file) return out;
  out += w.operation ? w.operation : "?";
  if (w.object) out.append(" on ").append(w.object);
  if (w.file) out.append(" at ").append(w.file).append(":").append(std::to_string(w.line));
  return out;
}

std::string to_string(const request_info& r) {
  if (r.method.empty() && r.target.empty()) return {};
  std::string out = r.method + " " + r.target;
  if (!r.route.empty()) out.append(" (route ").append(r.route).append(")");
  if (r.client_gone) out.append(", client gone");
  if (r.ended) out.append(", request ended");
  return out;
}

task_context current_task_context() noexcept {
  const detail::task_record* t = current_task_ptr;
  if (!t) return {};
  // Written only by this (the task's loop) thread: read without the lock.
  return {t->id, t->name, t->request.request_id};
}

namespace detail {

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

void note_wait(const char* operation, const char* object, std::source_location at) noexcept {
  task_record* t = current_task_ptr;
  if (!t) return;
  t->wait_op.store(operation, std::memory_order_relaxed);
  t->wait_object.store(object, std::memory_order_relaxed);
  t->wait_file.store(at.file_name(), std::memory_order_relaxed);
  t->wait_line.store(static_cast<int>(at.line()), std::memory_order_relaxed);
}

void note_awaiting_task(std::source_location at, const task_record* child) noexcept {
  task_record* t = current_task_ptr;
  if (!t || t == child) return;
  note_wait("await", "task", at);
  t->awaiting.store(child->id, std::memory_order_relaxed);
  // It gives the thread up to the task it awaits, with no operation of its
  // own that would say so: suspended from now. (It was left "running" when
  // the callback it ran in was stamped with another task, its connection's.)
  mark_suspended(t);
}

void mark_client_gone(loop& l, std::uint64_t task_id) {
  auto& i = access::of(l);
  std::lock_guard lock(i.mutex);
  if (auto it = i.by_id.find(task_id); it != i.by_id.end()) it->second->request.client_gone = true;
}

}  // namespace detail

void set_cancel_policy(cancel_policy p) {
  detail::task_record* r = current_task_ptr;
  if (!r) return;
  auto& i = detail::access::of(*r->owner);
  std::lock_guard lock(i.mutex);
  r->cancel_note = std::move(p.note);
  r->cancel_refused = !p.instead;
  r->cancel_instead = std::move(p.instead);
}

namespace detail {

void set_task_what(std::string what) {
  task_record* r = current_task_ptr;
  if (!r) return;
  auto& i = access::of(*r->owner);
  std::lock_guard lock(i.mutex);
  r->what = std::move(what);
}

inline_task::inline_task(loop& l, std::string name, std::source_location site) {
  rec_ = create_task(l, std::move(name), site, false);
  note_awaiting_task(site, rec_);  // the caller is suspended, awaiting the inline task
  rec_->cancel_via = current_task_ptr;
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

boost::asio::io_context& loop_context(loop& l) noexcept { return access::of(l).ctx; }
boost::asio::cancellation_slot task_slot(task_record* r) noexcept { return r->signal.slot(); }
std::uint64_t task_id(const task_record* r) noexcept { return r->id; }

task_record* create_task(loop& l, std::string name, std::source_location site, bool detached) {
  auto& i = access::of(l);
  auto* r = new task_record;
  r->owner = &l;
  r->id = task_ids.fetch_add(1, std::memory_order_relaxed) + 1;
  r->parent_id = current_task_id();
  // A task started while serving a request serves it too: its records and
  // reports carry the request (read here on the parent's own thread).
  if (task_record* p = current_task_ptr; p && !p->request.request_id.empty()) {
    r->request = p->request;
    if (p->serves_request && !p->request_alive) p->request_alive = std::make_shared<std::atomic<bool>>(true);
    r->request_alive = p->request_alive;
  }
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
  if (i.tail) i.tail->next = r;
  else i.head = r;
  i.tail = r;
  i.by_id.emplace(r->id, r);
  i.live.fetch_add(1, std::memory_order_relaxed);
  i.spawned.fetch_add(1, std::memory_order_relaxed);
  return r;
}

void finish_task(task_record* r, std::exception_ptr error, bool abandoned) noexcept {
  auto& i = access::of(*r->owner);
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
    if (r->serves_request && r->request_alive) r->request_alive->store(false, std::memory_order_relaxed);
    if (r->prev) r->prev->next = r->next;
    else i.head = r->next;
    if (r->next) r->next->prev = r->prev;
    else i.tail = r->prev;
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
  for (auto& wake : std::exchange(r->on_end, {})) wake();
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
  // (a callback-token spawn may outlive the task that started it): it runs
  // again (if it goes on waiting, the callback's end says so).
  task_record* to = r->resume_to && !r->resume_to->done ? r->resume_to : nullptr;
  if (to) to->state.store(task_state::running, std::memory_order_relaxed);
  switch_task(to);
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
  auto& i = access::of(*r->owner);
  std::lock_guard lock(i.mutex);
  r->request = std::move(info);
  r->serves_request = true;
}

}  // namespace detail
}  // namespace loupe

namespace loupe {

awaitable<void> join(loop& l, std::uint64_t id, std::source_location at) {
  auto& i = detail::access::of(l);
  detail::task_record* r = nullptr;
  {
    std::lock_guard lock(i.mutex);
    if (auto it = i.by_id.find(id); it != i.by_id.end() && !it->second->done) r = it->second;
  }
  if (!r) co_return;
  ++r->refs;  // kept until the wait is over (the loop's thread only)
  struct unref {
    detail::task_record* r;
    ~unref() { detail::release(r); }
  } keep{r};
  timer wake(l.context(), clock::time_point::max());
  struct waiter {
    timer* wake;
    bool ended = false;
  };
  auto w = std::make_shared<waiter>(waiter{&wake});
  r->on_end.push_back([w] {
    w->ended = true;
    if (w->wake) w->wake->cancel();
  });
  struct leave {
    std::shared_ptr<waiter> w;
    ~leave() { w->wake = nullptr; }  // unwound (cancelled): the waker must not touch this frame
  } guard{w};
  auto wait = [&wake, r, at](auto handler) {
    wake.async_wait(std::move(handler));
    detail::note_awaiting_task(at, r);
  };
  auto token = boost::asio::as_tuple(here(at));
  auto [ec] = co_await boost::asio::async_initiate<decltype(token), void(boost::system::error_code)>(wait, token);
  if (!w->ended) throw boost::system::system_error(ec ? ec : boost::asio::error::operation_aborted);
}

}  // namespace loupe
