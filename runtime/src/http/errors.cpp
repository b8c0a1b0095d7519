// HTTP errors and string pairs.
#include <loupe/runtime/errors.hpp>
#include <loupe/runtime/request.hpp>

#include "http/headers.hpp"

#include <boost/beast/http/status.hpp>

namespace loupe {

namespace http = boost::beast::http;

namespace {
std::string default_what(http::status s, const std::string& message) {
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
}  // namespace

http_error::http_error(http::status status, std::string message)
    : std::runtime_error(default_what(status, message)), status_(status), message_(std::move(message)) {}

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

std::optional<std::string_view> string_pairs::get(std::string_view name) const noexcept {
  for (const auto& [k, v] : items_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::string_view string_pairs::at(std::string_view name) const {
  if (auto v = get(name)) return *v;
  throw std::out_of_range("no value named '" + std::string(name) + "'");
}

std::vector<std::string_view> string_pairs::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : items_)
    if (k == name) out.emplace_back(v);
  return out;
}

}  // namespace loupe
