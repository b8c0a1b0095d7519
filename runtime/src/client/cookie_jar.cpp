// The client session's cookie jar: RFC 6265's storage and matching rules.
#include "client/cookie_jar.hpp"

#include "http/text.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace loupe::detail {

namespace {

bool domain_match(const std::string& host, const std::string& domain) {
  return host == domain ||
         (host.size() > domain.size() && host.ends_with(domain) && host[host.size() - domain.size() - 1] == '.');
}
bool path_match(const std::string& path, const std::string& cookie_path) {
  if (path == cookie_path) return true;
  return path.starts_with(cookie_path) && (cookie_path.back() == '/' || path[cookie_path.size()] == '/');
}
std::string default_path(std::string_view request_path) {
  if (request_path.empty() || request_path.front() != '/') return "/";
  const auto last = request_path.rfind('/');
  return last == 0 ? "/" : std::string(request_path.substr(0, last));
}

}  // namespace

void cookie_jar::store(std::string_view set_cookie, const boost::urls::url& from) {
  const std::string host = to_lower(from.host());
  auto parts = split(set_cookie, ';');
  if (parts.empty()) return;
  const auto eq = parts[0].find('=');
  if (eq == std::string_view::npos) return;
  client_cookie c;
  c.name = std::string(trim(parts[0].substr(0, eq)));
  c.value = std::string(trim(parts[0].substr(eq + 1)));
  if (c.name.empty()) return;
  if (c.value.size() >= 2 && c.value.front() == '"' && c.value.back() == '"')
    c.value = c.value.substr(1, c.value.size() - 2);
  c.domain = host;
  c.path = default_path(from.path());
  std::optional<std::int64_t> max_age;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto attr = trim(parts[i]);
    const auto aeq = attr.find('=');
    const std::string key = to_lower(trim(attr.substr(0, aeq)));
    const std::string_view val = aeq == std::string_view::npos ? std::string_view{} : trim(attr.substr(aeq + 1));
    if (key == "domain" && !val.empty()) {
      std::string d = to_lower(val.front() == '.' ? val.substr(1) : val);
      if (!domain_match(host, d)) return;  // a cookie for another site: rejected
      c.domain = std::move(d);
      c.host_only = false;
    } else if (key == "path" && !val.empty() && val.front() == '/') {
      c.path = std::string(val);
    } else if (key == "secure") {
      c.secure = true;
    } else if (key == "max-age" && !val.empty()) {
      std::int64_t n = 0;
      const auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), n);
      if (ec == std::errc{} && p == val.data() + val.size()) max_age = n;
    } else if (key == "expires" && !max_age) {
      std::tm tm{};
      std::istringstream in{std::string(val)};
      in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S");
      if (!in.fail()) c.expires = std::chrono::system_clock::from_time_t(timegm(&tm));
    }
  }
  if (max_age) c.expires = std::chrono::system_clock::now() + std::chrono::seconds(std::max<std::int64_t>(*max_age, -1));
  put(std::move(c));
}

void cookie_jar::put(client_cookie c) {
  std::erase_if(cookies_,
                [&](const client_cookie& o) { return o.name == c.name && o.domain == c.domain && o.path == c.path; });
  if (c.expires && *c.expires <= std::chrono::system_clock::now()) return;  // deleted
  cookies_.push_back(std::move(c));
}

std::string cookie_jar::header_for(const boost::urls::url& to) {
  drop_expired();
  const std::string host = to_lower(to.host());
  const std::string path = to.path().empty() ? "/" : std::string(to.path());
  // Secure cookies go over https, and to loopback hosts (as browsers allow).
  const bool loopback = to.scheme() == "https" || to.scheme() == "wss" || host == "localhost" || host == "127.0.0.1" ||
                        host == "[::1]";
  std::string out;
  for (const auto& c : cookies_) {
    if (c.host_only ? host != c.domain : !domain_match(host, c.domain)) continue;
    if (!path_match(path, c.path) || (c.secure && !loopback)) continue;
    if (!out.empty()) out += "; ";
    out += c.name;
    out += '=';
    out += c.value;
  }
  return out;
}

void cookie_jar::drop_expired() {
  const auto now = std::chrono::system_clock::now();
  std::erase_if(cookies_, [&](const client_cookie& c) { return c.expires && *c.expires <= now; });
}

}  // namespace loupe::detail
