// The log's calling side: the sink every logger writes through. A record is
// formatted on the calling thread, with the current task's context; on a
// loop's thread it is staged and handed to the writer once per batch of the
// loop's ready callbacks (and when the loop stops running).
#include "observe/log_backend.hpp"
#include "observe/log_format.hpp"

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/asio/post.hpp>

#include <string>
#include <vector>

namespace loupe::log {

thread_local const fields* detail::call_fields = nullptr;
thread_local const context* detail::call_context = nullptr;

namespace {

using detail::call_context;
using detail::call_fields;

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
    auto b = detail::the_state().current.load();
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
    auto b = detail::the_state().current.load();
    context ctx;
    if (call_context) {
      ctx = *call_context;
    } else if (const auto t = current_task_context(); t.id != 0) {
      ctx.task_id = t.id;
      ctx.task = t.name;
      ctx.request_id = t.request_id;
    }
    const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    loop* lp = nullptr;
    std::string direct;
    std::string* target = &direct;
    if (auto* l = loop::current()) {
      lp = l;
      auto& slot = staged.next();
      slot.time = msg.time;
      slot.source = msg.source;
      slot.level = msg.level;
      slot.line.clear();
      target = &slot.line;
    }
    detail::format_record(*target, b->format, msg.time, msg.level, name, text, ctx, call_fields);
    if (!lp) {
      b->writer->log(msg.time, msg.source, msg.level, spdlog::string_view_t(direct.data(), direct.size()));
      return;
    }
    if (staged.count >= max_staged) {
      staged.hand_over();
    } else if (!staged.posted) {
      staged.posted = true;
      // The loop's own callback, not the task's that happened to log.
      loupe::detail::task_scope outside(nullptr);
      boost::asio::post(lp->get_executor(), [] { staged.hand_over(); });
    }
  }
  void flush() override {
    auto b = detail::the_state().current.load();
    b->post_barrier();
  }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
};

// The loop hands over what its thread staged before it stops running (a
// posted hand-over might never run).
const bool registered = (loop::add_run_exit_hook(&detail::hand_over_staged), true);

}  // namespace

std::shared_ptr<spdlog::sinks::sink> detail::make_capture_sink() { return std::make_shared<capture_sink>(); }
void detail::hand_over_staged() noexcept { staged.hand_over(); }

}  // namespace loupe::log
