// Responses.
#include <loupe/runtime/response.hpp>

#include "http/headers.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>
#include <stdexcept>

using namespace std::string_view_literals;

namespace loupe {

namespace http = boost::beast::http;

using detail::check_header;

namespace {
void check_cookie(std::string_view name, std::string_view value) {
  static constexpr std::string_view bad_name = "()<>@,;:\\\"/[]?={} \t\r\n\0"sv;
  if (name.empty() || name.find_first_of(bad_name) != std::string_view::npos)
    throw std::invalid_argument("invalid cookie name '" + std::string(name) + "'");
  for (unsigned char c : value)
    if (c < 0x21 || c == 0x7f || c == ';' || c == ',' || c == '"' || c == '\\')
      throw std::invalid_argument("cookie '" + std::string(name) + "' has a character not allowed in a cookie value");
}
}  // namespace

response::response() : response(http::status::ok) {}

response::response(status_type status) {
  msg_.version(11);
  msg_.result(status);
}

response::response(const http_error& error) : response(error.status()) {
  const unsigned code = static_cast<unsigned>(error.status());
  // Already checked by http_error::with_header, the only way they get there.
  for (const auto& [name, value] : error.headers()) msg_.insert(name, value);
  if (code >= 400 || !error.message().empty()) {
    msg_.set(http::field::content_type, "text/plain; charset=utf-8");
    msg_.body() = error.what();
  }
}

response response::text(std::string body, status_type status, std::string_view content_type) {
  check_header("Content-Type", content_type);
  response r(status);
  r.msg_.set(http::field::content_type, content_type);
  r.msg_.body() = std::move(body);
  return r;
}

response response::json(const boost::json::value& body, status_type status) {
  response r(status);
  r.msg_.set(http::field::content_type, "application/json");
  r.msg_.body() = boost::json::serialize(body);
  return r;
}

response response::bytes(std::string body, std::string_view content_type, status_type status) {
  return text(std::move(body), status, content_type);
}

response response::redirect(std::string_view location, status_type status) {
  check_header("Location", location);
  response r(status);
  r.msg_.set(http::field::location, location);
  return r;
}

response response::file(const std::filesystem::path& path, std::string_view content_type, std::uint64_t size) {
  response r(http::status::ok);
  r.msg_.set(http::field::content_type, content_type);
  r.file_ = path;
  r.file_size_ = size;
  return r;
}

response& response::set_status(status_type s) noexcept {
  msg_.result(s);
  return *this;
}

std::optional<std::string_view> response::header(std::string_view name) const {
  auto it = msg_.find(name);
  if (it == msg_.end()) return std::nullopt;
  return it->value();
}

response& response::set_header(std::string_view name, std::string_view value) {
  check_header(name, value);
  msg_.set(name, value);
  return *this;
}

response& response::add_header(std::string_view name, std::string_view value) {
  check_header(name, value);
  msg_.insert(name, value);
  return *this;
}

response& response::erase_header(std::string_view name) {
  msg_.erase(name);
  return *this;
}

response& response::set_content_type(std::string_view content_type) {
  check_header("Content-Type", content_type);
  msg_.set(http::field::content_type, content_type);
  return *this;
}

response& response::set_cookie(std::string_view name, std::string_view value, const cookie_options& opts) {
  check_cookie(name, value);
  for (std::string_view attr :
       {std::string_view(opts.path), std::string_view(opts.domain), std::string_view(opts.same_site)})
    if (attr.find_first_of(";\r\n"sv) != std::string_view::npos || attr.find('\0') != std::string_view::npos)
      throw std::invalid_argument("cookie '" + std::string(name) + "' has an attribute with ';', CR, LF or NUL");
  std::string c;
  c.reserve(name.size() + value.size() + 64);
  c.append(name).append("=").append(value);
  if (opts.max_age) c.append("; Max-Age=").append(std::to_string(opts.max_age->count()));
  if (!opts.path.empty()) c.append("; Path=").append(opts.path);
  if (!opts.domain.empty()) c.append("; Domain=").append(opts.domain);
  if (opts.secure) c.append("; Secure");
  if (opts.http_only) c.append("; HttpOnly");
  if (!opts.same_site.empty()) c.append("; SameSite=").append(opts.same_site);
  msg_.insert(http::field::set_cookie, c);
  return *this;
}

response& response::del_cookie(std::string_view name, std::string_view path) {
  check_cookie(name, "");
  if (path.find_first_of(";\r\n"sv) != std::string_view::npos)
    throw std::invalid_argument("cookie path may not contain ';', CR or LF");
  std::string c(name);
  c.append("=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0");
  if (!path.empty()) c.append("; Path=").append(path);
  msg_.insert(http::field::set_cookie, c);
  return *this;
}

response& response::set_body(std::string body) {
  msg_.body() = std::move(body);
  file_.reset();
  return *this;
}

}  // namespace loupe
