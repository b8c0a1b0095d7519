// testkit: a throw-away certificate authority made in memory with OpenSSL (tls.hpp).
#include <loupe/testkit/tls.hpp>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace loupe::testkit {

namespace {

template <auto Free>
struct deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using name_ptr = std::unique_ptr<X509_NAME, deleter<X509_NAME_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
using octets_ptr = std::unique_ptr<ASN1_OCTET_STRING, deleter<ASN1_OCTET_STRING_free>>;
using ia5_ptr = std::unique_ptr<ASN1_IA5STRING, deleter<ASN1_IA5STRING_free>>;
using gen_ptr = std::unique_ptr<GENERAL_NAME, deleter<GENERAL_NAME_free>>;
using gens_ptr = std::unique_ptr<GENERAL_NAMES, deleter<GENERAL_NAMES_free>>;

/// Throws std::runtime_error: what failed, and every error on OpenSSL's queue (which it empties).
[[noreturn]] void fail(const std::string& what) {
  std::string msg = "loupe::testkit tls: " + what + " failed";
  bool any = false;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += any ? "; " : ": ";
    msg += buf;
    any = true;
  }
  if (!any) msg += " (no OpenSSL error reported)";
  throw std::runtime_error(msg);
}

void check(int ok, const char* what) {
  if (ok <= 0) fail(what);
}

pkey_ptr new_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("generating an EC P-256 key (EVP_EC_gen)");
  return key;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && !data)) fail("reading a memory BIO");
  return std::string(data, static_cast<std::size_t>(len));
}

bio_ptr mem_bio() {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("allocating a memory BIO");
  return bio;
}

std::string cert_to_pem(X509* cert) {
  auto bio = mem_bio();
  check(PEM_write_bio_X509(bio.get(), cert), "PEM-encoding a certificate (PEM_write_bio_X509)");
  return bio_text(bio.get());
}

std::string key_to_pem(EVP_PKEY* key) {
  auto bio = mem_bio();
  // PKCS#8, unencrypted: "-----BEGIN PRIVATE KEY-----".
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "PEM-encoding a private key (PEM_write_bio_PrivateKey)");
  return bio_text(bio.get());
}

/// A random positive 128-bit serial number.
void set_random_serial(X509* cert) {
  unsigned char bytes[16];
  check(RAND_bytes(bytes, sizeof bytes), "drawing a serial number (RAND_bytes)");
  bytes[0] &= 0x7f;  // positive in DER without a leading zero byte
  bytes[0] |= 0x40;  // and never shorter than 16 bytes
  bn_ptr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) fail("making a serial number (BN_bin2bn)");
  if (!BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) fail("setting the serial number (BN_to_ASN1_INTEGER)");
}

void set_validity(X509* cert, std::chrono::seconds from, std::chrono::seconds until) {
  if (from >= until)
    throw std::invalid_argument("loupe::testkit tls: valid_from (" + std::to_string(from.count()) +
                                "s) must be before valid_until (" + std::to_string(until.count()) + "s)");
  std::time_t now = std::time(nullptr);
  if (!X509_time_adj_ex(X509_getm_notBefore(cert), 0, static_cast<long>(from.count()), &now))
    fail("setting notBefore (X509_time_adj_ex)");
  if (!X509_time_adj_ex(X509_getm_notAfter(cert), 0, static_cast<long>(until.count()), &now))
    fail("setting notAfter (X509_time_adj_ex)");
}

name_ptr make_name(const std::string& common_name) {
  name_ptr name(X509_NAME_new());
  if (!name) fail("allocating a name (X509_NAME_new)");
  if (!common_name.empty())
    check(X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.data()),
                                     static_cast<int>(common_name.size()), -1, 0),
          ("setting the common name '" + common_name + "'").c_str());
  return name;
}

