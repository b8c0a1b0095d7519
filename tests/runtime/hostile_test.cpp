// Hostile HTTP input: a corpus of malformed, ambiguous and abusive requests.
// Each must get a 4xx (or 501 for a transfer coding we do not implement) or a
// closed connection, never a crash or an ERROR record, and the server must
// answer the next client normally.
#include <loupe/runtime/application.hpp>
#include <loupe/testkit/raw_client.hpp>
#include <loupe/testkit/test.hpp>

#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;
using namespace std::string_view_literals;

namespace {

struct hostile_case {
  const char* name;
  std::string bytes;
  bool end_input = false;  // half-close after sending (early EOF)
  // Inputs RFC 9112 lets a server accept: then the answer must be 200 with
  // this body (what the handler saw), never anything smuggled.
  const char* accepted_body = nullptr;
};

std::vector<hostile_case> corpus() {
  const std::string huge(100 * 1024, 'a');
  std::string many_headers = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 5000; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
  many_headers += "\r\n";
  return {
      // Request lines.
      {"garbage", "GARBAGE\r\n\r\n"},
      {"method only", "GET\r\n\r\n"},
      {"no version", "GET /\r\nHost: x\r\n\r\n"},
      {"extra token", "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"},
      {"unknown version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n"},
      {"version garbage", "GET / HTTP/1.x\r\nHost: x\r\n\r\n"},
      {"bad method characters", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"control byte in target", std::string("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n")},
      {"NUL in target", std::string("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"sv)},
      {"fragment in target", "GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"bad percent-encoding", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"percent-encoded NUL", "GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"oversized URL", "GET /" + huge + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      // Header names and values.
      {"space in header name", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
      {"empty header name", "GET / HTTP/1.1\r\n: novalue\r\n\r\n"},
      {"no colon", "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"},
      {"control byte in value", std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n")},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"sv)},
      // RFC 9112 5.2: reject, or replace the fold with spaces (Beast does).
      {"obsolete line folding", "GET /x HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", false, "a b"},
      {"oversized header value", "GET / HTTP/1.1\r\nHost: x\r\nX: " + huge + "\r\n\r\n"},
      {"5000 headers", many_headers},
      // Line endings.
      {"bare LF", "GET / HTTP/1.1\nHost: x\n\n"},
      {"bare CR", "GET / HTTP/1.1\rHost: x\r\r"},
      {"CR in the middle of a header", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"},
      // Message framing.
      {"invalid chunk size",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n"},
      {"chunk size overflow",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"},
      {"chunk without CRLF", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
      {"chunk longer than the limit",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + huge + "\r\n0\r\n\r\n"},
      {"Content-Length and chunked",
       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"two different Content-Lengths",
       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
      {"Content-Length list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"},
      {"negative Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
      {"Content-Length with sign", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"},
      {"absurd Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"},
      {"Content-Length past the limit", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"},
      {"gzip then chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
      {"chunked then gzip", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
      {"unknown transfer coding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n"},
      {"huge chunk extension",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;" + huge + "\r\nhello\r\n0\r\n\r\n"},
      // Early EOF.
      {"EOF in the request line", "GET / HT", true},
      {"EOF in a header", "GET / HTTP/1.1\r\nHo", true},
      {"EOF in the body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", true},
      {"EOF in a chunk", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", true},
      // Never finished (the header timeout ends it).
      {"header never ends", "GET / HTTP/1.1\r\nHost: x\r\n"},
      {"only blank lines", std::string(10000, '\n')},
  };
}

}  // namespace

LOUPE_TEST(Hostile, EveryMalformedRequestGetsA4xxOrACloseAndTheServerGoesOn) {
  loupe::application app;
  app.get("/", [](request&) -> awaitable<response> { co_return response::text("ok"); });
  app.get("/x", [](request& req) -> awaitable<response> {
    co_return response::text(std::string(req.header("X").value_or("")));
  });
  app.post("/echo", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
  app.set_client_max_size(64 * 1024);
  auto& srv = server(std::move(app), {.header_timeout = 300ms, .body_timeout = 300ms, .write_timeout = 300ms});
  int tried = 0;
  for (const auto& c : corpus()) {
    ++tried;
    SCOPED_TRACE(c.name);
    {
      loupe::testkit::raw_client client(loop.get_executor());
      co_await client.connect(srv.endpoint());
      // The server may refuse and close before all of a large input is sent.
      try {
        co_await client.send(c.bytes);
        if (c.end_input) client.shutdown_send();
      } catch (const boost::system::system_error&) {
      }
      unsigned status = 0;
      loupe::testkit::http_response res;
      try {
        res = co_await client.read_response();
        status = res.result_int();
      } catch (const boost::system::system_error&) {
        // Closed without a response.
      }
      if (c.accepted_body) {
        EXPECT_EQ(status, 200u) << c.name;
        EXPECT_EQ(res.body(), c.accepted_body) << c.name;
      } else if (status != 0) {
        // A 4xx, or 501 for a transfer coding the server does not implement
        // (RFC 9112 6.1). Never a success for malformed framing.
        EXPECT_TRUE((status >= 400 && status < 500) || status == 501) << c.name << ": status " << status;
        // After refusing, the server closes: the rest of the input cannot be trusted.
        EXPECT_TRUE(co_await client.closed_by_peer()) << c.name;
      }
    }
    // The next client is served.
    loupe::testkit::raw_client next(loop.get_executor());
    co_await next.connect(srv.endpoint());
    const auto ok = co_await next.request(boost::beast::http::verb::get, "/");
    EXPECT_EQ(ok.result_int(), 200u) << "after " << c.name;
    EXPECT_EQ(ok.body(), "ok");
  }
  EXPECT_EQ(tried, static_cast<int>(corpus().size()));
  RecordProperty("inputs", tried);
}
