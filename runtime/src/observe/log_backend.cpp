// The log's writer side: spdlog's asynchronous logger (one writer thread,
// SCHED_BATCH, dropping the oldest record when full), the sinks behind it,
// barriers for flush(), and configure / levels / flush / dropped counts.
#include "observe/log_backend.hpp"

#include <spdlog/formatter.h>

#include <algorithm>
#include <condition_variable>
#include <stdexcept>
#include <thread>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace loupe::log {

namespace detail {

// Sinks get finished lines: the formatter passes the payload through.
class line_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<line_formatter>(); }
};

// Barriers are marker records: their source location's file name is this
// tag (compared by address) and its line the barrier's number. The writer
// handles its queue in order, so when a marker reaches the last sink, every
// record queued before it has been written.
constexpr const char barrier_tag[] = "loupe.log.barrier";

bool is_barrier(const spdlog::details::log_msg& msg) { return msg.source.filename == barrier_tag; }

// The writer's first sink: passes records to the configured sinks, and turns
// a barrier into a flush of them.
class fanout_sink final : public spdlog::sinks::sink {
 public:
  explicit fanout_sink(std::vector<spdlog::sink_ptr> sinks) : sinks_(std::move(sinks)) {}
  void log(const spdlog::details::log_msg& msg) override {
    if (is_barrier(msg)) return flush();
    for (auto& s : sinks_) s->log(msg);
  }
  void flush() override {
    for (auto& s : sinks_) s->flush();
  }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

 private:
  std::vector<spdlog::sink_ptr> sinks_;
};

// The writer's last sink: notes the highest barrier that got through, so that
// flush() can wait for the one it posted. A barrier pushed out of a full
// queue is covered by the next one (the highest number wins).
class barrier_sink final : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    if (!is_barrier(msg)) return;
    // Notified under the lock: a waiter that sees its barrier may destroy this
    // sink (configure() drains, then drops the old backend) as soon as it
    // holds the lock, so nothing here may touch the condition variable after
    // unlocking (ThreadSanitizer caught the broadcast racing the destroy).
    std::lock_guard lock(m_);
    done_ = std::max<std::uint64_t>(done_, static_cast<std::uint64_t>(msg.source.line));
    cv_.notify_all();
  }
  void flush() override {}
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

  // Queues a barrier through `back`; returns its number.
  std::uint64_t post(spdlog::async_logger& back) {
    const auto n = posted_.fetch_add(1, std::memory_order_relaxed) + 1;
    // The number travels in source_loc::line (an int): numbers wrap after
    // 2^31 barriers, far beyond any process's flushes.
    back.log(spdlog::source_loc{barrier_tag, static_cast<int>(n & 0x7fffffff), ""}, spdlog::level::critical,
             spdlog::string_view_t{});
    return n & 0x7fffffff;
  }
  bool wait(std::uint64_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [&] { return done_ >= n; });
  }

 private:
  std::atomic<std::uint64_t> posted_{0};
  std::mutex m_;
  std::condition_variable cv_;
  std::uint64_t done_ = 0;
};

// The default sink: stderr, written by the writer thread in batches. Lines
// collect in a buffer that is written out when the queue has nothing more
// for now (or the buffer is large): one write(2) per burst, not per record.
class stderr_batch_sink final : public spdlog::sinks::sink {
 public:
  explicit stderr_batch_sink(std::weak_ptr<spdlog::details::thread_pool> pool) : pool_(std::move(pool)) {}
  ~stderr_batch_sink() override { write_out(); }
  void log(const spdlog::details::log_msg& msg) override {
    buf_.append(msg.payload.data(), msg.payload.size());
    auto pool = pool_.lock();
    if (buf_.size() >= 64 * 1024 || !pool || pool->queue_size() == 0) write_out();
  }
  void flush() override { write_out(); }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

