// HTTP errors: http_error and its subclasses, and the one text of an error page.
#include <loupe/runtime/errors.hpp>

#include "http/error_page.hpp"
#include "http/headers.hpp"

#include <boost/beast/http/status.hpp>

namespace loupe {

namespace http = boost::beast::http;

std::string detail::error_text(http::status s, std::string_view message) {
  std::string w = std::to_string(static_cast<unsigned>(s));
  w += ": ";
  if (message.empty()) {
    const auto reason = http::obsolete_reason(s);
    w.append(reason.data(), reason.size());
  } else {
    w += message;
  }
  return w;
}

http_error::http_error(http::status status, std::string message)
    : std::runtime_error(detail::error_text(status, message)), status_(status), message_(std::move(message)) {}

http_error& http_error::with_header(std::string name, std::string value) {
  // Checked where the error is made, so a bad value fails in the handler (a 500).
  detail::check_header(name, value);
  headers_.emplace_back(std::move(name), std::move(value));
  return *this;
}

http_method_not_allowed::http_method_not_allowed(std::string allowed, std::string message)
    : http_error(http::status::method_not_allowed, std::move(message)) {
  with_header("Allow", std::move(allowed));
}

http_redirect::http_redirect(http::status status, std::string location) : http_error(status) {
  with_header("Location", std::move(location));
}

}  // namespace loupe
