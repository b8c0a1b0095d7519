// HTTP on the console's listener: telling an HTTP request from a console
// session by its first bytes, and answering one request from the endpoints
// other components added (the profiler's /debug/pprof/*), to loopback peers
// only.
#include "session.hpp"

#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/request.hpp>
#include <loupe/runtime/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <string_view>

namespace loupe::monitor::detail {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::array<std::string_view, 7> request_starts = {"GET /",    "HEAD /",    "POST /", "PUT /",
                                                            "DELETE /", "OPTIONS /", "PATCH /"};
constexpr auto read_timeout = 10s;
constexpr auto write_timeout = 60s;
constexpr std::size_t max_request_header = 8 * 1024;

enum class verdict { http, console, undecided };

verdict classify(std::string_view first) {
  bool prefix = false;
  for (auto start : request_starts) {
    if (first.starts_with(start)) return verdict::http;
    if (start.starts_with(first)) prefix = true;
  }
  return prefix ? verdict::undecided : verdict::console;
}

// Why a browser may have sent this request for a page of another site, or
// null. A loopback peer is not enough: a page that rebinds its own name to
// 127.0.0.1 reaches us with its name in Host, and any page can make the
// browser GET a loopback URL (it then sends Sec-Fetch-Site, or Origin).
const char* cross_site(const http::request_header<>& h) {
  std::string_view host = h[http::field::host];
  if (const auto colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos)
    host = host.substr(0, colon);  // the port
  if (host != "localhost" && host != "127.0.0.1" && host != "[::1]")
    return "the console's HTTP endpoints answer requests for localhost, 127.0.0.1 or [::1] only";
  if (h.find(http::field::origin) != h.end()) return "a request sent on behalf of a web page (Origin) is refused";
  const std::string_view site = h["Sec-Fetch-Site"];
  if (!site.empty() && site != "none" && site != "same-origin")
    return "a request a browser sent for another site (Sec-Fetch-Site) is refused";
  return nullptr;
}

bool is_loopback(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

}  // namespace

awaitable<bool> starts_with_http(connection_state& c, std::chrono::milliseconds window) {
  const auto until = std::chrono::steady_clock::now() + window;
  for (;;) {
    const auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return false;
    c.arm(left);
    auto [ec] = co_await c.socket.async_wait(tcp::socket::wait_read, nothrow);
    c.disarm();
    if (ec) co_return false;  // nothing came within the window (or the peer left)
    std::array<char, 16> first;
    boost::system::error_code pec;
    const std::size_t n = c.socket.receive(asio::buffer(first), tcp::socket::message_peek, pec);
    if (pec || n == 0) co_return false;  // closed: the session notices
    switch (classify(std::string_view(first.data(), n))) {
      case verdict::http: co_return true;
      case verdict::console: co_return false;
      case verdict::undecided: break;  // "GE": wait a moment for the rest
    }
    asio::steady_timer pause(c.socket.get_executor(), 10ms);
    co_await pause.async_wait(nothrow);
  }
}

awaitable<void> serve_http(std::shared_ptr<connection_state> c, const std::vector<http_endpoint>& endpoints,
                           bool read_only) {
  boost::beast::flat_buffer buf;
  http::request_parser<http::string_body> parser;
  parser.header_limit(max_request_header);
  parser.body_limit(0);
  c->arm(read_timeout);
  auto [rec, rn] = co_await http::async_read(c->socket, buf, parser, nothrow);
  c->disarm();
  boost::system::error_code ec;
  const auto remote = c->socket.remote_endpoint(ec);
  const auto local = c->socket.local_endpoint(ec);

  const bool head = !rec && parser.get().method() == http::verb::head;
  response res;
  if (rec) {
    if (c->expired || rec == http::error::end_of_stream) {
      c->close();
      co_return;
    }
    res = response::text("400: Bad Request (" + rec.message() + ")\n", response::status_type::bad_request);
  } else if (!is_loopback(remote.address())) {
    // The console may listen beyond loopback (--monitor-allow-remote); these
    // endpoints never answer there.
    log::runtime().warn("monitor: refused {} {} from {}: the console's HTTP endpoints answer loopback peers only",
                        parser.get().method_string(), parser.get().target(), remote.address().to_string());
    res = response::text("403: Forbidden (the console's HTTP endpoints answer loopback peers only)\n",
                         response::status_type::forbidden);
  } else if (const char* why = cross_site(parser.get())) {
    log::runtime().warn("monitor: refused {} {}: {}", parser.get().method_string(), parser.get().target(), why);
    res = response::text("403: Forbidden (" + std::string(why) + ")\n", response::status_type::forbidden);
  } else {
    try {
      request req(parser.release(), remote, local);
      const http_endpoint* found = nullptr;
      for (const auto& e : endpoints)
        if (e.path == req.path()) found = &e;
      if (!found) {
        res = http_not_found("no such endpoint on the console's listener");
      } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res = http_method_not_allowed("GET, HEAD");
      } else if (found->changes_state && read_only) {
        res = response::text("403: Forbidden (the console is read-only)\n", response::status_type::forbidden);
      } else {
        res = co_await found->handle(req);
      }
    } catch (const http_error& e) {
      res = e;
    } catch (const std::exception& e) {
      log::runtime().error("monitor: HTTP endpoint failed: {}", e.what());
      res = response::text("500: Internal Server Error\n", response::status_type::internal_server_error);
    }
  }
  auto& msg = res.native();
  msg.keep_alive(false);
  msg.set(http::field::server, "loupe-monitor");
  msg.prepare_payload();
  c->arm(write_timeout);
  if (head) {
    http::response_serializer<http::string_body> sr{msg};
    co_await http::async_write_header(c->socket, sr, nothrow);
  } else {
    co_await http::async_write(c->socket, msg, nothrow);
  }
  c->disarm();
  c->close();
}

}  // namespace loupe::monitor::detail