 private:
  void write_out() {
    std::size_t done = 0;
    while (done < buf_.size()) {
      const ssize_t n = ::write(STDERR_FILENO, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // stderr is gone: nothing better to do with the records
      done += static_cast<std::size_t>(n);
    }
    buf_.clear();
  }
  std::weak_ptr<spdlog::details::thread_pool> pool_;
  std::string buf_;  // only the writer thread touches it
};

// No flush_on(): the writer's sinks see each record as it comes (stderr is
// unbuffered), and a flush is a queue entry like a record.
namespace {

std::shared_ptr<spdlog::logger> make_logger(const char* name, std::shared_ptr<spdlog::sinks::sink> sink) {
  return std::make_shared<spdlog::logger>(name, std::move(sink));
}

}  // namespace

void backend::drain(std::chrono::milliseconds timeout) const {
  if (writer) barrier->wait(barrier->post(*writer), timeout);
}
backend::~backend() { drain(std::chrono::seconds(5)); }
void backend::post_barrier() const { barrier->post(*writer); }

std::shared_ptr<backend> make_backend(const options& opts) {
  auto b = std::make_shared<backend>();
  b->format = opts.format;
  b->capacity = std::max<std::size_t>(opts.queue_size, 1);
  // The writer is a batch thread (SCHED_BATCH): woken by a record, it does
  // not preempt the loop that queued it (on a shared core that preemption
  // was a context switch per record, costing more than the request), and
  // runs at the loop's next pause or within its time slice instead.
  b->pool = std::make_shared<spdlog::details::thread_pool>(b->capacity, 1, [] {
    sched_param none{};
    ::pthread_setschedparam(::pthread_self(), SCHED_BATCH, &none);
  });
  b->barrier = std::make_shared<barrier_sink>();
  std::vector<spdlog::sink_ptr> outputs = opts.sinks;
  if (outputs.empty()) outputs.push_back(std::make_shared<stderr_batch_sink>(b->pool));
  for (auto& s : outputs) s->set_formatter(std::make_unique<line_formatter>());
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<fanout_sink>(std::move(outputs)), b->barrier};
  b->writer = std::make_shared<spdlog::async_logger>("loupe.writer", sinks.begin(), sinks.end(), b->pool,
                                                     spdlog::async_overflow_policy::overrun_oldest);
  b->writer->set_level(spdlog::level::trace);
  return b;
}

state& the_state() {
  static state* s = [] {
    auto* st = new state;  // never destroyed: records may be written during exit
    auto sink = make_capture_sink();
    st->runtime = make_logger("loupe", sink);
    st->access = make_logger("loupe.access", sink);
    st->app = make_logger("app", sink);
    return st;
  }();
  return *s;
}

}  // namespace detail

namespace {
// Writes what is queued when the process exits normally.
struct flush_at_exit {
  ~flush_at_exit() { flush(std::chrono::seconds(2)); }
} flush_at_exit_instance;
}  // namespace

void configure(const options& opts) {
  detail::hand_over_staged();
  auto& st = detail::the_state();
  std::lock_guard lock(st.configure_m);
  auto fresh = detail::make_backend(opts);
  auto old = st.current.exchange(fresh);
  set_level(opts.level);
  // A logging thread holds the old backend only while it hands over one
  // record: wait for those to let go, so that the old writer drains and stops
  // here, on the configuring thread, rather than on a loop thread.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (old.use_count() > 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  old->drain(std::chrono::seconds(5));
  st.dropped_before.fetch_add(old->pool->overrun_counter(), std::memory_order_relaxed);
  old.reset();
}

spdlog::logger& runtime() { return *detail::the_state().runtime; }
spdlog::logger& access() { return *detail::the_state().access; }
spdlog::logger& app() { return *detail::the_state().app; }

void set_level(spdlog::level::level_enum lvl) {
  auto& st = detail::the_state();
  for (auto* lg : {st.runtime.get(), st.access.get(), st.app.get()}) lg->set_level(lvl);
}

spdlog::level::level_enum level() { return detail::the_state().runtime->level(); }

spdlog::level::level_enum parse_level(std::string_view text) {
  if (text == "warn") return spdlog::level::warn;
  if (text == "err") return spdlog::level::err;
  for (int i = 0; i < spdlog::level::n_levels; ++i) {
    const auto name = spdlog::level::to_string_view(static_cast<spdlog::level::level_enum>(i));
    if (text == std::string_view(name.data(), name.size())) return static_cast<spdlog::level::level_enum>(i);
  }
  throw std::invalid_argument("unknown log level '" + std::string(text) +
                              "' (expected trace, debug, info, warning, error, critical or off)");
}

format parse_format(const std::string& text) {
  if (text == "json") return format::json;
  if (text == "text") return format::text;
  throw std::invalid_argument("unknown log format '" + text + "' (expected json or text)");
}

bool flush(std::chrono::milliseconds timeout) {
  detail::hand_over_staged();
  auto b = detail::the_state().current.load();
  // The flush is queued like a record, and a full queue drops its oldest
  // entry: wait (bounded) for room first, so that it pushes out nothing.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (b->pool->queue_size() >= b->capacity && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return b->barrier->wait(b->barrier->post(*b->writer), std::max(left, std::chrono::milliseconds(1)));
}

std::uint64_t dropped_records() {
  auto& st = detail::the_state();
  return st.dropped_before.load(std::memory_order_relaxed) + st.current.load()->pool->overrun_counter();
}

void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f) {
  if (!lg.should_log(lvl)) return;
  detail::call_fields = &f;
  lg.log(lvl, spdlog::string_view_t(msg.data(), msg.size()));
  detail::call_fields = nullptr;
}

void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f, const context& ctx) {
  if (!lg.should_log(lvl)) return;
  detail::call_fields = &f;
  detail::call_context = &ctx;
  lg.log(lvl, spdlog::string_view_t(msg.data(), msg.size()));
  detail::call_fields = nullptr;
  detail::call_context = nullptr;
}

}  // namespace loupe::log
