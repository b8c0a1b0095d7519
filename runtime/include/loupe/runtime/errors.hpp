// loupe/runtime/errors.hpp — HTTP errors, usable as exceptions or return values.
//
//   throw loupe::http_bad_request("ms must be a non-negative integer");  // 400
//   co_return loupe::http_not_found();                                   // 404 as a value
//   throw loupe::http_found("/login");                                   // 302 redirect
//
// The body of an error response is `text/plain`: "<code>: <reason>" or, when a
// message is given, "<code>: <message>" — as aiohttp does.
#pragma once

#include <boost/beast/http/status.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace loupe {

/// An HTTP error or redirect status with an optional message and headers.
/// Thrown from a handler or middleware, it becomes that response.
class http_error : public std::runtime_error {
 public:
  explicit http_error(boost::beast::http::status status, std::string message = {});

  boost::beast::http::status status() const noexcept { return status_; }
  /// The message given at construction; empty when none was given.
  const std::string& message() const noexcept { return message_; }
  /// Extra headers the response carries (e.g. Location, Allow).
  const std::vector<std::pair<std::string, std::string>>& headers() const noexcept { return headers_; }
  http_error& with_header(std::string name, std::string value);

 private:
  boost::beast::http::status status_;
  std::string message_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

#define LOUPE_DEFINE_HTTP_ERROR(NAME, STATUS)                                                                       \
  class NAME : public http_error {                                                                                  \
   public:                                                                                                          \
    explicit NAME(std::string message = {}) : http_error(boost::beast::http::status::STATUS, std::move(message)) {} \
  };

LOUPE_DEFINE_HTTP_ERROR(http_bad_request, bad_request)                        // 400
LOUPE_DEFINE_HTTP_ERROR(http_unauthorized, unauthorized)                      // 401
LOUPE_DEFINE_HTTP_ERROR(http_forbidden, forbidden)                            // 403
LOUPE_DEFINE_HTTP_ERROR(http_not_found, not_found)                            // 404
LOUPE_DEFINE_HTTP_ERROR(http_not_acceptable, not_acceptable)                  // 406
LOUPE_DEFINE_HTTP_ERROR(http_request_timeout, request_timeout)                // 408
LOUPE_DEFINE_HTTP_ERROR(http_conflict, conflict)                              // 409
LOUPE_DEFINE_HTTP_ERROR(http_gone, gone)                                      // 410
LOUPE_DEFINE_HTTP_ERROR(http_payload_too_large, payload_too_large)            // 413
LOUPE_DEFINE_HTTP_ERROR(http_unsupported_media_type, unsupported_media_type)  // 415
LOUPE_DEFINE_HTTP_ERROR(http_unprocessable_entity, unprocessable_entity)      // 422
LOUPE_DEFINE_HTTP_ERROR(http_too_many_requests, too_many_requests)            // 429
LOUPE_DEFINE_HTTP_ERROR(http_internal_server_error, internal_server_error)    // 500
LOUPE_DEFINE_HTTP_ERROR(http_not_implemented, not_implemented)                // 501
LOUPE_DEFINE_HTTP_ERROR(http_service_unavailable, service_unavailable)        // 503
#undef LOUPE_DEFINE_HTTP_ERROR

/// 405, with the `Allow` header listing `allowed` (e.g. "GET, HEAD").
class http_method_not_allowed : public http_error {
 public:
  explicit http_method_not_allowed(std::string allowed, std::string message = {});
};

/// A redirect: the status plus a `Location` header.
class http_redirect : public http_error {
 public:
  http_redirect(boost::beast::http::status status, std::string location);
};

#define LOUPE_DEFINE_HTTP_REDIRECT(NAME, STATUS)                                                                    \
  class NAME : public http_redirect {                                                                               \
   public:                                                                                                          \
    explicit NAME(std::string location) : http_redirect(boost::beast::http::status::STATUS, std::move(location)) {} \
  };

LOUPE_DEFINE_HTTP_REDIRECT(http_moved_permanently, moved_permanently)    // 301
LOUPE_DEFINE_HTTP_REDIRECT(http_found, found)                            // 302
LOUPE_DEFINE_HTTP_REDIRECT(http_see_other, see_other)                    // 303
LOUPE_DEFINE_HTTP_REDIRECT(http_temporary_redirect, temporary_redirect)  // 307
LOUPE_DEFINE_HTTP_REDIRECT(http_permanent_redirect, permanent_redirect)  // 308
#undef LOUPE_DEFINE_HTTP_REDIRECT

}  // namespace loupe
