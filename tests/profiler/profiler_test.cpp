// The profiler, in process: its HTTP endpoints live on the console's
// listener (never on the application's port) and answer loopback peers only;
// argument checks; one profile at a time while the loop and the console go
// on; `profile N` suspends its own console session only; profile files are
// created by loupe (a planted link is never followed) in a directory others
// cannot swap files in; and (built against the stub, without gperftools) 501
// saying profiling is unavailable (profiler_errc for the functions). The
// google-pprof checks are in tests/e2e/profiler_e2e.sh.
#include <loupe/monitor/console.hpp>
#include <loupe/profiler/profiler.hpp>
#include <loupe/testkit/test.hpp>

#include "../monitor/console_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <system_error>

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using loupe::test_support::console_client;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// A directory of the test's own, removed at the end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "loupe-profiler-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

class Profiler : public loupe::testkit::test {
 protected:
  // The application (GET / -> "hi") and a console with the profiler on it.
  void start(bool endpoints, std::string dir = "/tmp") {
    app.get("/", [](request&) -> awaitable<response> { co_return response::text("hi"); });
    prof = std::make_unique<loupe::profiler::profiler>(loupe::profiler::profiler_options{.endpoints = endpoints,
                                                                                         .directory = std::move(dir)});
    prof->add_to(console);
    prof->prepare(app);
    console.start(app);
  }
  std::string console_url() const { return "http://127.0.0.1:" + std::to_string(console.port()); }
  void TearDown() override {
    console.stop();
    if (prof) prof->stop();
    test::TearDown();
  }
  loupe::application app;
  loupe::monitor::console console{{.port = 0}};
  std::unique_ptr<loupe::profiler::profiler> prof;
};

}  // namespace

LOUPE_TEST_F(Profiler, TheEndpointsAreOnTheConsolesListenerOnlyAndOffUnlessAskedFor) {
  start(false);
  auto& off = client(console_url());
  EXPECT_EQ((co_await off.get("/debug/pprof/heap")).status_code(), 404u);
  EXPECT_EQ((co_await off.get("/debug/pprof/profile?seconds=1")).status_code(), 404u);
}

LOUPE_TEST_F(Profiler, TheApplicationsPortNeverServesThem) {
  start(true);
  auto& srv = server(app);
  auto& http = client(srv);
  EXPECT_EQ((co_await http.get("/debug/pprof/heap")).status_code(), 404u);
  EXPECT_EQ((co_await http.get("/debug/pprof/profile?seconds=1")).status_code(), 404u);
  EXPECT_EQ((co_await http.get("/")).text(), "hi");
  auto& admin = client(console_url());
  const auto heap = co_await admin.get("/debug/pprof/heap");
  EXPECT_EQ(heap.status_code(), loupe::profiler::heap_available() ? 200u : 501u);
}

LOUPE_TEST_F(Profiler, SecondsAreChecked) {
  start(true);
  if (!loupe::profiler::cpu_available()) co_return;  // the stub answers 501 first (see below)
  auto& http = client(console_url());
  for (const char* bad : {"0", "301", "-1", "x", "1.5"}) {
    auto res = co_await http.get(std::string("/debug/pprof/profile?seconds=") + bad);
    EXPECT_EQ(res.status_code(), 400u) << bad;
    EXPECT_NE(res.text().find("from 1 to 300"), std::string::npos) << res.text();
  }
}

