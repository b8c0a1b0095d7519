// stacktrace while the loop's thread is stuck in a callback: the console
// answers from its own thread and the stack names the blocking function.
#include <loupe/monitor/console.hpp>
#include <loupe/testkit/test.hpp>

#include "console_client.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// A console session on another thread while the loop's thread blocks: once
// the loop's callback has run 50 ms (waiting at most 10 s for that), sends
// `commands` and reads the answers until the console closes (after quit).
std::thread console_during_block(loupe::loop& loop, unsigned short port, std::string commands, std::string& transcript) {
  return std::thread([&loop, port, commands = std::move(commands), &transcript] {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      const auto cb = loop.current_callback();
      if (cb && cb->running_for >= 50ms) break;
      if (std::chrono::steady_clock::now() >= give_up) return;  // an empty transcript fails the test
      std::this_thread::sleep_for(1ms);
    }
    asio::io_context ctx;
    tcp::socket s(ctx);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(s, asio::buffer(commands));
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(transcript), ec);  // until the console closes (quit)
  });
}
}  // namespace

// The console has its own thread: it answers while the loop's thread is
// stuck in a callback, and its stack trace names the function.
[[gnu::noinline]] void blocking_function_for_test(std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);
  asm volatile("" ::: "memory");  // keep the frame
}

LOUPE_TEST_F(Console, AnswersWhileTheLoopIsBlocked) {
  expect_log({.level = spdlog::level::err, .message = "watchdog: loop 'main' has been blocked"});
  console.start();
  const unsigned short port = console.port();
  std::string transcript;
  std::thread client = console_during_block(loop, port, "ps\nstacktrace\nquit\n", transcript);
  blocking_function_for_test(1500ms);  // on the loop's thread, inside the test's callback
  client.join();
  EXPECT_NE(transcript.find("'test'"), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("running a callback of task #"), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("blocking_function_for_test"), std::string::npos) << transcript;
  co_return;
}

// The stacks are read from DWARF: a function no symbol table exports (here in
// an anonymous namespace, called from a lambda) is named, with its file:line
// and the frame inlined into it, in the console's stacktrace and in the
// watchdog's record. (They came from dladdr: both were bare addresses.)
namespace {
constexpr int sleep_line = __LINE__ + 3;
[[gnu::noinline]] void block_in_anonymous_namespace(std::chrono::milliseconds d) {
  asm volatile("" ::: "memory");
  std::this_thread::sleep_for(d);
  asm volatile("" ::: "memory");  // keep the frame
}
}  // namespace

LOUPE_TEST_F(Console, StacktraceNamesStaticAndLambdaFramesWithFileAndLine) {
  expect_log({.level = spdlog::level::err, .message = "watchdog: loop 'main' has been blocked"});
  console.start();
  const unsigned short port = console.port();
  std::string transcript;
  std::thread client = console_during_block(loop, port, "stacktrace\nquit\n", transcript);
  constexpr int lambda_line = __LINE__ + 2;
  auto block = [](std::chrono::milliseconds d) __attribute__((noinline)) {
    block_in_anonymous_namespace(d);
    asm volatile("" ::: "memory");
  };
  block(1500ms);
  client.join();
  const std::string at = "stacktrace_test.cpp:" + std::to_string(sleep_line);
  EXPECT_NE(transcript.find("(anonymous namespace)::block_in_anonymous_namespace"), std::string::npos) << transcript;
  EXPECT_NE(transcript.find(at), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("sleep_for"), std::string::npos) << transcript;  // inlined into it
  // The lambda's frame: GCC names it "{lambda(...)#1}::operator()", clang
  // "$_1::operator()"; both with the lambda's own file:line.
  const std::string in_lambda = "stacktrace_test.cpp:" + std::to_string(lambda_line);
  const auto lambda_at = transcript.find(in_lambda);
  CO_ASSERT_NE(lambda_at, std::string::npos) << transcript;
  const auto frame_begin = transcript.rfind('\n', lambda_at);
  EXPECT_NE(transcript.substr(frame_begin, lambda_at - frame_begin).find("::operator()"), std::string::npos)
      << transcript;
  const auto stall = logs({.message = "watchdog: loop 'main' has been blocked"});
  CO_ASSERT_EQ(stall.size(), 1u);
  EXPECT_NE(stall[0].msg.find(at), std::string::npos) << stall[0].msg;
  EXPECT_NE(stall[0].msg.find("(anonymous namespace)::block_in_anonymous_namespace"), std::string::npos) << stall[0].msg;
  co_return;
}
