// The loop: one io_context driven by one thread, the process's list of
// loops, running and stopping, its statistics, and cancelling a task by id.
#include "core/loop_internals.hpp"

#include <loupe/runtime/log.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <atomic>
#include <mutex>
#include <utility>

namespace loupe {

namespace {

thread_local loop::impl* current_loop = nullptr;
std::array<std::atomic<void (*)()>, 8> run_exit_hooks{};


// Makes `l` this thread's current loop while in scope.
class current_loop_scope {
 public:
  explicit current_loop_scope(loop::impl* l) noexcept : saved_(current_loop) { current_loop = l; }
  ~current_loop_scope() {
    // Whoever staged work for this loop's callbacks (the log) hands it over
    // before the loop stops running (a posted hand-over might never run).
    for (auto& h : run_exit_hooks)
      if (auto* hook = h.load(std::memory_order_acquire)) hook();
    current_loop = saved_;
  }
  current_loop_scope(const current_loop_scope&) = delete;
  current_loop_scope& operator=(const current_loop_scope&) = delete;

 private:
  loop::impl* saved_;
};

}  // namespace

}  // namespace loupe

// Where a debugger finds the loops when the console cannot answer (the
// process is wedged, or all there is is a core file): the gdb commands in
// monitor/gdb/loupe.py read it, and through it each loop's task registry,
// from the process's memory. The two clock readings, taken together, let
// them date a core file's steady-clock times from its modification time.
extern "C" {
struct loupe_debug_root_t {
  const std::vector<const loupe::loop*>* loops = nullptr;
  std::int64_t steady_ns = 0;  // std::chrono::steady_clock, when the first loop was made
  std::int64_t system_ns = 0;  // std::chrono::system_clock, at the same moment
};
[[gnu::used]] loupe_debug_root_t loupe_debug_root;
}

namespace loupe {

namespace {
// Every loop alive in the process, for metrics.
std::mutex all_loops_mutex;
std::vector<const loop*>& all_loops() {
  static std::vector<const loop*> v = [] {
    loupe_debug_root.loops = &v;  // its address, while it is being made
    loupe_debug_root.steady_ns = detail::now_ns();
    loupe_debug_root.system_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return std::vector<const loop*>{};
  }();
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

std::size_t loop::poll_one() {
  current_loop_scope scope(impl_.get());
  running_scope running(*impl_);
  return impl_->ctx.poll_one();
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
  s.busy_now = s.busy;
  if (const auto now = current_callback()) s.busy_now += now->running_for;
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
      if (seen >= rank)
        return i < loop_stats::lag_bucket_bounds.size() ? std::chrono::nanoseconds(loop_stats::lag_bucket_bounds[i])
                                                        : s.lag_max;
    }
    return s.lag_max;
  };
  s.lag_p50 = quantile(0.50);
  s.lag_p99 = quantile(0.99);
  return s;
}

cancel_result loop::cancel(std::uint64_t id, cancel_source by) {
  bool redirected = false;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->by_id.find(id);
    if (it == impl_->by_id.end() || it->second->done) return cancel_result::not_found;
    if (it->second->cancel_refused) return cancel_result::refused;
    redirected = static_cast<bool>(it->second->cancel_instead);
  }
  // Looked up again on the loop's own thread: records are only ever touched there.
  boost::asio::post(impl_->ctx, [l = impl_.get(), id, by] {
    detail::task_record* found = nullptr;
    std::function<void()> instead;
    {
      std::lock_guard lock(l->mutex);
      if (auto it = l->by_id.find(id); it != l->by_id.end()) {
        found = it->second;
        instead = found->cancel_instead;
      }
    }
    if (!found || found->done) return;
    if (instead) {
      instead();  // the task's owner says what a cancel means
      return;
    }
    found->cancelled_by = by;
    (found->cancel_via ? found->cancel_via : found)->signal.emit(boost::asio::cancellation_type::terminal);
  });
  return redirected ? cancel_result::redirected : cancel_result::requested;
}

loop::impl* detail::current_loop_impl() noexcept { return current_loop; }

void loop::add_run_exit_hook(void (*hook)()) {
  for (auto& h : run_exit_hooks) {
    void (*empty)() = nullptr;
    if (h.compare_exchange_strong(empty, hook, std::memory_order_acq_rel)) return;
  }
  throw std::logic_error("loop::add_run_exit_hook: all 8 hooks are taken");
}

}  // namespace loupe
