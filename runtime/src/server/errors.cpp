// The server's error codes: server_errc, its category ("loupe.server"), the
// status each refusal is answered with and its name in logs.
#include <loupe/runtime/server.hpp>

#include <string>

namespace loupe {

namespace {

class server_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "loupe.server"; }
  std::string message(int ev) const override {
    switch (static_cast<server_errc>(ev)) {
      case server_errc::malformed_request: return "malformed request";
      case server_errc::invalid_host: return "missing, duplicate or invalid Host";
      case server_errc::bad_transfer_encoding: return "Transfer-Encoding must end with chunked";
      case server_errc::invalid_target: return "invalid request target";
      case server_errc::headers_too_large: return "request headers too large";
      case server_errc::body_too_large: return "request body too large";
      case server_errc::unsupported_transfer_coding: return "unsupported transfer coding";
      case server_errc::no_room_for_body: return "no room for the request body";
      case server_errc::too_many_connections: return "too many connections";
    }
    return "unknown server error";
  }
};

}  // namespace

const std::error_category& server_category() noexcept {
  static const server_category_impl c;
  return c;
}

std::error_code make_error_code(server_errc e) noexcept { return {static_cast<int>(e), server_category()}; }

unsigned status_code(server_errc e) noexcept {
  switch (e) {
    case server_errc::malformed_request:
    case server_errc::invalid_host:
    case server_errc::bad_transfer_encoding:
    case server_errc::invalid_target: return 400;
    case server_errc::headers_too_large: return 431;
    case server_errc::body_too_large: return 413;
    case server_errc::unsupported_transfer_coding: return 501;
    case server_errc::no_room_for_body:
    case server_errc::too_many_connections: return 503;
  }
  return 400;
}

std::string_view to_string(server_errc e) noexcept {
  switch (e) {
    case server_errc::malformed_request: return "malformed_request";
    case server_errc::invalid_host: return "invalid_host";
    case server_errc::bad_transfer_encoding: return "bad_transfer_encoding";
    case server_errc::invalid_target: return "invalid_target";
    case server_errc::headers_too_large: return "headers_too_large";
    case server_errc::body_too_large: return "body_too_large";
    case server_errc::unsupported_transfer_coding: return "unsupported_transfer_coding";
    case server_errc::no_room_for_body: return "no_room_for_body";
    case server_errc::too_many_connections: return "too_many_connections";
  }
  return "other";
}

}  // namespace loupe
