// libFuzzer target for the request path: bytes from the fuzzer go over a real
// loopback connection into a loupe server (Beast's parser, the server's own
// header checks, the router with typed and regex parameters, middlewares,
// a sub-application, static files, query, cookie and JSON parsing), and
// whatever comes back is checked.
//
//   scripts/fuzz.sh [seconds]        (builds with clang, runs, bounded)
//
// A finding is any of:
//   - a crash, or an ASan/UBSan report (the build is instrumented);
//   - a connection that is not finished within 5 s of the client's EOF
//     (the server must answer or close a half-closed connection);
//   - bytes back that do not start with "HTTP/1.1 " (or "HTTP/1.0 ");
//   - an ERROR record, or a 5xx other than 501/505: malformed input must get
//     a 4xx (or 501 for an unimplemented transfer coding), never a 500;
//   - a file served from outside the static directory.
// On a finding the target aborts with the reason, and libFuzzer saves the input.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/log.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/server.hpp>

#include <boost/json.hpp>
#include <spdlog/sinks/base_sink.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

using loupe::awaitable;
using loupe::request;
using loupe::response;
using namespace std::chrono_literals;

namespace {

// A file next to the static directory: its content must never come back.
constexpr std::string_view secret = "SECRET-OUTSIDE-THE-STATIC-ROOT";

// An access record with a 5xx other than 501/505. The record is parsed, not
// searched: the request's path and user agent are in it too.
bool bad_status(std::string_view line) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return false;
  const auto& o = v.get_object();
  const auto* logger = o.if_contains("logger");
  const auto* status = o.if_contains("status");
  if (!logger || *logger != "loupe.access" || !status || !status->is_number()) return false;
  const auto code = status->to_number<int>();
  return code >= 500 && code != 501 && code != 505;
}

// Remembers the first record that counts as a finding (see the banner).
class finding_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string take() {
    std::lock_guard lock(this->mutex_);
    return std::exchange(found_, {});
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view line(msg.payload.data(), msg.payload.size());
    if ((msg.level >= spdlog::level::err || bad_status(line)) && found_.empty()) found_ = std::string(line);
  }
  void flush_() override {}

 private:
  std::string found_;
};

struct harness {
  loupe::loop loop{"fuzz"};
  loupe::application app;
  std::shared_ptr<finding_sink> findings = std::make_shared<finding_sink>();
  std::unique_ptr<loupe::server> server;
  sockaddr_in addr{};
  std::uint32_t next_source = 0;

