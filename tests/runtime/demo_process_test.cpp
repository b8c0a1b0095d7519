// loupe-demo as a child process: graceful shutdown, flag errors, start-up failure.
//
// The HTTP client here is deliberately simple and blocking: POSIX sockets with
// poll() deadlines, responses parsed by Beast's response_parser. Every wait is
// bounded.
#include <loupe/testkit/process.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef LOUPE_DEMO_PATH
#error "LOUPE_DEMO_PATH must name the loupe-demo executable"
#endif

namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;
using response = http::response<http::string_body>;
using testing::HasSubstr;
using testing::Not;

[[noreturn]] void fail_errno(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

/// An owned socket descriptor.
class socket_fd {
 public:
  socket_fd() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) fail_errno("socket");
  }
  ~socket_fd() { ::close(fd_); }
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(unsigned short port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int remaining_ms(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Waits (until `deadline`) for `events` on `fd`; throws on timeout.
void wait_for(int fd, short events, clock_type::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return;
    if (r == 0) throw std::runtime_error(std::string("timed out: ") + what);
    if (errno != EINTR) fail_errno("poll");
  }
}

/// Connects to 127.0.0.1:port (a loopback connect completes or fails at once).
void connect_to(const socket_fd& s, unsigned short port) {
  const auto addr = loopback(port);
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) fail_errno("connect");
}

