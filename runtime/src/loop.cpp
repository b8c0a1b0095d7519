// The loop and its task registry.
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <mutex>

namespace loupe {

namespace {
thread_local loop* current_loop = nullptr;
std::atomic<std::uint64_t> task_ids{0};
}  // namespace

struct loop::impl {
  explicit impl(std::string n) : name(std::move(n)), ctx(1) {}
  std::string name;
  mutable std::mutex tasks_mutex;  // guards the list; other threads read snapshots
  detail::task_record* head = nullptr;
  detail::task_record* tail = nullptr;
  std::atomic<std::size_t> live{0};
  // Last, so it is destroyed first: destroying it destroys the frames of
  // suspended tasks, whose records unlink themselves from the list above.
  boost::asio::io_context ctx;
};

loop::loop(std::string name) : impl_(std::make_unique<impl>(std::move(name))) {}

loop::~loop() = default;

const std::string& loop::name() const noexcept { return impl_->name; }
boost::asio::io_context& loop::context() noexcept { return impl_->ctx; }
loop::executor_type loop::get_executor() noexcept { return impl_->ctx.get_executor(); }

namespace {
// Makes `l` this thread's current loop while in scope.
class current_loop_scope {
 public:
  explicit current_loop_scope(loop* l) noexcept : saved_(current_loop) { current_loop = l; }
  ~current_loop_scope() { current_loop = saved_; }
  current_loop_scope(const current_loop_scope&) = delete;
  current_loop_scope& operator=(const current_loop_scope&) = delete;

 private:
  loop* saved_;
};
}  // namespace

void loop::run() {
  current_loop_scope scope(this);
  impl_->ctx.run();
}

std::size_t loop::run_for(std::chrono::steady_clock::duration d) {
  current_loop_scope scope(this);
  return impl_->ctx.run_for(d);
}

void loop::stop() { impl_->ctx.stop(); }
bool loop::stopped() const noexcept { return impl_->ctx.stopped(); }
void loop::restart() { impl_->ctx.restart(); }
loop* loop::current() noexcept { return current_loop; }

std::vector<task_info> loop::tasks() const {
  std::vector<task_info> out;
  std::lock_guard lock(impl_->tasks_mutex);
  out.reserve(impl_->live.load(std::memory_order_relaxed));
  for (auto* r = impl_->head; r; r = r->next) out.push_back(r->info);
  return out;
}

std::size_t loop::live_task_count() const noexcept {
  return impl_->live.load(std::memory_order_relaxed);
}

namespace detail {

std::uint64_t next_task_id() noexcept {
  return task_ids.fetch_add(1, std::memory_order_relaxed) + 1;
}

boost::asio::io_context& loop_context(loop& l) noexcept { return l.impl_->ctx; }

void register_task(loop& l, task_record& r) noexcept {
  auto& i = *l.impl_;
  std::lock_guard lock(i.tasks_mutex);
  r.prev = i.tail;
  r.next = nullptr;
  if (i.tail) i.tail->next = &r; else i.head = &r;
  i.tail = &r;
  i.live.fetch_add(1, std::memory_order_relaxed);
}

void unregister_task(loop& l, task_record& r) noexcept {
  auto& i = *l.impl_;
  std::lock_guard lock(i.tasks_mutex);
  if (r.prev) r.prev->next = r.next; else i.head = r.next;
  if (r.next) r.next->prev = r.prev; else i.tail = r.prev;
  r.prev = r.next = nullptr;
  i.live.fetch_sub(1, std::memory_order_relaxed);
}

void log_task_exception(std::uint64_t id, const std::string& name, std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::runtime().error("task {} '{}' failed: {}", id, name, ex.what());
  } catch (...) {
    log::runtime().error("task {} '{}' failed with a non-standard exception", id, name);
  }
}

}  // namespace detail
}  // namespace loupe