/// A new v3 certificate for `key` with subject `subject`, serial and validity set.
x509_ptr new_cert(EVP_PKEY* key, X509_NAME* subject, std::chrono::seconds from, std::chrono::seconds until) {
  x509_ptr cert(X509_new());
  if (!cert) fail("allocating a certificate (X509_new)");
  check(X509_set_version(cert.get(), 2), "setting version 3 (X509_set_version)");
  set_random_serial(cert.get());
  set_validity(cert.get(), from, until);
  check(X509_set_subject_name(cert.get(), subject), "setting the subject (X509_set_subject_name)");
  check(X509_set_pubkey(cert.get(), key), "setting the public key (X509_set_pubkey)");
  return cert;
}

/// Adds an extension written in OpenSSL's config syntax ("critical,CA:TRUE"); `ctx` names subject and issuer.
void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) fail(std::string("making extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, ext.get(), -1), (std::string("adding extension ") + OBJ_nid2sn(nid)).c_str());
}

/// subjectAltName from `hosts`: an IP entry for what inet_pton takes (IPv4, or IPv6 with or without brackets),
/// else a DNS entry. Critical when the subject is empty (RFC 5280 4.2.1.6).
void add_subject_alt_names(X509* cert, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return;
  gens_ptr gens(GENERAL_NAMES_new());
  if (!gens) fail("allocating subjectAltName (GENERAL_NAMES_new)");
  for (const auto& host : hosts) {
    std::string bare = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2)
                                                                                    : host;
    unsigned char ip[16];
    int ip_len = 0;
    if (inet_pton(AF_INET, bare.c_str(), ip) == 1) ip_len = 4;
    else if (inet_pton(AF_INET6, bare.c_str(), ip) == 1) ip_len = 16;
    gen_ptr gen(GENERAL_NAME_new());
    if (!gen) fail("allocating a subjectAltName entry (GENERAL_NAME_new)");
    if (ip_len) {
      octets_ptr octets(ASN1_OCTET_STRING_new());
      if (!octets || !ASN1_OCTET_STRING_set(octets.get(), ip, ip_len)) fail("making the IP entry " + host);
      GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, octets.release());
    } else {
      if (host.empty()) throw std::invalid_argument("loupe::testkit tls: an empty host name in issue_options::hosts");
      ia5_ptr dns(ASN1_IA5STRING_new());
      if (!dns || !ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())))
        fail("making the DNS entry " + host);
      GENERAL_NAME_set0_value(gen.get(), GEN_DNS, dns.release());
    }
    if (!sk_GENERAL_NAME_push(gens.get(), gen.get())) fail("adding the subjectAltName entry " + host);
    gen.release();  // owned by gens now
  }
  int critical = X509_NAME_entry_count(X509_get_subject_name(cert)) == 0 ? 1 : 0;
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, gens.get(), critical, X509V3_ADD_DEFAULT),
        "adding extension subjectAltName");
}

/// A leaf for a fresh key, signed by `issuer_key` as `issuer` (nullptr: self-signed).
tls_identity make_leaf(const issue_options& o, X509* issuer, EVP_PKEY* issuer_key) {
  auto key = new_key();
  std::string cn = o.common_name;
  if (cn.empty() && !o.hosts.empty() && o.hosts.front().size() <= ub_common_name) cn = o.hosts.front();
  auto subject = make_name(cn);
  auto cert = new_cert(key.get(), subject.get(), o.valid_from, o.valid_until);
  if (!issuer) {
    issuer = cert.get();
    issuer_key = key.get();
  }
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)), "setting the issuer (X509_set_issuer_name)");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert.get(), nullptr, nullptr, 0);
  add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), &ctx, NID_ext_key_usage, o.client ? "clientAuth" : "serverAuth");
  add_subject_alt_names(cert.get(), o.hosts);
  add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) fail("signing the certificate (X509_sign)");
  return {cert_to_pem(cert.get()), key_to_pem(key.get())};
}

/// Writes `text` to `path` (created or truncated) with mode `mode`.
void write_file(const std::string& path, const std::string& text, mode_t mode) {
  auto error = [&](const char* what) {
    return std::runtime_error("loupe::testkit tls: " + std::string(what) + " " + path + ": " + std::strerror(errno));
  };
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw error("cannot create");
  if (::fchmod(fd, mode) != 0) {  // an existing file keeps its mode through open()
    auto e = error("cannot chmod");
    ::close(fd);
    throw e;
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = error("cannot write");
      ::close(fd);
      throw e;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw error("cannot close");
}

}  // namespace