void send_all(const socket_fd& s, std::string_view data, clock_type::time_point deadline) {
  while (!data.empty()) {
    wait_for(s.get(), POLLOUT, deadline, "sending the request");
    const ssize_t n = ::send(s.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fail_errno("send");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// Reads one complete response (until `deadline`).
response read_response(const socket_fd& s, clock_type::time_point deadline) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  std::string pending;
  char buf[4096];
  for (;;) {
    while (!pending.empty() && !parser.is_done()) {
      boost::system::error_code ec;
      const auto used = parser.put(boost::asio::buffer(pending), ec);
      pending.erase(0, used);
      if (ec == http::error::need_more) break;
      if (ec) throw boost::system::system_error(ec, "parsing the response");
      if (used == 0) break;
    }
    if (parser.is_done()) return parser.release();
    wait_for(s.get(), POLLIN, deadline, "reading the response");
    const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fail_errno("recv");
    }
    if (n == 0) {
      boost::system::error_code ec;
      parser.put_eof(ec);
      if (ec) throw boost::system::system_error(ec, "connection closed before the response was complete");
      return parser.release();
    }
    pending.append(buf, static_cast<std::size_t>(n));
  }
}

std::string get_request(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

/// One GET on a fresh connection.
response get(unsigned short port, std::string_view target, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = clock_type::now() + timeout;
  socket_fd s;
  connect_to(s, port);
  send_all(s, get_request(target), deadline);
  return read_response(s, deadline);
}

/// The first bytes that arrive on `s` before `deadline`, or nothing.
std::optional<std::string> read_some(const socket_fd& s, clock_type::time_point deadline) {
  pollfd p{s.get(), POLLIN, 0};
  if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
  if (n <= 0) return std::string();
  return std::string(buf, static_cast<std::size_t>(n));
}

/// The demo's command line run under `ulimit -n limit`.
std::vector<std::string> with_descriptor_limit(int limit, std::vector<std::string> args) {
  std::vector<std::string> argv{"/bin/sh", "-c", "ulimit -n " + std::to_string(limit) + " && exec \"$0\" \"$@\"",
                                LOUPE_DEMO_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

/// A new directory that every user may write to, without the sticky bit.
std::string make_world_writable_dir() {
  std::string tmpl = "/tmp/loupe-open-dir-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl.data());
  ::chmod(dir.c_str(), 0777);
  return dir;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// Binds `s` to a free loopback port and listens on it: a port in use. Returns the port.
unsigned short listen_on_a_free_port(const socket_fd& s) {
  auto addr = loopback(0);
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) fail_errno("bind");
  if (::listen(s.get(), 16) != 0) fail_errno("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail_errno("getsockname");
  return ntohs(addr.sin_port);
}

/// The console's port, from the demo's banner.
unsigned short console_port_of(loupe::testkit::child& demo) {
  if (!demo.wait_for_stdout("Monitor console on 127.0.0.1:", 5s)) throw std::runtime_error("no console banner");
  const auto out = demo.stdout_text();
  const auto at = out.find("Monitor console on 127.0.0.1:") + std::string_view("Monitor console on 127.0.0.1:").size();
  return static_cast<unsigned short>(std::stoi(out.substr(at)));
}

}  // namespace

// SIGTERM while a request sleeps on the server: the request still gets its
// response, then the demo exits 0.
TEST(DemoProcess, GracefulShutdownFinishesInFlightRequest) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0", "--grace-ms", "10000"});
  const unsigned short port = demo.wait_for_port(10s);

  // Connection A: its request is complete in the server's socket buffer before
  // anything else happens.
  const auto deadline = clock_type::now() + 10s;
  socket_fd a;
  connect_to(a, port);
  send_all(a, get_request("/sleep?ms=1000"), deadline);
  const auto sent_at = clock_type::now();
  auto in_flight = std::async(std::launch::async, [&] { return read_response(a, deadline); });

  // Connection B, accepted after A on the demo's single loop: once B has its
  // response, the server has accepted A and read A's (already complete)
  // request, so /sleep is running when the signal arrives.
  const response probe = get(port, "/");
  ASSERT_EQ(probe.result_int(), 200u);
  ASSERT_EQ(probe.body(), "Hello, world!");
  ASSERT_EQ(in_flight.wait_for(0s), std::future_status::timeout) << "the sleeping request ended early";

  demo.signal(SIGTERM);

  ASSERT_EQ(in_flight.wait_for(10s), std::future_status::ready) << "no response to the in-flight request";
  const response res = in_flight.get();
  const auto took = clock_type::now() - sent_at;
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "slept 1000 ms");
  EXPECT_FALSE(res.keep_alive()) << "a response finished during shutdown should close its connection";
  EXPECT_GE(took, 900ms);

  EXPECT_EQ(demo.wait_exit(10s), 0) << demo.stderr_text();
  EXPECT_THAT(demo.stderr_text(), HasSubstr("shutting down"));
}

// A bad flag: exit code 2, and stderr names the flag.
TEST(DemoProcess, BadFlagExitsWithCode2) {
  struct bad_case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::string open_dir = make_world_writable_dir();
  const std::vector<bad_case> cases = {
      {{"--port", "abc"}, "--port"},
      {{"--port", "0", "--nope"}, "--nope"},
      {{"--header-timeout-ms", "0"}, "--header-timeout-ms: 0 is out of range"},
      {{"--keepalive-timeout-ms", "soon"}, "--keepalive-timeout-ms: 'soon' is not an integer"},
      {{"--body-timeout-ms", "-1"}, "--body-timeout-ms"},
      {{"--write-timeout-ms", "99999999999999999999"}, "--write-timeout-ms"},
      {{"--max-connections", "0"}, "--max-connections: 0 is out of range"},
      {{"--max-header-bytes", "12"}, "--max-header-bytes"},
      {{"--max-body-bytes", "lots"}, "--max-body-bytes"},
      {{"--max-body-bytes-in-flight", "10"}, "--max-body-bytes-in-flight"},
      {{"--monitor-max-sessions", "0"}, "--monitor-max-sessions"},
      {{"--monitor-idle-timeout-s", "0"}, "--monitor-idle-timeout-s"},
      {{"--debug-endpoints", "--monitor", "off"}, "--debug-endpoints serves /debug/pprof/* on the console"},
      {{"--profile-dir", open_dir}, "writable by every user and has no sticky bit"},
      {{"--monitor-host", "0.0.0.0"}, "not a loopback address"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("flag " + c.flag);
    std::vector<std::string> argv{LOUPE_DEMO_PATH, "--monitor-port", "0"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    loupe::testkit::child demo(argv);
    EXPECT_EQ(demo.wait_exit(10s), 2) << demo.stderr_text();
    EXPECT_THAT(demo.stderr_text(), HasSubstr(c.flag));
    EXPECT_THAT(demo.stdout_text(), Not(HasSubstr("Running on")));
  }
  ::rmdir(open_dir.c_str());
}

// The limits and timeouts set from the command line are the ones enforced.
TEST(DemoProcess, LimitsAndTimeoutsFromTheCommandLine) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0", "--header-timeout-ms", "300",
                              "--max-body-bytes", "1000"});
  const unsigned short port = demo.wait_for_port(10s);
  const auto deadline = clock_type::now() + 10s;
  {
    // A header that never ends is cut off after 300 ms (the default is 15 s).
    socket_fd s;
    connect_to(s, port);
    send_all(s, "GET / HTTP/1.1\r\nHost: x\r\n", deadline);
    wait_for(s.get(), POLLIN, clock_type::now() + 5s, "the header timeout");
    char c;
    EXPECT_EQ(::recv(s.get(), &c, 1, 0), 0) << "the connection was not closed";
  }
  {
    socket_fd s;
    connect_to(s, port);
    send_all(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'x'), deadline);
    EXPECT_EQ(read_response(s, deadline).result_int(), 413u);
  }
  demo.signal(SIGTERM);
  EXPECT_EQ(demo.wait_exit(10s), 0);
}

