// loupe's loggers: records are formatted on the calling thread (JSON lines
// or text, with the task context and fields captured there) and handed to
// spdlog's asynchronous logger, whose single writer thread owns the sinks.
#include <loupe/runtime/log.hpp>

#include "core/loop_internals.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace loupe::log {
namespace {

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

// One configuration: the writer thread, its logger and sinks, the format.
struct backend {
  log::format format = format::json;
  std::size_t capacity = 0;
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<barrier_sink> barrier;
  std::shared_ptr<spdlog::async_logger> writer;

  // Whatever is queued reaches the sinks (bounded wait).
  void drain(std::chrono::milliseconds timeout) const {
    if (writer) barrier->wait(barrier->post(*writer), timeout);
  }
  ~backend() { drain(std::chrono::seconds(5)); }
};

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

// The current backend. A mutex rather than std::atomic<std::shared_ptr>:
// libstdc++ 12 implements that with a lock bit in the control-block pointer,
// which ThreadSanitizer cannot see, and the costs are the same (one lock and
// one reference count per record).
class backend_slot {
 public:
  std::shared_ptr<backend> load() const {
    std::lock_guard lock(m_);
    return b_;
  }
  std::shared_ptr<backend> exchange(std::shared_ptr<backend> fresh) {
    std::lock_guard lock(m_);
    b_.swap(fresh);
    return fresh;
  }

 private:
  mutable std::mutex m_;
  std::shared_ptr<backend> b_ = make_backend({});
};

struct state {
  backend_slot current;
  std::atomic<std::uint64_t> dropped_before{0};  // by backends replaced since
  std::mutex configure_m;
  std::shared_ptr<spdlog::logger> runtime, access, app;
};

state& the_state();

// Per-call extras, set by write() for the sink below (same thread).
thread_local const fields* call_fields = nullptr;
thread_local const context* call_context = nullptr;

void append_timestamp(std::string& out, spdlog::log_clock::time_point tp, bool json) {
  using namespace std::chrono;
  const auto secs = time_point_cast<seconds>(tp);
  const auto ms = static_cast<int>(duration_cast<milliseconds>(tp - secs).count());
  // "YYYY-MM-DDTHH:MM:SS" changes once a second: formatted then, per thread
  // (gmtime and snprintf on every record were a quarter of an access record).
  thread_local seconds::rep cached_secs = -1;
  thread_local bool cached_json = false;
  thread_local char cached[24];
  if (secs.time_since_epoch().count() != cached_secs || json != cached_json) {
    const std::time_t t = system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof cached, json ? "%04d-%02d-%02dT%02d:%02d:%02d" : "%04d-%02d-%02d %02d:%02d:%02d",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs.time_since_epoch().count();
    cached_json = json;
  }
  out.append(cached, 19);
  const char frac[] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                       static_cast<char>('0' + ms % 10), 'Z'};
  out.append(frac, sizeof frac);
}

void append_number(std::string& out, const value& v) {
  char buf[32];
  std::to_chars_result r{};
  switch (v.type()) {
    case value::kind::signed_int: r = std::to_chars(buf, buf + sizeof buf, v.signed_int()); break;
    case value::kind::unsigned_int: r = std::to_chars(buf, buf + sizeof buf, v.unsigned_int()); break;
    default: {
      const double d = v.real();
      if (!std::isfinite(d)) {  // JSON has no NaN or infinity
        out += "null";
        return;
      }
      r = std::to_chars(buf, buf + sizeof buf, d);
    }
  }
  out.append(buf, r.ptr);
}

bool reserved_key(std::string_view k) {
  return k == "ts" || k == "level" || k == "logger" || k == "msg" || k == "task_id" || k == "task" ||
         k == "request_id";
}

void append_json_field(std::string& out, std::string_view key, const value& v) {
  out += ",\"";
  // A field may not replace the record's own keys.
  if (reserved_key(key)) out += "field_";
  append_json_escaped(out, key);
  out += "\":";
  switch (v.type()) {
    case value::kind::text:
      out += '"';
      append_json_escaped(out, v.text());
      out += '"';
      break;
    case value::kind::boolean: out += v.unsigned_int() ? "true" : "false"; break;
    default: append_number(out, v);
  }
}

