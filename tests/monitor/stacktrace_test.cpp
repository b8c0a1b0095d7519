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
  std::thread client([&] {
    // Until the loop is inside the blocking call (its callback has run 50 ms).
    for (;;) {
      const auto cb = loop.current_callback();
      if (cb && cb->running_for >= 50ms) break;
      std::this_thread::sleep_for(1ms);
    }
    asio::io_context ctx;
    tcp::socket s(ctx);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(s, asio::buffer(std::string("ps\nstacktrace\nquit\n")));
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(transcript), ec);  // until the console closes (quit)
  });
  blocking_function_for_test(1500ms);  // on the loop's thread, inside the test's callback
  client.join();
  EXPECT_NE(transcript.find("'test'"), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("running a callback of task #"), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("blocking_function_for_test"), std::string::npos) << transcript;
  co_return;
}