LOUPE_TEST_F(Profiler, OneProfileAtATimeWhileTheLoopAndTheConsoleGoOn) {
  start(true);
  if (!loupe::profiler::cpu_available()) co_return;
  auto& srv = server(app);
  auto& app_client = client(srv);
  auto& first = client(console_url());
  auto& second = client(console_url());
  std::optional<loupe::client_response> profile;
  loupe::spawn(loop, "first-profile",
               [](loupe::testkit::test_client& c, std::optional<loupe::client_response>& out) -> awaitable<void> {
                 out = co_await c.get("/debug/pprof/profile?seconds=1");
               }(first, profile));
  // Until the first one records: a second one is refused.
  loupe::client_response busy;
  for (int i = 0; i < 200; ++i) {
    busy = co_await second.get("/debug/pprof/profile?seconds=1");
    if (busy.status_code() == 409u) break;
    co_await loupe::sleep_for(5ms);
  }
  EXPECT_EQ(busy.status_code(), 409u);
  EXPECT_EQ((co_await app_client.get("/")).text(), "hi");  // the loop serves meanwhile
  console_client session(loop.get_executor());
  co_await session.connect(console.port());
  EXPECT_NE((co_await session.command("help ps")).find("usage: ps"), std::string::npos);  // and so does the console
  EXPECT_FALSE(profile.has_value());
  co_await loupe::testkit::wait_until([&] { return profile.has_value(); });
  EXPECT_EQ(profile->status_code(), 200u);
  EXPECT_EQ(profile->header("Content-Type").value_or(""), "application/octet-stream");
  EXPECT_EQ(profile->header("X-Profile-Clock").value_or(""), "cpu");
  // gperftools' legacy CPU format starts with the header words 0, 3, 0.
  CO_ASSERT_GE(profile->text().size(), 5 * sizeof(std::uintptr_t));
  const auto* words = reinterpret_cast<const std::uintptr_t*>(profile->text().data());
  EXPECT_EQ(words[0], 0u);
  EXPECT_EQ(words[1], 3u);
  // And a new profile may start now.
  EXPECT_EQ((co_await second.get("/debug/pprof/profile?seconds=1")).status_code(), 200u);
}