// Under `ulimit -n 96` (max_connections is 10,000 by default) the server
// serves at most what the descriptor limit leaves (96 less 32 kept in
// reserve) and says so at start; each connection past that gets 503 at once.
// (Without the cap accept() failed with EMFILE and the clients waited in the
// backlog, unanswered.)
TEST(DemoProcess, ConnectionsAreCappedToTheDescriptorLimit) {
  loupe::testkit::child demo(with_descriptor_limit(96, {"--monitor-port", "0", "--port", "0"}));
  const unsigned short port = demo.wait_for_port(10s);
  EXPECT_TRUE(demo.wait_for_stderr("serving at most 64 connections at once", 5s)) << demo.stderr_text();
  std::vector<std::unique_ptr<socket_fd>> held;
  int ok = 0, refused = 0;
  for (int i = 0; i < 100; ++i) {
    auto s = std::make_unique<socket_fd>();
    connect_to(*s, port);
    const auto deadline = clock_type::now() + 5s;
    send_all(*s, get_request("/"), deadline);
    const auto res = read_response(*s, deadline);  // throws if the client is left waiting
    if (res.result_int() == 200u) {
      ++ok;
      held.push_back(std::move(s));
    } else {
      EXPECT_EQ(res.result_int(), 503u);
      ++refused;
    }
  }
  EXPECT_EQ(ok, 64);
  EXPECT_EQ(refused, 36);
  held.clear();
  demo.signal(SIGTERM);
  EXPECT_EQ(demo.wait_exit(10s), 0) << demo.stderr_text();
}

// 150 console connections under `ulimit -n 128`: past --monitor-max-sessions
// (16) each one is told so and closed, so the console cannot take the
// server's descriptors and HTTP is served. (1,100 idle console connections
// under `ulimit -n 1024` took HTTP down.)
TEST(DemoProcess, ConsoleConnectionsCannotTakeTheServersDescriptors) {
  loupe::testkit::child demo(with_descriptor_limit(128, {"--monitor-port", "0", "--port", "0"}));
  const unsigned short port = demo.wait_for_port(10s);
  const unsigned short console_port = console_port_of(demo);
  std::vector<std::unique_ptr<socket_fd>> consoles;
  for (int i = 0; i < 150; ++i) {
    consoles.push_back(std::make_unique<socket_fd>());
    connect_to(*consoles.back(), console_port);
  }
  const auto deadline = clock_type::now() + 10s;
  int sessions = 0, told = 0, silent = 0;
  for (auto& c : consoles) {
    const auto first = read_some(*c, deadline);
    if (!first) ++silent;
    else if (first->find("too many sessions (16 open") != std::string::npos) ++told;
    else if (first->find("loupe monitor: pid") != std::string::npos) ++sessions;
  }
  EXPECT_EQ(sessions, 16);
  EXPECT_EQ(told, 134);
  EXPECT_EQ(silent, 0);
  // With all 150 still open on this side, HTTP is served.
  EXPECT_EQ(get(port, "/", 5s).result_int(), 200u);
  consoles.clear();
  demo.signal(SIGTERM);
  EXPECT_EQ(demo.wait_exit(10s), 0) << demo.stderr_text();
}

// The port is taken: exit code 1 and an error record naming the address.
TEST(DemoProcess, StartupFailsOnPortInUse) {
  socket_fd taken;
  const std::string port = std::to_string(listen_on_a_free_port(taken));

  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--host", "127.0.0.1", "--port", port,
                              "--log-format", "json"});
  EXPECT_EQ(demo.wait_exit(10s), 1) << demo.stderr_text();
  EXPECT_THAT(demo.stdout_text(), Not(HasSubstr("Running on")));

  const std::string where = "127.0.0.1:" + port;
  bool found = false;
  for (const auto& line : lines_of(demo.stderr_text()))
    if (line.find(R"("level":"error")") != std::string::npos && line.find(where) != std::string::npos) found = true;
  EXPECT_TRUE(found) << "no error record mentioning " << where << " in:\n" << demo.stderr_text();
  // The reason in words, without Boost's source location of the error.
  EXPECT_THAT(demo.stderr_text(), HasSubstr("Address already in use"));
  EXPECT_THAT(demo.stderr_text(), Not(HasSubstr("[system:")));
}