// Text values are quoted when they would not read as one word.
void append_text_value(std::string& out, const value& v) {
  if (v.type() == value::kind::boolean) {
    out += v.unsigned_int() ? "true" : "false";
  } else if (v.type() != value::kind::text) {
    append_number(out, v);
  } else {
    const auto t = v.text();
    const bool plain = !t.empty() && t.find_first_of(" \"=\\") == std::string_view::npos &&
                       std::all_of(t.begin(), t.end(), [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
    if (plain) {
      append_json_escaped(out, t);  // still repairs invalid UTF-8
    } else {
      out += '"';
      append_json_escaped(out, t);
      out += '"';
    }
  }
}

// Records written on a loop's thread are staged here and handed to the
// writer together, from a callback posted when the first one is staged: the
// writer thread is woken once per batch of the loop's ready callbacks, not
// once per record (which cost more system time than the request itself).
// Lines are built in place in reused slots: no allocation per record.
struct staged_record {
  spdlog::log_clock::time_point time;
  spdlog::source_loc source;
  spdlog::level::level_enum level = spdlog::level::info;
  std::string line;
};
struct staging {
  std::vector<staged_record> slots;
  std::size_t count = 0;
  bool posted = false;
  ~staging() { hand_over(); }
  staged_record& next() {
    if (count == slots.size()) slots.emplace_back();
    return slots[count++];
  }
  void hand_over() noexcept {
    posted = false;
    if (count == 0) return;
    auto b = the_state().current.load();
    for (std::size_t i = 0; i < count; ++i) {
      auto& r = slots[i];
      try {
        b->writer->log(r.time, r.source, r.level, spdlog::string_view_t(r.line.data(), r.line.size()));
      } catch (...) {
        // spdlog reports its own errors; a record is not worth an exception here.
      }
    }
    count = 0;
  }
};
thread_local staging staged;
constexpr std::size_t max_staged = 256;

// Formats the record on the calling thread and queues the line.
class capture_sink final : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    auto b = the_state().current.load();
    context ctx;
    if (call_context) {
      ctx = *call_context;
    } else if (loupe::detail::task_record* t = loupe::detail::current_task()) {
      // Written only by this (the task's loop) thread: read without the lock.
      ctx.task_id = t->id;
      ctx.task = t->name;
      ctx.request_id = t->request.request_id;
    }
    const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    loop::impl* lp = nullptr;
    std::string direct;
    std::string* target = &direct;
    if (auto* l = loupe::detail::current_loop_impl()) {
      lp = l;
      auto& slot = staged.next();
      slot.time = msg.time;
      slot.source = msg.source;
      slot.level = msg.level;
      slot.line.clear();
      target = &slot.line;
    }
    std::string& line = *target;
    line.reserve(128 + text.size());
    if (b->format == format::json) {
      line += "{\"ts\":\"";
      append_timestamp(line, msg.time, true);
      line += "\",\"level\":\"";
      const auto lv = spdlog::level::to_string_view(msg.level);
      line.append(lv.data(), lv.size());
      line += "\",\"logger\":\"";
      append_json_escaped(line, name);
      line += "\",\"msg\":\"";
      append_json_escaped(line, text);
      line += '"';
      if (ctx.task_id != 0) {
        line += ",\"task_id\":";
        line += std::to_string(ctx.task_id);
        line += ",\"task\":\"";
        append_json_escaped(line, ctx.task);
        line += '"';
      }
      if (!ctx.request_id.empty()) {
        line += ",\"request_id\":\"";
        append_json_escaped(line, ctx.request_id);
        line += '"';
      }
      if (call_fields)
        for (const auto& f : *call_fields) append_json_field(line, f.key, f.value);
      line += "}\n";
    } else {
      append_timestamp(line, msg.time, false);
      line += ' ';
      const auto lv = spdlog::level::to_string_view(msg.level);
      line.append(lv.data(), lv.size());
      line.append(lv.size() < 8 ? 8 - lv.size() : 1, ' ');
      line += '[';
      append_json_escaped(line, name);
      line += "] ";
      append_json_escaped(line, text);
      if (ctx.task_id != 0) {
        line += " task_id=" + std::to_string(ctx.task_id) + " task=";
        append_text_value(line, value(ctx.task));
      }
      if (!ctx.request_id.empty()) {
        line += " request_id=";
        append_text_value(line, value(ctx.request_id));
      }
      if (call_fields)
        for (const auto& f : *call_fields) {
          line += ' ';
          append_json_escaped(line, f.key);
          line += '=';
          append_text_value(line, f.value);
        }
      line += '\n';
    }
    if (!lp) {
      b->writer->log(msg.time, msg.source, msg.level, spdlog::string_view_t(line.data(), line.size()));
      return;
    }
    if (staged.count >= max_staged) {
      staged.hand_over();
    } else if (!staged.posted) {
      staged.posted = true;
      // The loop's own callback, not the task's that happened to log.
      loupe::detail::task_scope outside(nullptr);
      boost::asio::post(lp->ctx, [] { staged.hand_over(); });
    }
  }
  void flush() override {
    auto b = the_state().current.load();
    b->barrier->post(*b->writer);
  }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
};