// `profile N` records on the console's thread without holding it: another
// session answers meanwhile. (It slept on the console's only thread, freezing
// every session for N seconds.) The file it names is a new regular file, mode
// 0600, with a random part in its name.
LOUPE_TEST_F(Profiler, TheProfileCommandSuspendsOnlyItsSession) {
  temp_dir dir;
  start(false, dir.path.string());
  if (!loupe::profiler::cpu_available()) co_return;
  console_client a(loop.get_executor()), b(loop.get_executor());
  co_await a.connect(console.port());
  co_await b.connect(console.port());
  co_await a.send_raw("profile 2\r\n");
  co_await loupe::sleep_for(100ms);
  EXPECT_NE((co_await b.command("help ps")).find("usage: ps"), std::string::npos);
  EXPECT_NE((co_await b.command("profile 1")).find("already being recorded"), std::string::npos);
  EXPECT_EQ(a.pending(), 0u) << "the profile was over before the other session was answered";
  std::string out;
  for (int i = 0; i < 300 && out.find("written to") == std::string::npos; ++i) {
    co_await loupe::sleep_for(20ms);
    if (a.pending()) out += co_await a.command("");
  }
  std::smatch m;
  CO_ASSERT_TRUE(std::regex_search(out, m, std::regex("written to (\\S+)"))) << out;
  const fs::path file = m[1].str();
  EXPECT_EQ(file.parent_path(), dir.path);
  EXPECT_TRUE(std::regex_match(file.filename().string(), std::regex("loupe-cpu-" + std::to_string(::getpid()) +
                                                                    "-\\d{8}T\\d{6}Z-[0-9a-f]{16}\\.prof")))
      << file;
  struct stat st {};
  CO_ASSERT_EQ(::lstat(file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GT(st.st_size, 0);
}

// A link planted at the name a profile would get is never followed: before,
// `profile N` wrote to <dir>/loupe-cpu-<pid>-<UTC second>.prof, so a link
// there made it overwrite the link's target.
TEST(ProfilerFiles, APlantedLinkIsNotFollowed) {
  if (!loupe::profiler::cpu_available()) GTEST_SKIP() << "built without gperftools";
  temp_dir dir;
  const fs::path victim = dir.path / "victim.txt";
  std::ofstream(victim) << "precious";
  // Links at every name the old scheme would have used for the next seconds.
  const std::time_t now = std::time(nullptr);
  for (std::time_t t = now - 1; t <= now + 5; ++t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    fs::create_symlink(victim, dir.path / ("loupe-cpu-" + std::to_string(::getpid()) + "-" + stamp + ".prof"));
  }
  loupe::monitor::console console({.port = 0});
  loupe::profiler::profiler prof({.directory = dir.path.string()});
  prof.add_to(console);
  const auto out = console.execute("profile 1");
  EXPECT_NE(out.find("written to"), std::string::npos) << out;
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious") << "the profile went through the planted link";
}

TEST(ProfilerFiles, ADirectoryEveryoneMayWriteWithoutTheStickyBitIsRefused) {
  temp_dir dir;
  fs::permissions(dir.path, fs::perms::all);  // 0777
  loupe::profiler::profiler open_dir({.directory = dir.path.string()});
  try {
    open_dir.check();
    ADD_FAILURE() << "a world-writable directory without the sticky bit was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("writable by every user and has no sticky bit"), std::string::npos) << e.what();
  }
  fs::permissions(dir.path, fs::perms::all | fs::perms::sticky_bit);  // 1777, like /tmp
  loupe::profiler::profiler sticky({.directory = dir.path.string()});
  EXPECT_NO_THROW(sticky.check());
}

TEST(ProfilerOptions, AMissingProfileDirectoryStopsStartUp) {
  loupe::profiler::profiler p({.directory = "/no/such/dir"});
  loupe::application app;
  try {
    p.prepare(app);
    ADD_FAILURE() << "prepared with a missing directory";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--profile-dir '/no/such/dir' is not a directory"), std::string::npos);
  }
}

TEST(ProfilerOptions, DebugEndpointsNeedTheConsole) {
  loupe::monitor::console off({.enabled = false, .port = 0});
  loupe::profiler::profiler p({.endpoints = true});
  p.add_to(off);
  EXPECT_THROW(p.check(), std::invalid_argument);
  loupe::profiler::profiler alone({.endpoints = true});
  EXPECT_THROW(alone.check(), std::invalid_argument);
}

// A peer that is not on loopback gets 403, even from a console that listens
// beyond loopback (--monitor-allow-remote). Needs an address of this machine
// that is not loopback (connecting to it stays on this machine).
TEST(ProfilerAccess, ARemotePeerGets403) {
  std::optional<asio::ip::address_v4> local;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (auto* i = list; i && !local; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      const auto a = asio::ip::address_v4(ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
      if (!a.is_loopback()) local = a;
    }
    ::freeifaddrs(list);
  }
  if (!local) GTEST_SKIP() << "this machine has no address other than loopback";
  loupe::monitor::console console({.host = "0.0.0.0", .port = 0, .allow_remote = true});
  loupe::profiler::profiler prof({.endpoints = true});
  prof.add_to(console);
  loupe::application app;
  prof.prepare(app);
  console.start(app);
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.open(asio::ip::tcp::v4());
  s.bind({*local, 0});
  s.connect({*local, console.port()});
  asio::write(s, asio::buffer(std::string("GET /debug/pprof/heap HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string reply;
  boost::system::error_code ec;
  asio::read(s, asio::dynamic_buffer(reply), ec);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 403")) << reply;
  EXPECT_NE(reply.find("loopback peers only"), std::string::npos) << reply;
  console.stop();
  prof.stop();
}

LOUPE_TEST_F(Profiler, WithoutGperftoolsTheEndpointsSayUnavailable) {
  start(true);
  if (loupe::profiler::cpu_available()) co_return;  // runs in the stub build
  auto& http = client(console_url());
  auto cpu = co_await http.get("/debug/pprof/profile?seconds=1");
  EXPECT_EQ(cpu.status_code(), 501u);
  EXPECT_NE(cpu.text().find("profiling is unavailable"), std::string::npos) << cpu.text();
  EXPECT_EQ((co_await http.get("/debug/pprof/heap")).status_code(), 501u);
  EXPECT_THROW(loupe::profiler::record_cpu_profile("/tmp/never.prof", 10ms), std::runtime_error);
  EXPECT_NE(console.execute("profile 1").find("unavailable"), std::string::npos);
}

// "Unavailable" is an error code of the profiler's category, thrown as
// std::system_error (a std::runtime_error, as before), whose what() is the
// code's message.
TEST(ProfilerErrors, UnavailableIsAProfilerErrorCode) {
  using loupe::profiler::profiler_errc;
  const std::error_code cpu = profiler_errc::cpu_unavailable;
  EXPECT_EQ(&cpu.category(), &loupe::profiler::profiler_category());
  EXPECT_STREQ(cpu.category().name(), "loupe.profiler");
  EXPECT_EQ(cpu.message(), "CPU profiling is unavailable: loupe was built without gperftools");
  EXPECT_EQ(std::error_code(profiler_errc::heap_unavailable).message(),
            "heap profiling is unavailable: loupe was built without tcmalloc");
  EXPECT_EQ(std::error_code(profiler_errc::busy).message(), "a CPU profile is already being recorded");
  if (!loupe::profiler::cpu_available()) {
    try {
      loupe::profiler::record_cpu_profile("/tmp/never.prof", 10ms);
      ADD_FAILURE() << "recorded without gperftools";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), profiler_errc::cpu_unavailable);
      EXPECT_EQ(std::string(e.what()), cpu.message());
    }
  }
  if (!loupe::profiler::heap_available()) {
    try {
      (void)loupe::profiler::heap_profile();
      ADD_FAILURE() << "a heap profile without tcmalloc";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), profiler_errc::heap_unavailable);
    }
  }
}

// Loopback is not enough: a browser on this machine is on loopback too. A
// request naming another host (DNS rebinding) or sent for a web page (Origin,
// Sec-Fetch-Site) is refused; read-only mode refuses the CPU profile.
LOUPE_TEST_F(Profiler, BrowserRequestsAndReadOnlyAreRefused) {
  start(true);
  const auto reply_to = [&](std::string head) -> awaitable<loupe::testkit::http_response> {
    loupe::testkit::raw_client c(loop.get_executor());
    co_await c.connect({boost::asio::ip::make_address("127.0.0.1"), console.port()});
    co_await c.send("GET /debug/pprof/heap HTTP/1.1\r\n" + head + "\r\n");
    co_return co_await c.read_response();
  };
  EXPECT_EQ((co_await reply_to("Host: rebound.example:20101\r\n")).result_int(), 403);
  EXPECT_EQ((co_await reply_to("Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n")).result_int(), 403);
  EXPECT_EQ((co_await reply_to("Host: localhost\r\nSec-Fetch-Site: cross-site\r\n")).result_int(), 403);
  const unsigned ok = loupe::profiler::heap_available() ? 200u : 501u;
  EXPECT_EQ((co_await reply_to("Host: localhost:1\r\nSec-Fetch-Site: none\r\n")).result_int(), ok);  // typed in
  EXPECT_EQ((co_await reply_to("Host: [::1]\r\n")).result_int(), ok);
}

TEST(ProfilerAccess, ReadOnlyRefusesTheCpuProfile) {
  loupe::monitor::console console({.port = 0, .read_only = true});
  loupe::profiler::profiler prof({.endpoints = true});
  prof.add_to(console);
  loupe::application app;
  prof.prepare(app);
  console.start(app);
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), console.port()});
  asio::write(s, asio::buffer(std::string("GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")));
  std::string reply;
  boost::system::error_code ec;
  asio::read(s, asio::dynamic_buffer(reply), ec);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 403")) << reply;
  EXPECT_NE(reply.find("read-only"), std::string::npos) << reply;
  console.stop();
  prof.stop();
}