// The console's port already taken: a configuration problem found before
// anything binds or prints its banner, exit 2 and one line (it printed
// "Running on" and exited 1). --log-level warning is accepted.
TEST(DemoProcess, ConsolePortInUseStopsStartUpWithExit2BeforeTheBanner) {
  socket_fd taken;
  const std::string port = std::to_string(listen_on_a_free_port(taken));

  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", port, "--port", "0"});
  EXPECT_EQ(demo.wait_exit(10s), 2) << demo.stdout_text() << demo.stderr_text();
  EXPECT_THAT(demo.stdout_text(), Not(HasSubstr("Running on")));
  EXPECT_THAT(demo.stderr_text(),
              HasSubstr("the monitor console cannot listen on 127.0.0.1:" + port + ": Address already in use"));
  EXPECT_THAT(demo.stderr_text(), Not(HasSubstr("[system:")));

  loupe::testkit::child warned({LOUPE_DEMO_PATH, "--monitor", "off", "--port", "0", "--log-level", "warning"});
  (void)warned.wait_for_port(10s);
  warned.signal(SIGTERM);
  EXPECT_EQ(warned.wait_exit(10s), 0) << warned.stderr_text();
}

namespace {

/// Waits (bounded) until the child's stderr contains `needle`.
bool stderr_shows(loupe::testkit::child& demo, std::string_view needle, std::chrono::milliseconds timeout) {
  return demo.wait_for_stderr(needle, timeout);
}

/// True if `s` has bytes to read right now.
bool readable_now(const socket_fd& s) {
  pollfd p{s.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

/// One console command's reply (up to the next prompt), bounded by `deadline`.
std::string console_command(const socket_fd& s, std::string_view line, clock_type::time_point deadline) {
  if (!line.empty()) send_all(s, std::string(line) + "\r\n", deadline);
  std::string out;
  while (out.find("loupe> ") == std::string::npos) {
    auto more = read_some(s, deadline);
    if (!more || more->empty()) break;
    out += *more;
  }
  return out;
}

/// The id of the first task `ps NAME --json` lists.
std::uint64_t task_id_of(const socket_fd& console, std::string_view name, clock_type::time_point deadline) {
  const auto json = console_command(console, "ps " + std::string(name) + " --json", deadline);
  const auto at = json.find("\"id\":");
  if (at == std::string::npos) throw std::runtime_error("no task " + std::string(name) + " in: " + json);
  return std::stoull(json.substr(at + 5));
}

}  // namespace

// `cancel` of the runtime's own tasks through the console: the accept loop
// is refused (cancelled, its port stayed open and was never served again),
// app.main means a graceful shutdown, said as such (it logged a false
// "received SIGTERM", never logged "stopped" and left a process with no task).
TEST(DemoProcess, CancellingRuntimeTasksRefusesOrShutsDownGracefully) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0"});
  const unsigned short port = demo.wait_for_port(10s);
  const unsigned short console_port = console_port_of(demo);
  const auto deadline = clock_type::now() + 20s;
  socket_fd console;
  connect_to(console, console_port);
  (void)console_command(console, "", deadline);  // the banner

  const auto accept = task_id_of(console, "http.accept", deadline);
  const auto refused = console_command(console, "cancel " + std::to_string(accept), deadline);
  EXPECT_THAT(refused, HasSubstr("refused: task #" + std::to_string(accept) + " 'http.accept' is not cancelled"));
  EXPECT_THAT(refused, HasSubstr("stop the server instead"));
  EXPECT_EQ(get(port, "/").result_int(), 200u) << "the server stopped serving";

  const auto main_task = task_id_of(console, "app.main", deadline);
  const auto shutdown = console_command(console, "cancel " + std::to_string(main_task), deadline);
  EXPECT_THAT(shutdown, HasSubstr("shuts the application down gracefully"));
  EXPECT_EQ(demo.wait_exit(10s), 0) << demo.stderr_text();
  EXPECT_THAT(demo.stderr_text(), HasSubstr("shutdown requested (a cancel of app.main)"));
  EXPECT_THAT(demo.stderr_text(), HasSubstr("stopped"));
  EXPECT_THAT(demo.stderr_text(), Not(HasSubstr("received SIGTERM")));
}

// GET /block?ms=300: exactly one slow-callback WARN, naming the task, the
// route /block and a duration of at least 300 ms.
TEST(DemoProcess, BlockingHandlerGivesOneSlowCallbackWarning) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0", "--log-format", "json"});
  const unsigned short port = demo.wait_for_port(10s);
  EXPECT_EQ(get(port, "/block?ms=300").result_int(), 200u);
  EXPECT_EQ(get(port, "/").result_int(), 200u);
  ASSERT_TRUE(stderr_shows(demo, "slow callback", 5s)) << demo.stderr_text();
  demo.signal(SIGTERM);
  EXPECT_EQ(demo.wait_exit(10s), 0);

