// loupe/runtime/detail/asio_tracking.hpp — Boost.Asio custom handler tracking.
//
// Named by BOOST_ASIO_CUSTOM_HANDLER_TRACKING (a PUBLIC compile definition of
// loupe::runtime), so Asio includes it in every translation unit and calls
// these hooks around every asynchronous operation:
//   - creation: the new handler is stamped with the running task, the
//     operation ("async_wait"), the I/O object ("deadline_timer") and the
//     source location of the `co_await` that started it, when known;
//   - invocation begin/end: each callback is timed; the task's state, resume
//     count and busy time are updated; slow callbacks are reported and the
//     watchdog sees what each loop is running.
// Kept small: every Asio header includes it.
#pragma once

#include <cstdint>

namespace boost::asio {
class execution_context;
}  // namespace boost::asio

namespace loupe::detail {

struct task_record;

/// Base of every Asio operation (BOOST_ASIO_INHERIT_TRACKED_HANDLER).
class tracked_handler {
 public:
  tracked_handler() noexcept = default;
  tracked_handler(const tracked_handler&) noexcept {}
  tracked_handler& operator=(const tracked_handler&) noexcept { return *this; }
  ~tracked_handler();

  task_record* task_ = nullptr;  // holds a reference while set
  const char* op_ = nullptr;
  const char* object_ = nullptr;
  const char* file_ = nullptr;
  int line_ = 0;
};

/// `context` is the operation's execution context: only operations of the
/// current loop's own io_context are stamped with its task (work posted to a
/// thread pool completes on other threads and belongs to no loop's task).
void handler_creation(tracked_handler& h, const void* context, const char* object_type, const char* op_name) noexcept;

/// The location of the `co_await` (or composed operation) being initiated.
/// Initiations nest (a coroutine resumed inline runs inside the initiation
/// that resumed it), so the innermost location wins — except that a location
/// inside Boost never hides one in the user's code.
class handler_location {
 public:
  handler_location(const char* file, int line, const char* func) noexcept;
  ~handler_location();
  handler_location(const handler_location&) = delete;
  handler_location& operator=(const handler_location&) = delete;

 private:
  const char* saved_file_;
  int saved_line_;
  bool saved_library_;
  bool pushed_;
};

/// Brackets one callback (BOOST_ASIO_HANDLER_COMPLETION / INVOCATION_*).
class tracked_completion {
 public:
  explicit tracked_completion(tracked_handler& h) noexcept
      : task_(h.task_), op_(h.op_), object_(h.object_), file_(h.file_), line_(h.line_) {
    h.task_ = nullptr;  // the reference moves here
  }
  ~tracked_completion();
  tracked_completion(const tracked_completion&) = delete;
  tracked_completion& operator=(const tracked_completion&) = delete;

  void invocation_begin() noexcept;
  void invocation_end() noexcept;

 private:
  task_record* task_;
  const char* op_;
  const char* object_;
  const char* file_;
  int line_;
  task_record* saved_ = nullptr;
  std::int64_t start_ns_ = 0;
  bool active_ = false;
};

}  // namespace loupe::detail

#if defined(BOOST_ASIO_CUSTOM_HANDLER_TRACKING)
#define BOOST_ASIO_INHERIT_TRACKED_HANDLER : public ::loupe::detail::tracked_handler
#define BOOST_ASIO_ALSO_INHERIT_TRACKED_HANDLER , public ::loupe::detail::tracked_handler
#define BOOST_ASIO_HANDLER_TRACKING_INIT (void)0
#define BOOST_ASIO_HANDLER_LOCATION(args) ::loupe::detail::handler_location loupe_handler_location_ args
#define BOOST_ASIO_HANDLER_CREATION(args) ::loupe::detail::asio_creation args
#define BOOST_ASIO_HANDLER_COMPLETION(args) ::loupe::detail::tracked_completion loupe_tracked_completion_ args
#define BOOST_ASIO_HANDLER_INVOCATION_BEGIN(args) loupe_tracked_completion_.invocation_begin()
#define BOOST_ASIO_HANDLER_INVOCATION_END loupe_tracked_completion_.invocation_end()
#define BOOST_ASIO_HANDLER_OPERATION(args) (void)0
#define BOOST_ASIO_HANDLER_REACTOR_REGISTRATION(args) (void)0
#define BOOST_ASIO_HANDLER_REACTOR_DEREGISTRATION(args) (void)0
#define BOOST_ASIO_HANDLER_REACTOR_READ_EVENT 1
#define BOOST_ASIO_HANDLER_REACTOR_WRITE_EVENT 2
#define BOOST_ASIO_HANDLER_REACTOR_ERROR_EVENT 4
#define BOOST_ASIO_HANDLER_REACTOR_EVENTS(args) (void)0
#define BOOST_ASIO_HANDLER_REACTOR_OPERATION(args) (void)0
#endif  // BOOST_ASIO_CUSTOM_HANDLER_TRACKING

namespace loupe::detail {
// The execution_context base of whatever context type Asio passes.
inline const boost::asio::execution_context& context_of(const boost::asio::execution_context& c) noexcept { return c; }
// Asio passes (context, handler, object type, object, native handle, op name).
template <class Context>
inline void asio_creation(Context& ctx, tracked_handler& h, const char* object_type, void*, std::uintmax_t,
                          const char* op_name) noexcept {
  handler_creation(h, &context_of(ctx), object_type, op_name);
}
}  // namespace loupe::detail
