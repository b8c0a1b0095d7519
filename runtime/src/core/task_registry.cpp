// The task registry's readers: snapshots of live tasks (copied a slice at a
// time), the ring of finished tasks and the ring of slow events.
#include "core/loop_internals.hpp"

#include <atomic>
#include <cstring>

namespace loupe {

namespace {
// A task started while serving a request, still running after the request's
// own task ended (registry lock held).
bool outlived_its_request(const detail::task_record& r) noexcept {
  return !r.serves_request && r.request_alive && !r.request_alive->load(std::memory_order_relaxed);
}
}  // namespace

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
  // Only an "await on task" wait names the task awaited (the field is not
  // cleared on the hot path when the task goes on to other waits).
  if (t.wait.operation && t.wait.object && std::strcmp(t.wait.object, "task") == 0)
    t.awaiting = r.awaiting.load(std::memory_order_relaxed);
  t.resume_count = r.resumes.load(std::memory_order_relaxed);
  t.busy = std::chrono::nanoseconds(r.busy_ns.load(std::memory_order_relaxed));
  t.request = r.request;
  t.request.ended = outlived_its_request(r);
  t.what = r.what;
  t.cancel_note = r.cancel_note;
  t.cancel_refused = r.cancel_refused;
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
    if (r.prev) r.prev->next = r.next;
    else i.head = r.next;
    if (r.next) r.next->prev = r.prev;
    else i.tail = r.prev;
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
    if (r->prev) r->prev->next = &cursor;
    else i.head = &cursor;
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

namespace detail {

void describe_task(loop::impl& l, std::uint64_t id, std::string& name, request_info& request) {
  if (id == 0) return;
  std::lock_guard lock(l.mutex);
  if (auto it = l.by_id.find(id); it != l.by_id.end()) {
    name = it->second->name;
    request = it->second->request;
    request.ended = outlived_its_request(*it->second);
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

}  // namespace detail

}  // namespace loupe
