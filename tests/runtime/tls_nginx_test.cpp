// loupe's client against a real TLS server: Debian's nginx (nginx-light),
// started by the test with certificates from the test CA — a good one, an
// expired one, a self-signed one, one for another host, one that asks for a
// client certificate — and a plain-HTTP port. Each verification failure has
// its code; keep-alive holds over TLS; a client certificate is presented.
#include <loupe/runtime/client.hpp>
#include <loupe/testkit/process.hpp>
#include <loupe/testkit/test.hpp>
#include <loupe/testkit/tls.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

using namespace std::chrono_literals;
using loupe::awaitable;
using loupe::client_errc;
using loupe::testkit::test_ca;
namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

const char* const nginx_binary = "/usr/sbin/nginx";

// Ports the kernel just gave out, free again: nginx binds them.
std::vector<unsigned short> free_ports(std::size_t n) {
  asio::io_context io;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> held;
  std::vector<unsigned short> out;
  for (std::size_t i = 0; i < n; ++i) {
    held.push_back(
        std::make_unique<asio::ip::tcp::acceptor>(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    out.push_back(held.back()->local_endpoint().port());
  }
  return out;
}

bool accepts(unsigned short port) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

// One nginx with a server per case, in a directory of its own.
class Nginx : public loupe::testkit::test {
 protected:
  enum which { good, expired, self_signed, other_host, client_auth, plain, count };

  void SetUp() override {
    loupe::testkit::test::SetUp();
    if (!fs::exists(nginx_binary)) GTEST_SKIP() << nginx_binary << " is not installed (apt-get install nginx-light)";
    dir_ = fs::temp_directory_path() / ("loupe-nginx-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "tmp");
    const auto& ca = test_ca::shared();
    std::map<which, loupe::testkit::tls_identity> ids{
        {good, ca.issue()},
        {expired, ca.issue({.valid_from = -7200s, .valid_until = -60s})},
        {self_signed, loupe::testkit::self_signed()},
        {other_host, ca.issue({.hosts = {"other.test"}})},
        {client_auth, ca.issue()},
    };
    ca.write_cert((dir_ / "ca.crt").string());
    ports_ = free_ports(count);
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1;\n"
         << "pid " << (dir_ / "nginx.pid").string() << ";\nerror_log stderr notice;\n"
         << "events { worker_connections 64; }\nhttp {\n  access_log off;\n"
         << "  client_body_temp_path " << (dir_ / "tmp/body").string() << ";\n"
         << "  proxy_temp_path " << (dir_ / "tmp/proxy").string() << ";\n"
         << "  fastcgi_temp_path " << (dir_ / "tmp/fastcgi").string() << ";\n"
         << "  uwsgi_temp_path " << (dir_ / "tmp/uwsgi").string() << ";\n"
         << "  scgi_temp_path " << (dir_ / "tmp/scgi").string() << ";\n";
    for (auto& [w, id] : ids) {
      const auto [crt, key] = id.write(dir_.string(), "cert" + std::to_string(w));
      conf << "  server {\n    listen 127.0.0.1:" << ports_[w] << " ssl;\n"
           << "    ssl_certificate " << crt << ";\n    ssl_certificate_key " << key << ";\n"
           << "    ssl_protocols TLSv1.2 TLSv1.3;\n";
      if (w == client_auth)
        conf << "    ssl_verify_client on;\n    ssl_client_certificate " << (dir_ / "ca.crt").string() << ";\n"
             << "    location / { return 200 \"client $ssl_client_s_dn\\n\"; }\n";
      else conf << "    location / { return 200 \"nginx over $ssl_protocol\\n\"; }\n";
      conf << "  }\n";
    }
    conf << "  server { listen 127.0.0.1:" << ports_[plain] << "; location / { return 200 \"plain\\n\"; } }\n}\n";
    conf.close();
    nginx_.emplace(std::vector<std::string>{nginx_binary, "-p", dir_.string(), "-c", (dir_ / "nginx.conf").string()});
    // nginx says nothing when it is ready: wait (bounded) until every port accepts.
    const auto until = std::chrono::steady_clock::now() + 10s;
    for (auto p : ports_) {
      while (!accepts(p)) {
        ASSERT_LT(std::chrono::steady_clock::now(), until) << "nginx did not listen on " << p << ":\n"
                                                           << nginx_->stderr_text();
        ASSERT_FALSE(nginx_->exited_within(10ms)) << "nginx exited:\n" << nginx_->stderr_text();
      }
    }
  }
  void TearDown() override {
    loupe::testkit::test::TearDown();
    nginx_.reset();  // killed
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string url(which w, std::string_view scheme = "https") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(ports_[w]) + "/";
  }

  template <class F>
  static awaitable<std::optional<client_errc>> error_of(F body, std::string* what = nullptr) {
    try {
      co_await body();
    } catch (const loupe::client_error& e) {
      if (what) *what = e.what();
      co_return static_cast<client_errc>(e.code().value());
    }
    co_return std::nullopt;
  }

  fs::path dir_;
  std::vector<unsigned short> ports_;
  std::optional<loupe::testkit::child> nginx_;
};

}  // namespace

LOUPE_TEST_F(Nginx, LoupesClientSpeaksHttpsToNginxAndNamesEachFailure) {
  loupe::client_options co;
  co.tls = loupe::testkit::trust_test_ca();
  loupe::client_session http(loop, co);

  auto res = co_await http.get(url(good));
  EXPECT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "nginx over TLSv1.3\n");
  EXPECT_EQ((co_await http.get(url(good))).status_code(), 200u);
  EXPECT_EQ(http.connections_opened(), 1u);  // keep-alive over TLS

  std::string what;
  const auto get = [&](std::string u) {
    return error_of([&http, u]() -> awaitable<void> { (void)co_await http.get(u); }, &what);
  };
  EXPECT_EQ(co_await get(url(expired)), client_errc::certificate_expired) << what;
  EXPECT_EQ(co_await get(url(self_signed)), client_errc::certificate_untrusted) << what;
  EXPECT_EQ(co_await get(url(other_host)), client_errc::certificate_wrong_host) << what;
  EXPECT_EQ(co_await get(url(plain)), client_errc::tls_handshake_failed) << what;
  EXPECT_NE(what.find(std::to_string(ports_[plain])), std::string::npos) << what;

  // The system's CA store does not know the test CA.
  loupe::client_session system_store(loop);
  EXPECT_EQ(co_await error_of([&]() -> awaitable<void> { (void)co_await system_store.get(url(good)); }),
            client_errc::certificate_untrusted);
}

LOUPE_TEST_F(Nginx, AClientCertificateIsPresentedWhenGiven) {
  const auto alice = test_ca::shared().issue({.hosts = {"alice"}, .client = true});
  loupe::client_options with_cert;
  with_cert.tls = loupe::testkit::trust_test_ca();
  with_cert.tls.client_certificate.cert_pem = alice.cert_pem;
  with_cert.tls.client_certificate.key_pem = alice.key_pem;
  loupe::client_session http(loop, with_cert);
  auto res = co_await http.get(url(client_auth));
  EXPECT_EQ(res.status_code(), 200u);
  EXPECT_EQ(res.text(), "client CN=alice\n");

  loupe::client_options without;
  without.tls = loupe::testkit::trust_test_ca();
  loupe::client_session anonymous(loop, without);
  auto refused = co_await anonymous.get(url(client_auth));
  EXPECT_EQ(refused.status_code(), 400u);  // nginx: "No required SSL certificate was sent"
  EXPECT_NE(refused.text().find("No required SSL certificate"), std::string::npos) << refused.text();
}
