// The client's error codes: client_errc and its category ("loupe.client").
#include <loupe/runtime/client.hpp>

#include "client/connect.hpp"

#include <string>

namespace loupe {

namespace {

class client_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "loupe.client"; }
  std::string message(int ev) const override {
    switch (static_cast<client_errc>(ev)) {
      case client_errc::invalid_url: return "invalid URL";
      case client_errc::connection_failed: return "connection failed";
      case client_errc::timeout: return "timed out";
      case client_errc::bad_response: return "bad response";
      case client_errc::too_many_redirects: return "too many redirects";
      case client_errc::response_too_large: return "response too large";
      case client_errc::session_closed: return "session closed";
      case client_errc::certificate_untrusted: return "certificate not trusted";
      case client_errc::certificate_expired: return "certificate expired or not yet valid";
      case client_errc::certificate_wrong_host: return "certificate for another host";
      case client_errc::tls_handshake_failed: return "TLS handshake failed";
    }
    return "unknown client error";
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const client_category_impl c;
  return c;
}
std::error_code make_error_code(client_errc e) noexcept { return {static_cast<int>(e), client_category()}; }

namespace detail {

std::string_view client_errc_name(int e) {
  switch (static_cast<client_errc>(e)) {
    case client_errc::invalid_url: return "invalid_url";
    case client_errc::connection_failed: return "connection_failed";
    case client_errc::timeout: return "timeout";
    case client_errc::bad_response: return "bad_response";
    case client_errc::too_many_redirects: return "too_many_redirects";
    case client_errc::response_too_large: return "response_too_large";
    case client_errc::session_closed: return "session_closed";
    case client_errc::certificate_untrusted: return "certificate_untrusted";
    case client_errc::certificate_expired: return "certificate_expired";
    case client_errc::certificate_wrong_host: return "certificate_wrong_host";
    case client_errc::tls_handshake_failed: return "tls_handshake_failed";
  }
  return "other";
}

}  // namespace detail

}  // namespace loupe