  harness() {
    const auto root = std::filesystem::temp_directory_path() / "loupe-fuzz-static";
    std::filesystem::create_directories(root / "public" / "sub");
    std::ofstream(root / "public" / "index.html") << "<p>hello</p>";
    std::ofstream(root / "public" / "sub" / "a.txt") << "a";
    std::ofstream(root / "secret.txt") << secret;

    loupe::log::options lo;
    lo.level = spdlog::level::info;  // access records: their status is checked
    lo.sinks = {findings};
    loupe::log::configure(lo);

    // Outermost: reads what a real middleware reads.
    app.use([](request& req, loupe::next_handler next) -> awaitable<response> {
      (void)req.cookies();
      (void)req.query();
      (void)req.header("Authorization");
      auto res = co_await next(req);
      res.set_header("X-Seen-Cookies", std::to_string(req.cookies().size()));
      co_return res;
    });
    app.get("/", [](request&) -> awaitable<response> { co_return response::text("hi"); });
    app.get("/users/{id:\\d+}", [](request& req) -> awaitable<response> {
      const auto page = req.query().get("page").value_or("1");
      co_return response::json({{"id", req.match_info().at("id")}, {"page", page}});
    });
    app.get("/files/{name}", [](request& req) -> awaitable<response> {
      co_return response::text(std::string(req.match_info().at("name")));
    });
    app.post("/echo", [](request& req) -> awaitable<response> { co_return response::text(req.text()); });
    app.put("/json", [](request& req) -> awaitable<response> {
      co_return response::json(req.json());  // 400 when the body is not JSON
    });
    app.add_static("/static", (root / "public").string());
    // A sub-application whose middleware short-circuits.
    auto& admin = app.add_subapp("/admin", loupe::application{});
    admin.use([](request& req, loupe::next_handler next) -> awaitable<response> {
      if (req.header("X-Token") != "t") throw loupe::http_error(boost::beast::http::status::unauthorized);
      co_return co_await next(req);
    });
    admin.get("/stats", [](request& req) -> awaitable<response> {
      co_return response::text(std::string(req.cookie("session").value_or("none")));
    });

    loupe::server_options so;
    so.header_timeout = 1s;
    so.keepalive_timeout = 1s;
    so.body_timeout = 1s;
    so.write_timeout = 1s;
    so.max_header_bytes = 4096;
    server = std::make_unique<loupe::server>(loop, app, so);
    const auto ep = server->listen("127.0.0.1", 0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(ep.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }

  [[noreturn]] static void finding(const std::string& what) {
    std::fprintf(stderr, "\n*** loupe fuzz finding: %s\n", what.c_str());
    std::abort();
  }

  // Runs the loop until `done()` or 5 s.
  template <class F>
  bool run_until(F done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      if (loop.run_one_for(10ms) == 0 && loop.stopped()) loop.restart();
    }
    return true;
  }

  // A connected, non-blocking client socket. The harness closes first, so
  // each input leaves a TIME_WAIT port behind: at ~500 inputs/s after a test
  // suite's own connections, 28k ephemeral ports of one source address run
  // out within a minute (CI's `connect() failed`, EADDRNOTAVAIL). The source
  // address turns over 127.0.0.2-127.0.0.251, each with its own port range
  // (IP_BIND_ADDRESS_NO_PORT: the port is picked per 4-tuple at connect).
  // The connect itself is non-blocking and polled, so libFuzzer's SIGALRM
  // cannot interrupt it. Failing here is the harness's limit, not the
  // server's, and says so with errno.
  int connect_client() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) harness_failed("socket()");
    const int on = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (next_source++ % 250));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) harness_failed("bind()");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
      harness_failed("connect()");
    pollfd p{fd, POLLOUT, 0};
    int ready = 0;
    do ready = ::poll(&p, 1, 5000);
    while (ready < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof err;
    if (ready == 0) errno = ETIMEDOUT;
    else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) errno = err;
    if (ready <= 0 || err != 0) harness_failed("connect()");
    return fd;
  }

  [[noreturn]] static void harness_failed(const char* call) {
    std::fprintf(stderr, "\n*** loupe fuzz harness: %s failed: %s (not a finding in the server)\n", call,
                 std::strerror(errno));
    std::exit(2);
  }

  void one(const std::uint8_t* data, std::size_t size) {
    const int fd = connect_client();
    std::size_t sent = 0;
    bool shut = false;
    std::string back;
    const auto pump = [&] {
      // Send what the socket takes, then read what came back.
      while (sent < size) {
        const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      if (sent == size && !shut) {
        ::shutdown(fd, SHUT_WR);
        shut = true;
      }
      char buf[16384];
      for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
          back.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        // EOF, or a reset: the server is done with the connection.
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
      }
    };
    const bool finished = run_until(pump);
    ::close(fd);
    if (!finished) finding("the server neither answered nor closed a half-closed connection within 5 s");
    if (!run_until([&] { return server->connection_count() == 0; }))
      finding("a connection was still open 5 s after the client closed");
    // HTTP/1.0 for a 1.0 request.
    if (!back.empty() && back.rfind("HTTP/1.1 ", 0) != 0 && back.rfind("HTTP/1.0 ", 0) != 0)
      finding("the answer is not an HTTP/1.x response: " + back.substr(0, 80));
    if (back.find(secret) != std::string::npos) finding("a file outside the static directory was served");
    loupe::log::flush(2s);
    if (auto f = findings->take(); !f.empty()) finding("log record: " + f);
  }
};

harness* the_harness = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  the_harness = new harness;  // never destroyed: libFuzzer exits from anywhere
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  the_harness->one(data, size);
  return 0;
}
