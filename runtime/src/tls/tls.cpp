// TLS: the server's tls_context (certificate, reload, ALPN), the client's
// context and its checks (system CA store, host name, SNI), and naming what
// went wrong in a handshake. OpenSSL through Asio's ssl::context.
#include "tls/tls_internals.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>

namespace loupe {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

std::string read_pem_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tls_config_error(std::string("cannot open the ") + what + " '" + path + "': " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The text of OpenSSL's first queued error (and the queue cleared), or the
// system error's message.
std::string openssl_reason(const boost::system::system_error& e) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0 && e.code().category() == boost::asio::error::get_ssl_category())
    code = static_cast<unsigned long>(e.code().value());
  if (code == 0) return e.code().message();
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

// The certificate chain and key of `cert` loaded into `ctx`; what was wrong
// is said naming the file (or "the PEM text").
void load_identity(ssl::context& ctx, const tls_certificate& cert, const char* role) {
  const bool files = !cert.cert_file.empty();
  const std::string cert_text = files ? read_pem_file(cert.cert_file, "certificate file") : cert.cert_pem;
  const std::string key_name = !cert.key_file.empty() ? cert.key_file : files ? cert.cert_file : std::string();
  const std::string key_text = !cert.key_file.empty()  ? read_pem_file(cert.key_file, "key file")
                               : !cert.key_pem.empty() ? cert.key_pem
                                                       : cert_text;  // the key may follow the chain in one file
  const std::string cert_where = files ? "'" + cert.cert_file + "'" : std::string("the certificate PEM text");
  const std::string key_where = !key_name.empty() ? "'" + key_name + "'" : std::string("the key PEM text");
  try {
    ctx.use_certificate_chain(boost::asio::buffer(cert_text));
  } catch (const boost::system::system_error& e) {
    throw tls_config_error(std::string("cannot load the ") + role + " certificate from " + cert_where + ": " +
                           openssl_reason(e));
  }
  try {
    ctx.use_private_key(boost::asio::buffer(key_text), ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    // Asio took OpenSSL's error into the code.
    if (e.code().category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(e.code().value())) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      throw tls_config_error("the private key in " + key_where + " does not match the certificate in " + cert_where);
    }
    throw tls_config_error(std::string("cannot load the ") + role + " private key from " + key_where + ": " +
                           openssl_reason(e));
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    throw tls_config_error("the private key in " + key_where + " does not match the certificate in " + cert_where);
  }
}

// The server's side of ALPN: http/1.1 when offered; a client offering only
// other protocols (h2 alone) is served without ALPN, as nginx does.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int n = in[i];
    if (i + 1 + n > inlen) break;
    if (n == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string describe_leaf(SSL_CTX* ctx) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (!leaf) return "no certificate";
  std::array<char, 256> subject{};
  X509_NAME_oneline(X509_get_subject_name(leaf), subject.data(), static_cast<int>(subject.size()));
  std::string out = subject.data();
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (ASN1_TIME_print(bio, X509_get0_notAfter(leaf)) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      out += ", valid until " + std::string(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
  }
  return out;
}

bool is_ip_address(const std::string& host) {
  error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

tls_context::tls_context(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
tls_context::~tls_context() = default;

std::shared_ptr<tls_context> tls_context::server(tls_certificate cert) {
  auto i = std::make_unique<impl>();
  i->ctx = detail::make_server_context(cert, &i->description);
  i->source = std::move(cert);
  return std::shared_ptr<tls_context>(new tls_context(std::move(i)));
}

void tls_context::reload() {
  tls_certificate source;
  {
    std::lock_guard lock(impl_->m);
    source = impl_->source;
  }
  reload(std::move(source));
}

void tls_context::reload(tls_certificate cert) {
  std::string description;
  auto ctx = detail::make_server_context(cert, &description);  // throws: the current one stays
  std::lock_guard lock(impl_->m);
  impl_->ctx = std::move(ctx);
  impl_->source = std::move(cert);
  impl_->description = std::move(description);
  impl_->generation.fetch_add(1, std::memory_order_relaxed);
}

std::string tls_context::describe() const {
  std::lock_guard lock(impl_->m);
  return impl_->description;
}

std::uint64_t tls_context::generation() const noexcept { return impl_->generation.load(std::memory_order_relaxed); }

namespace detail {

std::shared_ptr<ssl::context> make_server_context(const tls_certificate& cert, std::string* description) {
  if (cert.empty()) throw tls_config_error("no certificate given");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::single_dh_use);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // Sessions resume across connections of the process (and its loops).
  static const unsigned char sid[] = "loupe";
  SSL_CTX_set_session_id_context(native, sid, sizeof sid - 1);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  // Fewer, smaller buffers per idle connection.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  load_identity(*ctx, cert, "server");
  if (description) *description = describe_leaf(native);
  return ctx;
}

std::shared_ptr<ssl::context> make_client_context(const client_tls_options& o) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (o.verify) {
    ctx->set_verify_mode(ssl::verify_peer);
    try {
      if (!o.ca_file.empty()) {
        const std::string pem = read_pem_file(o.ca_file, "CA file");
        ctx->add_certificate_authority(boost::asio::buffer(pem));
      }
      if (!o.ca_pem.empty()) ctx->add_certificate_authority(boost::asio::buffer(o.ca_pem));
      if (o.ca_file.empty() && o.ca_pem.empty()) ctx->set_default_verify_paths();
    } catch (const boost::system::system_error& e) {
      throw tls_config_error("cannot load the trusted CAs from " +
                             (o.ca_file.empty() ? std::string("the CA PEM text") : "'" + o.ca_file + "'") + ": " +
                             openssl_reason(e));
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  if (!o.client_certificate.empty()) load_identity(*ctx, o.client_certificate, "client");
  return ctx;
}

void prepare_client(tls_stream& s, const std::string& host, bool verify) {
  SSL* native = s.native_handle();
  const bool ip = is_ip_address(host);
  if (!ip) SSL_set_tlsext_host_name(native, host.c_str());  // SNI takes names only (RFC 6066)
  if (verify) {
    if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), host.c_str());
    else SSL_set1_host(native, host.c_str());
  }
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(native, alpn, sizeof alpn - 1);
}

std::pair<client_errc, std::string> client_failure(tls_stream& s, const error_code& ec, std::string_view who) {
  const long v = SSL_get_verify_result(s.native_handle());
  const std::string w(who);
  if (v != X509_V_OK) {
    const std::string why = X509_verify_cert_error_string(v);
    switch (v) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return {client_errc::certificate_expired, "the certificate of " + w + " is not valid now: " + why};
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return {client_errc::certificate_wrong_host, "the certificate of " + w + " is for another host: " + why};
      default: return {client_errc::certificate_untrusted, "the certificate of " + w + " is not trusted: " + why};
    }
  }
  return {client_errc::tls_handshake_failed, "TLS handshake with " + w + " failed: " + ec.message()};
}

std::string_view server_failure_reason(const error_code& ec) {
  if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof ||
      ec == boost::asio::error::connection_reset)
    return "closed";
  if (ec == boost::asio::error::operation_aborted || ec == boost::asio::error::bad_descriptor ||
      ec == boost::beast::error::timeout)
    return "timeout";
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_HTTP_REQUEST:
      case SSL_R_HTTPS_PROXY_REQUEST: return "http_on_https_port";
      case SSL_R_WRONG_VERSION_NUMBER: return "not_tls";
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: return "protocol_version";
      case SSL_R_NO_SHARED_CIPHER:
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE: return "no_shared_cipher";
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_TLSV1_ALERT_DECRYPT_ERROR: return "certificate_rejected";
      default: break;
    }
  }
  return "other";
}

std::string_view tls_version(tls_stream& s) { return SSL_get_version(s.native_handle()); }

std::string alpn_protocol(tls_stream& s) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s.native_handle(), &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
}

}  // namespace detail

}  // namespace loupe
