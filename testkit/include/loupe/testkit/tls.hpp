// loupe/testkit/tls.hpp — a throw-away certificate authority, made in memory at test time.
//
//   LOUPE_TEST(Shop, ServesHttps) {
//     auto& srv = server(make_shop_app(), {.tls = server_tls()});   // https://127.0.0.1:PORT
//     auto& http = client(srv);                                      // trusts the test CA
//     auto res = co_await http.get("/orders");
//     EXPECT_EQ(res.status_code(), 200u);
//   }
//
// server_tls() is a server context whose certificate the shared CA signed
// for localhost and 127.0.0.1 (or `hosts`); a test server given one on the
// in-memory network gets a certificate for its own name too. Test clients
// of an https server or URL trust the shared CA, and only it, unless their
// client_options say otherwise (trust_test_ca() is that setting).
// (tests/runtime/banner_examples_test.cpp runs the examples here.)
//
//   const auto& ca = test_ca::shared();                     // one CA for the test process
//   auto site = ca.issue();                                 // localhost and 127.0.0.1, valid 30 days
//   auto tls = loupe::tls_context::server({.cert_pem = site.cert_pem, .key_pem = site.key_pem});
//   loupe::client_options co;
//   co.tls.ca_pem = ca.cert_pem();                          // the client trusts this CA only
//
//   auto old = ca.issue({.valid_until = std::chrono::seconds(-60)});   // expired a minute ago
//   auto other = ca.issue({.hosts = {"other.test"}});                  // the wrong host for localhost
//   auto stranger = self_signed();                                     // signed by nobody trusted
//   auto alice = ca.issue({.hosts = {"alice"}, .client = true});       // a client certificate
//   auto [crt, key] = site.write(dir, "site");                         // DIR/site.crt, DIR/site.key
//
// A test_ca is a fresh EC P-256 key and a self-signed X.509 v3 CA
// certificate (basicConstraints CA:TRUE, critical; keyUsage keyCertSign and
// cRLSign; a subject key identifier), valid from an hour ago for 30 days.
// issue() makes a leaf signed by it with SHA-256: a fresh EC P-256 key,
// basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage
// serverAuth (clientAuth with `client`), the subject alternative names from
// `hosts` (an entry that parses as an IPv4 or IPv6 address is an IP entry,
// anything else a DNS name), the CA's key identifier and a random 128-bit
// serial. The subject is CN=common_name (the first host when empty, left out
// when that is longer than the 64 characters a CN may have, and the
// subjectAltName then critical). Validity is relative to now: not before
// now + valid_from, not after now + valid_until, so a negative valid_until is
// a certificate that has already expired (and valid_from must stay before
// it, or issue() throws std::invalid_argument).
// self_signed() is the same leaf signed by its own key: what a verifying
// client rejects as untrusted.
//
// Everything is PEM text in memory: the leaf alone in cert_pem (the CA is
// test_ca::cert_pem(), what a client trusts), the key as PKCS#8 ("BEGIN
// PRIVATE KEY"). write() and write_cert() put them in files for what wants
// paths (the key readable by its owner only). No key or certificate lives in
// the repository. Nothing here is for production use: the keys are made
// anew each run and never protected.
//
// issue() is thread-safe; shared() makes its CA on first use (thread-safe)
// and keeps it for the life of the process. A failure in OpenSSL throws
// std::runtime_error naming the step and OpenSSL's error strings; a file that
// cannot be written throws std::runtime_error naming it.
#pragma once

#include <loupe/runtime/tls.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace loupe::testkit {

/// A certificate and its private key, PEM-encoded.
struct tls_identity {
  std::string cert_pem;  ///< the leaf certificate only (the CA is test_ca::cert_pem())
  std::string key_pem;   ///< the private key, PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")
  /// Writes cert_pem and key_pem to DIR/NAME.crt and DIR/NAME.key (the key
  /// with mode 0600); returns {crt path, key path}.
  std::pair<std::string, std::string> write(const std::string& dir, const std::string& name) const;
};

/// What issue() and self_signed() put in a leaf certificate (see above).
struct issue_options {
  /// Subject alternative names: DNS names, or IP addresses (an entry that
  /// parses as an IPv4/IPv6 address becomes an IP SAN).
  std::vector<std::string> hosts{"localhost", "127.0.0.1"};
  std::string common_name{};  ///< empty: the first host
  /// not_before = now + valid_from: an hour ago by default (clock skew).
  std::chrono::seconds valid_from{-3600};
  /// not_after = now + valid_until; negative makes an EXPIRED certificate.
  std::chrono::seconds valid_until{30 * 24 * 3600};
  bool client = false;  ///< extendedKeyUsage clientAuth instead of serverAuth
};

/// A certificate authority made in memory (see above).
class test_ca {
 public:
  /// A new CA: a fresh EC P-256 key and a self-signed certificate
  /// (basicConstraints CA:TRUE critical, keyUsage keyCertSign+cRLSign,
  /// subjectKeyIdentifier), CN=name, valid from an hour ago for 30 days.
  explicit test_ca(std::string name = "loupe test CA");
  ~test_ca();
  test_ca(test_ca&&) noexcept;
  test_ca& operator=(test_ca&&) noexcept;

  /// The CA certificate, PEM: what a client trusts.
  const std::string& cert_pem() const noexcept;
  /// Writes the CA certificate to PATH; returns PATH.
  std::string write_cert(const std::string& path) const;
  /// A leaf certificate signed by this CA, with a fresh EC P-256 key (see above).
  tls_identity issue(const issue_options& o = {}) const;
  /// The same CA for the whole test process (made on first use, thread-safe).
  static const test_ca& shared();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A self-signed leaf (no CA): what a client must reject as untrusted.
tls_identity self_signed(const issue_options& o = {});

/// A server's TLS context (tls.hpp) with a certificate the shared CA issued
/// with `o` (localhost and 127.0.0.1 by default).
std::shared_ptr<tls_context> server_tls(const issue_options& o = {});
/// The same for `id`, e.g. an expired or self-signed certificate.
std::shared_ptr<tls_context> server_tls(const tls_identity& id);
/// A client's TLS options trusting the shared CA only.
client_tls_options trust_test_ca();

namespace detail {
/// The context server_tls(o) would make with `host` added to the certificate,
/// if `ctx` came from server_tls(o) (for a server on the in-memory network,
/// reached under its own name); otherwise `ctx` itself.
std::shared_ptr<tls_context> with_host(const std::shared_ptr<tls_context>& ctx, const std::string& host);
}  // namespace detail

}  // namespace loupe::testkit