std::pair<std::string, std::string> tls_identity::write(const std::string& dir, const std::string& name) const {
  std::filesystem::path base(dir);
  std::string crt = (base / (name + ".crt")).string();
  std::string key = (base / (name + ".key")).string();
  write_file(crt, cert_pem, 0644);
  write_file(key, key_pem, 0600);
  return {crt, key};
}

struct test_ca::impl {
  pkey_ptr key;
  x509_ptr cert;
  std::string pem;
  std::mutex signing;  // issue() from several threads: one signature with the CA's objects at a time
};

test_ca::test_ca(std::string name) : impl_(std::make_unique<impl>()) {
  impl_->key = new_key();
  auto subject = make_name(name);
  impl_->cert = new_cert(impl_->key.get(), subject.get(), std::chrono::seconds(-3600), std::chrono::hours(30 * 24));
  X509* cert = impl_->cert.get();
  check(X509_set_issuer_name(cert, subject.get()), "setting the issuer (X509_set_issuer_name)");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert, &ctx, NID_subject_key_identifier, "hash");
  add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always");

  if (X509_sign(cert, impl_->key.get(), EVP_sha256()) <= 0) fail("signing the CA certificate (X509_sign)");
  impl_->pem = cert_to_pem(cert);
}

test_ca::~test_ca() = default;
test_ca::test_ca(test_ca&&) noexcept = default;
test_ca& test_ca::operator=(test_ca&&) noexcept = default;

const std::string& test_ca::cert_pem() const noexcept { return impl_->pem; }

std::string test_ca::write_cert(const std::string& path) const {
  write_file(path, impl_->pem, 0644);
  return path;
}

tls_identity test_ca::issue(const issue_options& o) const {
  std::lock_guard lock(impl_->signing);
  return make_leaf(o, impl_->cert.get(), impl_->key.get());
}

const test_ca& test_ca::shared() {
  // Never destroyed: tests may issue certificates until the very end of the process.
  static const test_ca* ca = new test_ca();
  return *ca;
}

tls_identity self_signed(const issue_options& o) { return make_leaf(o, nullptr, nullptr); }

namespace {

tls_certificate as_certificate(const tls_identity& id) {
  tls_certificate c;
  c.cert_pem = id.cert_pem;
  c.key_pem = id.key_pem;
  return c;
}

// The contexts server_tls(o) made, with their options: a test server on the
// in-memory network asks for one with its name added.
struct made_contexts {
  std::mutex m;
  std::map<const tls_context*, std::pair<std::weak_ptr<tls_context>, issue_options>> by_context;
};
made_contexts& made() {
  static made_contexts* m = new made_contexts();  // used until the end of the process
  return *m;
}

}  // namespace

std::shared_ptr<tls_context> server_tls(const issue_options& o) {
  auto ctx = tls_context::server(as_certificate(test_ca::shared().issue(o)));
  auto& reg = made();
  std::lock_guard lock(reg.m);
  for (auto it = reg.by_context.begin(); it != reg.by_context.end();)
    it = it->second.first.expired() ? reg.by_context.erase(it) : std::next(it);
  reg.by_context[ctx.get()] = {ctx, o};
  return ctx;
}

std::shared_ptr<tls_context> server_tls(const tls_identity& id) { return tls_context::server(as_certificate(id)); }

client_tls_options trust_test_ca() {
  client_tls_options t;
  t.ca_pem = test_ca::shared().cert_pem();
  return t;
}

std::shared_ptr<tls_context> detail::with_host(const std::shared_ptr<tls_context>& ctx, const std::string& host) {
  issue_options o;
  {
    auto& reg = made();
    std::lock_guard lock(reg.m);
    auto it = reg.by_context.find(ctx.get());
    if (it == reg.by_context.end() || it->second.first.lock() != ctx) return ctx;
    o = it->second.second;
  }
  o.hosts.push_back(host);
  return server_tls(o);
}

}  // namespace loupe::testkit
