// loupe/runtime/tls.hpp — HTTPS: a server's certificate, and what a client trusts.
//
//   auto tls = loupe::tls_context::server({.cert_file = "site.crt", .key_file = "site.key"});
//   loupe::server srv(loop, app, {.tls = tls});     // every listener of srv speaks TLS
//   srv.listen(host, port);
//   tls->reload();                                   // new certificate; open connections keep theirs
//
//   loupe::client_options co;
//   co.tls.ca_file = "corp-ca.pem";                  // trusted instead of the system store
//   loupe::client_session http(loop, co);
//   auto res = co_await http.get("https://api.example.com/items");
//
// (tests/runtime/banner_examples_test.cpp runs these lines.)
//
// A server: TLS 1.2 and 1.3 (OpenSSL, through Asio's ssl::stream and Beast),
// ALPN "http/1.1" (a client offering only other protocols is served without
// ALPN), the certificate chain and key from PEM files or text. One
// tls_context is shared by the servers of a process (run_main gives every
// loop's server the same one); reload() reads the files again and new
// connections get the new certificate, while connections already open keep
// the one they were made with — nothing is dropped. run_main's --tls-cert and
// --tls-key make one, and SIGHUP reloads it. A reload that fails (a missing
// file, a key that does not match) throws and keeps the old certificate.
// The handshake counts against the header timeout; one that fails is logged
// at info level and counted in http_server_tls_handshake_failures_total,
// never an error of ours.
//
// A client (client_options::tls): verification is on by default, against the
// system's CA store (/etc/ssl/certs), the host name checked against the
// certificate (an IP address against its IP entries) and sent as SNI. A
// failure is a client_error whose code says which: certificate_untrusted,
// certificate_expired, certificate_wrong_host or tls_handshake_failed (no
// common protocol or cipher, not TLS at all, cut off mid-handshake).
// `ca_file`/`ca_pem` trust those CAs instead of the system store; `cert_*` and
// `key_*` present a client certificate; `verify = false` turns every check
// off (test rigs only).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace loupe {

/// A certificate chain and its private key, from PEM files or PEM text (text
/// when the file name is empty).
struct tls_certificate {
  std::string cert_file{};
  std::string key_file{};  ///< empty: the key follows the chain in cert_file (or key_pem)
  std::string cert_pem{};
  std::string key_pem{};
  bool empty() const noexcept { return cert_file.empty() && cert_pem.empty(); }
};

/// A bad certificate or key: what was wrong, naming the file.
class tls_config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A server's TLS settings and certificate, shared by its servers (see above).
class tls_context {
 public:
  /// Loads `cert` (throws tls_config_error naming what is wrong).
  static std::shared_ptr<tls_context> server(tls_certificate cert);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  /// Loads the certificate again (from the same files, or from `cert`);
  /// new connections use it. Thread-safe. Throws tls_config_error and keeps
  /// the current one on failure.
  void reload();
  void reload(tls_certificate cert);
  /// "CN=localhost, valid until 2027-01-02 10:00:00 GMT": the leaf being served.
  std::string describe() const;
  /// Reloads done so far.
  std::uint64_t generation() const noexcept;

  struct impl;
  impl& internals() noexcept { return *impl_; }

 private:
  explicit tls_context(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

/// What a client trusts and presents (client_options::tls).
struct client_tls_options {
  /// Verify the server's certificate and host name (off: anything is accepted).
  bool verify = true;
  /// CAs to trust instead of the system store: a PEM file, or PEM text.
  std::string ca_file{};
  std::string ca_pem{};
  /// A client certificate to present, if the server asks for one.
  tls_certificate client_certificate{};
};

}  // namespace loupe
