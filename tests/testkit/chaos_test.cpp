// Chaos links: one test per knob, on the in-memory network (and over TCP
// where the TCP proxy form behaves differently), mostly on virtual time.
#include <loupe/testkit/test.hpp>

#include "support/child_test.hpp"

#include <boost/beast/http/verb.hpp>

using namespace std::chrono_literals;
using loupe::awaitable;
using loupe::request;
using loupe::response;
namespace http = boost::beast::http;
using loupe::testkit::direction_faults;
using loupe::testkit::link_faults;
using loupe::testkit::network;

namespace {

loupe::application shop() {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("Hello, world!"); });
  app.get("/cookie", [](request& req) -> awaitable<response> {
    co_return response::text(std::to_string(req.header("Cookie").value_or("").size()));
  });
  app.get("/big", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(std::stoul(std::string(req.query().get("bytes").value_or("0"))), 'b'));
  });
  return app;
}

// An error from a request, or "" when it succeeded.
awaitable<std::string> failure_of(loupe::testkit::test_client& http, std::string path,
                                  loupe::client_errc* code = nullptr) {
  try {
    co_await http.get(path);
  } catch (const loupe::client_error& e) {
    if (code) *code = static_cast<loupe::client_errc>(e.code().value());
    co_return e.what();
  }
  co_return "";
}

class Chaos : public loupe::testkit::test {
 protected:
  Chaos() {
    use_memory_network();
    use_virtual_time();
    start_ = loupe::clock::now();
  }
  std::chrono::nanoseconds elapsed() const { return loupe::clock::now() - start_; }
  loupe::clock::time_point start_;
};

const std::string cookie(2048, 'c');

}  // namespace

LOUPE_TEST_F(Chaos, FragmentedHeadersStillParse) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_server = {.segment_bytes = 69}, .seed = 7});
  auto& http = client(link);
  loupe::request_options o{.headers = {{"Cookie", cookie}}};
  auto res = co_await http.get("/cookie", std::move(o));
  EXPECT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "2048");
  // The request (over 2 KB) crossed in 69-byte segments, each read before the next.
  EXPECT_GE(link.writes_to_server(), 2048u / 69);
  EXPECT_EQ(elapsed(), 0s);  // splitting takes no time
}

LOUPE_TEST_F(Chaos, RandomSegmentsAreTheSameForTheSameSeed) {
  auto& srv = server(shop());
  std::vector<std::size_t> writes;
  for (std::uint64_t seed : {11u, 11u, 12u}) {
    auto& link = chaos(srv, {.to_server = {.segment_bytes = 40, .random_segments = true}, .seed = seed});
    auto& http = client(link);
    loupe::request_options o{.headers = {{"Cookie", cookie}}};
    EXPECT_EQ((co_await http.get("/cookie", std::move(o))).text(), "2048");
    writes.push_back(link.writes_to_server());
    co_await http.close();
  }
  EXPECT_EQ(writes[0], writes[1]);
  EXPECT_GT(writes[0], 2048u / 40);  // sizes from 1 to 40: more segments than 40 bytes each
  EXPECT_NE(writes[0], writes[2]) << "another seed, other sizes (equal counts are possible but unlikely)";
}

LOUPE_TEST_F(Chaos, ADelayPerDirectionAddsUpOnVirtualTime) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_server = {.delay = 2s}, .to_client = {.delay = 3s}});
  auto& http = client(link);
  EXPECT_EQ((co_await http.get("/")).text(), "Hello, world!");
  EXPECT_EQ(elapsed(), 5s);  // one piece each way
}

LOUPE_TEST_F(Chaos, ABandwidthLimitPacesTheResponse) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_client = {.bytes_per_second = 10'000}});
  auto& http = client(link);
  auto res = co_await http.get("/big?bytes=50000");
  EXPECT_EQ(res.text().size(), 50'000u);
  // 50 kB (and the header) at 10 kB/s.
  EXPECT_GE(elapsed(), 5s);
  EXPECT_LT(elapsed(), 6s);
}

LOUPE_TEST_F(Chaos, AReaderThatStopsTripsTheServersWriteTimeout) {
  auto& srv = server(shop(), {.write_timeout = 60s});
  auto& link = chaos(srv, {.to_client = {.stop_after = 1000}});
  loupe::client_options patient{.request_timeout = 10min};
  auto& http = client(link, patient);
  std::string failure;
  auto download = [&]() -> awaitable<void> { failure = co_await failure_of(http, "/big?bytes=16777216"); };
  const auto request = loupe::spawn(loop, "download", download());
  // (Polled every 100 ms: under virtual time each poll is a round of the loop.)
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 1; }, 100ms);
  co_await loupe::testkit::wait_until([&] { return srv.native().connection_count() == 0; }, 100ms);
  // The server gave up on the stalled reader at its write timeout.
  EXPECT_GE(elapsed(), 60s);
  EXPECT_LE(elapsed(), 62s);
  co_await link.close();  // the client then sees its connection end mid-body
  co_await loupe::join(loop, request);
  EXPECT_FALSE(failure.empty());
}

