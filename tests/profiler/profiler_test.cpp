// The profiler's HTTP side, in process: off by default, argument checks, one
// profile at a time while the loop goes on serving, and (built against the
// stub, without gperftools) 501 saying profiling is unavailable. The
// google-pprof checks are in tests/e2e/profiler_e2e.sh.
#include <loupe/monitor/console.hpp>
#include <loupe/profiler/profiler.hpp>
#include <loupe/testkit/test.hpp>

#include <gtest/gtest.h>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

class Profiler : public loupe::testkit::test {
 protected:
  loupe::application make_app(bool endpoints) {
    loupe::application app;
    app.get("/", [](request&) -> awaitable<response> { co_return response::text("hi"); });
    prof = std::make_unique<loupe::profiler::profiler>(loupe::profiler::profiler_options{.endpoints = endpoints});
    prof->prepare(app);
    return app;
  }
  void TearDown() override {
    if (prof) prof->stop();
    test::TearDown();
  }
  std::unique_ptr<loupe::profiler::profiler> prof;
};

}  // namespace

LOUPE_TEST_F(Profiler, EndpointsAreOffUnlessAskedFor) {
  auto& http = client(server(make_app(false)));
  EXPECT_EQ((co_await http.get("/debug/pprof/profile?seconds=1")).status_code(), 404u);
  EXPECT_EQ((co_await http.get("/debug/pprof/heap")).status_code(), 404u);
}

LOUPE_TEST_F(Profiler, SecondsAreChecked) {
  auto& http = client(server(make_app(true)));
  if (!loupe::profiler::cpu_available()) co_return;  // the stub answers 501 first (see below)
  for (const char* bad : {"0", "301", "-1", "x", "1.5"}) {
    auto res = co_await http.get(std::string("/debug/pprof/profile?seconds=") + bad);
    EXPECT_EQ(res.status_code(), 400u) << bad;
    EXPECT_NE(res.text().find("from 1 to 300"), std::string::npos) << res.text();
  }
}

LOUPE_TEST_F(Profiler, OneProfileAtATimeAndTheLoopKeepsServing) {
  if (!loupe::profiler::cpu_available()) co_return;
  auto& srv = server(make_app(true));
  auto& first = client(srv);
  auto& second = client(srv);
  std::optional<loupe::client_response> profile;
  loupe::spawn(loop, "first-profile", [](loupe::testkit::test_client& c, std::optional<loupe::client_response>& out)
                                          -> awaitable<void> { out = co_await c.get("/debug/pprof/profile?seconds=1"); }(first, profile));
  co_await loupe::testkit::wait_until([&] { return srv.native().requests_in_flight() == 1; });
  auto busy = co_await second.get("/debug/pprof/profile?seconds=1");
  EXPECT_EQ(busy.status_code(), 409u);
  EXPECT_EQ((co_await second.get("/")).text(), "hi");  // served while the profile records
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

LOUPE_TEST_F(Profiler, WithoutGperftoolsTheEndpointsSayUnavailable) {
  if (loupe::profiler::cpu_available()) co_return;  // runs in the stub build
  auto& http = client(server(make_app(true)));
  auto cpu = co_await http.get("/debug/pprof/profile?seconds=1");
  EXPECT_EQ(cpu.status_code(), 501u);
  EXPECT_NE(cpu.text().find("profiling is unavailable"), std::string::npos) << cpu.text();
  EXPECT_EQ((co_await http.get("/debug/pprof/heap")).status_code(), 501u);
  EXPECT_THROW(loupe::profiler::record_cpu_profile("/tmp/never.prof", 10ms), std::runtime_error);
  loupe::monitor::console console({.port = 0});
  loupe::profiler::profiler p;
  p.add_to(console);
  EXPECT_NE(console.execute("profile 1").find("unavailable"), std::string::npos);
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
