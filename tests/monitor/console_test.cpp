// The monitor console: its line protocol (telnet bytes, several consoles,
// unknown commands, long lines), its commands over a live loop, read-only
// mode, the loopback rule, and answering while the loop is blocked.
#include <loupe/monitor/console.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/tracking.hpp>
#include <loupe/testkit/test.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <thread>

using loupe::awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A console client on the test's loop: reads up to each prompt.
class console_client {
 public:
  explicit console_client(loupe::loop& l) : socket_(l.get_executor()) {}
  awaitable<std::string> connect(unsigned short port) {
    co_await socket_.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    co_return co_await until_prompt();  // the banner
  }
  awaitable<void> send_raw(std::string bytes) { co_await asio::async_write(socket_, asio::buffer(bytes), asio::use_awaitable); }
  awaitable<std::string> command(std::string line) {
    co_await send_raw(line + "\r\n");
    co_return co_await until_prompt();
  }

 private:
  awaitable<std::string> until_prompt() {
    const auto n = co_await asio::async_read_until(socket_, asio::dynamic_buffer(buf_), "loupe> ", asio::use_awaitable);
    std::string out = buf_.substr(0, n - 7);
    buf_.erase(0, n);
    co_return out;
  }
  tcp::socket socket_;
  std::string buf_;
};

class Console : public loupe::testkit::test {
 protected:
  void TearDown() override {
    console.stop();
    test::TearDown();
  }
  loupe::monitor::console console{{.port = 0}};
};

awaitable<void> nap() { co_await loupe::sleep_for(1h); }
awaitable<void> parent_of_nappers(loupe::loop& l) {
  co_await loupe::spawn(l, "napper-child", nap(), asio::use_awaitable);
}

}  // namespace