  std::vector<std::string> warnings;
  for (const auto& line : lines_of(demo.stderr_text()))
    if (line.find("slow callback") != std::string::npos) warnings.push_back(line);
  ASSERT_EQ(warnings.size(), 1u) << demo.stderr_text();
  const std::string& w = warnings[0];
  EXPECT_THAT(w, HasSubstr(R"("level":"warning")"));
  EXPECT_THAT(w, HasSubstr("'http.request'"));
  EXPECT_THAT(w, HasSubstr("(route /block)"));
  const auto ran = w.find(" ran ");
  ASSERT_NE(ran, std::string::npos);
  EXPECT_GE(std::stod(w.substr(ran + 5)), 300.0) << w;
}

// GET /block?ms=1500: the watchdog's record is written while the handler
// still blocks — before the response — and its stack names the handler's
// blocking function.
TEST(DemoProcess, WatchdogReportsTheStallBeforeTheResponse) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0", "--log-format", "json"});
  const unsigned short port = demo.wait_for_port(10s);
  const auto deadline = clock_type::now() + 10s;
  socket_fd s;
  connect_to(s, port);
  send_all(s, get_request("/block?ms=1500"), deadline);
  ASSERT_TRUE(stderr_shows(demo, "watchdog", 5s)) << demo.stderr_text();
  EXPECT_FALSE(readable_now(s)) << "the response came before the watchdog record";
  const response res = read_response(s, deadline);
  EXPECT_EQ(res.result_int(), 200u);
  demo.signal(SIGTERM);
  EXPECT_EQ(demo.wait_exit(10s), 0);

  std::string record;
  for (const auto& line : lines_of(demo.stderr_text()))
    if (line.find("watchdog") != std::string::npos) record = line;
  EXPECT_THAT(record, HasSubstr(R"("level":"error")"));
  EXPECT_THAT(record, HasSubstr("(route /block)"));
  EXPECT_THAT(record, HasSubstr("demo_block_loop"));
  EXPECT_THAT(demo.stderr_text(), HasSubstr("stall ended"));
}

// --workers 2: requests in flight on the worker loops when SIGTERM arrives all
// get their responses, and the demo exits 0.
TEST(DemoProcess, WorkerLoopsDrainOnSigterm) {
  loupe::testkit::child demo({LOUPE_DEMO_PATH, "--monitor-port", "0", "--port", "0", "--workers", "2"});
  const unsigned short port = demo.wait_for_port(10s);
  const auto deadline = clock_type::now() + 15s;
  std::vector<std::unique_ptr<socket_fd>> conns;
  std::vector<std::future<response>> replies;
  for (int i = 0; i < 8; ++i) {
    conns.push_back(std::make_unique<socket_fd>());
    connect_to(*conns.back(), port);
    send_all(*conns.back(), get_request("/sleep?ms=1000"), deadline);
    replies.push_back(std::async(std::launch::async,
                                 [&, s = conns.back().get()] { return read_response(*s, deadline); }));
  }
  // A listener accepts in order, so once a later connection to it is answered,
  // the /sleep connections queued before it have been accepted and read.
  // Sixteen probes reach both listeners except with probability 2^-15.
  for (int i = 0; i < 16; ++i) ASSERT_EQ(get(port, "/").result_int(), 200u);
  demo.signal(SIGTERM);
  for (auto& r : replies) {
    ASSERT_EQ(r.wait_for(10s), std::future_status::ready);
    const response res = r.get();
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "slept 1000 ms");
  }
  EXPECT_EQ(demo.wait_exit(10s), 0) << demo.stderr_text();
  EXPECT_THAT(demo.stderr_text(), HasSubstr("with 2 loop(s)"));
}