// No flush_on(): the writer's sinks see each record as it comes (stderr is
// unbuffered), and a flush is a queue entry like a record.
std::shared_ptr<spdlog::logger> make_logger(const char* name, std::shared_ptr<capture_sink> sink) {
  return std::make_shared<spdlog::logger>(name, std::move(sink));
}

state& the_state() {
  static state* s = [] {
    auto* st = new state;  // never destroyed: records may be written during exit
    auto sink = std::make_shared<capture_sink>();
    st->runtime = make_logger("loupe", sink);
    st->access = make_logger("loupe.access", sink);
    st->app = make_logger("app", sink);
    return st;
  }();
  return *s;
}

// Writes what is queued when the process exits normally.
struct flush_at_exit {
  ~flush_at_exit() { flush(std::chrono::seconds(2)); }
} flush_at_exit_instance;

}  // namespace

void configure(const options& opts) {
  staged.hand_over();
  auto& st = the_state();
  std::lock_guard lock(st.configure_m);
  auto fresh = make_backend(opts);
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

spdlog::logger& runtime() { return *the_state().runtime; }
spdlog::logger& access() { return *the_state().access; }
spdlog::logger& app() { return *the_state().app; }

void set_level(spdlog::level::level_enum lvl) {
  auto& st = the_state();
  for (auto* lg : {st.runtime.get(), st.access.get(), st.app.get()}) lg->set_level(lvl);
}

spdlog::level::level_enum level() { return the_state().runtime->level(); }

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
  staged.hand_over();
  auto b = the_state().current.load();
  // The flush is queued like a record, and a full queue drops its oldest
  // entry: wait (bounded) for room first, so that it pushes out nothing.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (b->pool->queue_size() >= b->capacity && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return b->barrier->wait(b->barrier->post(*b->writer), std::max(left, std::chrono::milliseconds(1)));
}

std::uint64_t dropped_records() {
  auto& st = the_state();
  return st.dropped_before.load(std::memory_order_relaxed) +
         st.current.load()->pool->overrun_counter();
}

void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f) {
  if (!lg.should_log(lvl)) return;
  call_fields = &f;
  lg.log(lvl, spdlog::string_view_t(msg.data(), msg.size()));
  call_fields = nullptr;
}

void write(spdlog::logger& lg, spdlog::level::level_enum lvl, std::string_view msg, fields f, const context& ctx) {
  if (!lg.should_log(lvl)) return;
  call_fields = &f;
  call_context = &ctx;
  lg.log(lvl, spdlog::string_view_t(msg.data(), msg.size()));
  call_fields = nullptr;
  call_context = nullptr;
}

namespace {
// Bytes a JSON string holds as they are: printable ASCII but the quote and backslash.
constexpr std::array<bool, 256> plain_json = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();
}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // A run of characters that need no escaping is appended at once.
    const auto* run = p;
    while (p < end && plain_json[*p]) ++p;
    if (p != run) out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++p;
      continue;
    }
    // A UTF-8 sequence: copy it if well-formed, else emit U+FFFD for one byte.
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    bool ok = len != 0 && static_cast<std::size_t>(end - p) >= len;
    for (std::size_t i = 1; ok && i < len; ++i) {
      if ((p[i] & 0xc0) != 0x80) ok = false;
      else cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (ok) {
      // Reject overlong forms, surrogates and values past U+10FFFF.
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
          (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        ok = false;
    }
    if (ok) {
      out.append(reinterpret_cast<const char*>(p), len);
      p += len;
    } else {
      out += "\xef\xbf\xbd";
      ++p;
    }
  }
}

namespace detail {
void hand_over_staged() noexcept { staged.hand_over(); }
}  // namespace detail

}  // namespace loupe::log