LOUPE_TEST_F(Console, TelnetNegotiationIsIgnoredAndLinesEndInCrLf) {
  console.start();
  console_client c(loop);
  const auto banner = co_await c.connect(console.port());
  EXPECT_NE(banner.find("loupe monitor: pid "), std::string::npos) << banner;
  // IAC DO ECHO, IAC WILL SUPPRESS-GO-AHEAD, a subnegotiation, then a command.
  co_await c.send_raw(std::string("\xff\xfd\x01\xff\xfb\x03\xff\xfa\x18\x01\xff\xf0", 12));
  const auto out = co_await c.command("help ps");
  EXPECT_NE(out.find("usage: ps [FILTER]"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n"), std::string::npos);
}

LOUPE_TEST_F(Console, UnknownCommandsAndLongLinesGetAMessageNotADisconnect) {
  console.start();
  console_client c(loop);
  co_await c.connect(console.port());
  EXPECT_NE((co_await c.command("frobnicate now")).find("unknown command 'frobnicate' (type help)"), std::string::npos);
  EXPECT_NE((co_await c.command(std::string(5000, 'x'))).find("line longer than 4096 bytes ignored"), std::string::npos);
  EXPECT_NE((co_await c.command("where")).find("usage: where ID"), std::string::npos);
  EXPECT_NE((co_await c.command("where 999999")).find("no task #999999"), std::string::npos);
  const auto help = co_await c.command("help");
  for (const char* cmd : {"ps", "where", "pstree", "cancel", "ps-terminated", "where-terminated", "slow", "loops",
                          "stacktrace", "log-level", "metrics", "quit"})
    EXPECT_NE(help.find(std::string("  ") + cmd + " "), std::string::npos) << cmd;
}

LOUPE_TEST_F(Console, SeveralConsolesAtOnce) {
  console.start();
  console_client a(loop), b(loop);
  co_await a.connect(console.port());
  co_await b.connect(console.port());
  loupe::spawn(loop, "visible-task", nap());
  EXPECT_NE((co_await a.command("ps visible")).find("visible-task"), std::string::npos);
  EXPECT_NE((co_await b.command("ps visible")).find("visible-task"), std::string::npos);
  EXPECT_NE((co_await a.command("loops")).find("LOOP"), std::string::npos);
  for (const auto& t : loop.tasks())
    if (t.name == "visible-task") loop.cancel(t.id);
}

LOUPE_TEST_F(Console, PsWherePstreeAndSites) {
  console.start();
  const auto parent = loupe::spawn(loop, "napper-parent", parent_of_nappers(loop));
  for (int i = 0; i < 3; ++i) loupe::spawn(loop, "napper", nap());
  // All five (parent, child, three nappers) suspended on what they wait for.
  co_await loupe::testkit::wait_until([&] {
    std::size_t n = 0;
    for (const auto& t : loop.tasks())
      n += t.name.starts_with("napper") && t.state == loupe::task_state::suspended && t.wait.operation;
    return n == 5;
  });
  console_client c(loop);
  co_await c.connect(console.port());

  const auto ps = co_await c.command("ps napper");
  EXPECT_NE(ps.find("5 task(s)"), std::string::npos) << ps;
  EXPECT_NE(ps.find("async_wait on deadline_timer"), std::string::npos) << ps;
  EXPECT_NE(ps.find("console_test.cpp:"), std::string::npos) << ps;  // the co_await's location
  EXPECT_NE((co_await c.command("ps napper-child --state running")).find("0 task(s)"), std::string::npos);
  EXPECT_NE((co_await c.command("ps napper-child --state suspended")).find("1 task(s)"), std::string::npos);

  const auto json = boost::json::parse(co_await c.command("ps napper-child --json")).as_array();
  CO_ASSERT_EQ(json.size(), 1u);
  const auto child = json[0].as_object();
  EXPECT_EQ(child.at("parent_id").to_number<std::uint64_t>(), parent);
  EXPECT_EQ(child.at("wait").at("operation"), "async_wait");

  const auto where = co_await c.command("where " + std::to_string(child.at("id").to_number<std::uint64_t>()));
  EXPECT_NE(where.find("waiting for:  async_wait on deadline_timer"), std::string::npos) << where;
  EXPECT_NE(where.find("console_test.cpp:"), std::string::npos) << where;
  EXPECT_NE(where.find("#" + std::to_string(parent) + " 'napper-parent' suspended"), std::string::npos) << where;
  // The parent awaits its child: suspended on it, at the line that spawned it.
  const auto parent_where = co_await c.command("where " + std::to_string(parent));
  EXPECT_NE(parent_where.find("waiting for:  await on task"), std::string::npos) << parent_where;
  EXPECT_NE(parent_where.find("console_test.cpp:"), std::string::npos) << parent_where;

  const auto tree = co_await c.command("pstree");
  EXPECT_NE(tree.find("#" + std::to_string(parent) + " napper-parent"), std::string::npos) << tree;
  EXPECT_NE(tree.find("└─ #"), std::string::npos) << tree;

  const auto sites = co_await c.command("ps napper --sites");
  EXPECT_NE(sites.find("     3  console_test.cpp:"), std::string::npos) << sites;  // the three alike, one row

  for (const auto& t : loop.tasks())
    if (t.name.starts_with("napper")) loop.cancel(t.id);
}

LOUPE_TEST_F(Console, CancelReportsTheOutcomeAndTheRingKeepsIt) {
  console.start();
  const auto id = loupe::spawn(loop, "to-cancel", nap());
  co_await loupe::testkit::wait_until([&] {
    const auto t = loop.find_task(id);
    return t && t->state == loupe::task_state::suspended;
  });
  console_client c(loop);
  co_await c.connect(console.port());
  const auto out = co_await c.command("cancel " + std::to_string(id));
  EXPECT_NE(out.find("task #" + std::to_string(id) + " 'to-cancel' ended: cancelled by console"), std::string::npos) << out;
  const auto done = co_await c.command("ps-terminated to-cancel");
  EXPECT_NE(done.find("cancelled by console"), std::string::npos) << done;
  const auto one = co_await c.command("where-terminated " + std::to_string(id));
  EXPECT_NE(one.find("last wait:    async_wait on deadline_timer"), std::string::npos) << one;
  EXPECT_NE((co_await c.command("cancel " + std::to_string(id))).find("no live task"), std::string::npos);
}

LOUPE_TEST_F(Console, SlowCallbacksAndLogLevel) {
  const auto saved = loupe::get_tracking_options();
  loupe::set_tracking_options({.slow_callback = 20ms, .watchdog = 0ms});
  console.start();
  co_await loupe::spawn(loop, "sluggish", []() -> awaitable<void> {
    std::this_thread::sleep_for(30ms);
    co_return;
  }(), asio::use_awaitable);
  loupe::set_tracking_options(saved);
  console_client c(loop);
  co_await c.connect(console.port());
  const auto slow = co_await c.command("slow");
  EXPECT_NE(slow.find("slow callback"), std::string::npos) << slow;
  EXPECT_NE(slow.find("'sluggish'"), std::string::npos) << slow;
  const auto before = loupe::log::level();
  EXPECT_NE((co_await c.command("log-level")).find("log level: info"), std::string::npos);
  EXPECT_NE((co_await c.command("log-level debug")).find("log level set to debug"), std::string::npos);
  EXPECT_EQ(loupe::log::level(), spdlog::level::debug);
  EXPECT_NE((co_await c.command("log-level loud")).find("error: unknown log level 'loud'"), std::string::npos);
  loupe::log::set_level(before);
}

TEST(ConsoleOptions, ReadOnlyRefusesCancelAndLogLevel) {
  loupe::monitor::console ro({.port = 0, .read_only = true});
  EXPECT_NE(ro.execute("cancel 1").find("refused: the console is read-only"), std::string::npos);
  EXPECT_NE(ro.execute("log-level debug").find("refused: the console is read-only"), std::string::npos);
  EXPECT_NE(ro.execute("log-level").find("log level:"), std::string::npos);  // reading is fine
  EXPECT_NE(ro.execute("help").find("read-only"), std::string::npos);
}

TEST(ConsoleOptions, ANonLoopbackHostIsRefusedUnlessAllowed) {
  loupe::monitor::console remote({.host = "0.0.0.0", .port = 0});
  try {
    remote.start();
    ADD_FAILURE() << "started on 0.0.0.0";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not a loopback address"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--monitor-allow-remote"), std::string::npos) << e.what();
  }
  loupe::monitor::console bad({.host = "not-an-address", .port = 0});
  EXPECT_THROW(bad.start(), std::invalid_argument);
  loupe::monitor::console off({.enabled = false, .port = 0});
  off.start();
  EXPECT_EQ(off.port(), 0u);
}

TEST(ConsoleFlags, FlagsFillTheOptions) {
  loupe::flag_set flags("prog", "");
  loupe::monitor::console c;
  c.add_flags(flags);
  const char* argv[] = {"prog", "--monitor-port", "0", "--monitor-read-only", "--monitor", "off"};
  flags.parse(6, const_cast<char**>(argv));
  EXPECT_EQ(c.options().port, 0);
  EXPECT_TRUE(c.options().read_only);
  c.start();
  EXPECT_EQ(c.port(), 0u);  // off: nothing listens
}

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