LOUPE_TEST_F(Chaos, ACloseMidBodyGivesTheClientAClearError) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_client = {.close_after = 500}});
  auto& http = client(link);
  loupe::client_errc code{};
  const auto failure = co_await failure_of(http, "/big?bytes=100000", &code);
  EXPECT_EQ(code, loupe::client_errc::bad_response) << failure;
  EXPECT_FALSE(failure.empty());
}

LOUPE_TEST_F(Chaos, AResetMidBodyGivesTheClientAClearError) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_client = {.reset_after = 500}});
  auto& http = client(link);
  loupe::client_errc code{};
  const auto failure = co_await failure_of(http, "/big?bytes=100000", &code);
  EXPECT_EQ(code, loupe::client_errc::bad_response) << failure;
}

LOUPE_TEST(ChaosTcp, AResetMidBodyOverTcpIsAResetAtTheClient) {
  // The TCP proxy form: a real RST.
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_client = {.reset_after = 500}});
  EXPECT_FALSE(link.where().in_memory());
  auto& http = client(link);
  const auto failure = co_await failure_of(http, "/big?bytes=1000000");
  EXPECT_NE(failure.find("reset"), std::string::npos) << failure;
}

LOUPE_TEST(ChaosTcp, FragmentedHeadersStillParseThroughTheTcpProxy) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_server = {.segment_bytes = 69}});
  auto& http = client(link);
  loupe::request_options o{.headers = {{"Cookie", cookie}}};
  EXPECT_EQ((co_await http.get("/cookie", std::move(o))).text(), "2048");
  EXPECT_GE(link.writes_to_server(), 2048u / 69);
}

LOUPE_TEST_F(Chaos, ACorruptRequestByteIsRefusedWith400AndTheServerGoesOn) {
  auto& srv = server(shop());
  // Offset 3 is the space after "GET": whatever it becomes, the request line is broken.
  auto& link = chaos(srv, {.to_server = {.corrupt_at = 3}, .seed = 5});
  loupe::testkit::raw_client c(loop.get_executor());
  co_await c.connect(link.where());
  co_await c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).result_int(), 400u);
  auto& http = client(srv);  // not through the link
  EXPECT_EQ((co_await http.get("/")).status_code(), 200u);
}

LOUPE_TEST_F(Chaos, ACorruptResponseByteIsABadResponseAtTheClient) {
  auto& srv = server(shop());
  // Offset 4 is the '/' of "HTTP/1.1".
  auto& link = chaos(srv, {.to_client = {.corrupt_at = 4}});
  auto& http = client(link);
  loupe::client_errc code{};
  const auto failure = co_await failure_of(http, "/", &code);
  EXPECT_EQ(code, loupe::client_errc::bad_response) << failure;
}

LOUPE_TEST_F(Chaos, AnAcceptStallIsWaitedOutOrTimesOut) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.accept_stall = 20s});
  loupe::client_options quick{.request_timeout = 5s};
  auto& impatient = client(link, quick);
  loupe::client_errc code{};
  co_await failure_of(impatient, "/", &code);
  EXPECT_EQ(code, loupe::client_errc::timeout);
  EXPECT_EQ(elapsed(), 5s);
  auto& patient = client(link);
  EXPECT_EQ((co_await patient.get("/")).status_code(), 200u);
  EXPECT_EQ(elapsed(), 25s);
}

LOUPE_TEST_F(Chaos, ALinkIsNamedWithItsSeedInTheLog) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_server = {.segment_bytes = 69}, .seed = 42, .name = "mtu-69"});
  EXPECT_EQ(link.seed(), 42u);
  EXPECT_NE(link.describe().find("chaos link 'mtu-69' seed 42"), std::string::npos) << link.describe();
  EXPECT_NE(link.describe().find("to_server segment_bytes=69"), std::string::npos) << link.describe();
  EXPECT_EQ(logs({.message = "chaos link 'mtu-69' seed 42"}).size(), 1u);
  auto& drawn = chaos(srv, {});
  EXPECT_NE(drawn.seed(), 0u);  // drawn, and said
  EXPECT_EQ(logs({.message = "seed " + std::to_string(drawn.seed())}).size(), 1u);
  co_return;
}

// Run in a child process by the next test: it fails on purpose.
LOUPE_TEST_F(Chaos, DISABLED_FailsThroughALink) {
  auto& srv = server(shop());
  auto& link = chaos(srv, {.to_client = {.close_after = 10}, .seed = 99});
  auto& http = client(link);
  auto res = co_await http.get("/");
  EXPECT_EQ(res.status_code(), 200u);
}

TEST(ChaosChecks, AFailingTestNamesItsLinkAndSeed) {
  const auto r = loupe_test::run_child("Chaos.DISABLED_FailsThroughALink");
  const auto& out = r.out;
  EXPECT_NE(r.code, 0) << out;
  EXPECT_NE(out.find("chaos link 'link-"), std::string::npos) << out;
  EXPECT_NE(out.find("seed 99"), std::string::npos) << out;
  EXPECT_NE(out.find("to_client close_after=10"), std::string::npos) << out;
}
