// The request: target parsing, query, cookies, JSON body.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/request.hpp>

#include "http/text.hpp"
#include "http/url_codec.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <random>

namespace loupe {

namespace http = boost::beast::http;

namespace {

const std::string empty_string;

}  // namespace

namespace detail {

std::string accept_request_id(std::string_view sent) {
  const bool sane = !sent.empty() && sent.size() <= 128 &&
                    std::all_of(sent.begin(), sent.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (sane) return std::string(sent);
  // 128 random bits as hex, from a per-thread generator seeded once.
  thread_local std::mt19937_64 gen{std::random_device{}() ^ (std::uint64_t(std::random_device{}()) << 32)};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = gen();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = hex[bits & 0xf];
  }
  return id;
}

}  // namespace detail

request::request(message_type msg, endpoint_type remote, endpoint_type local)
    : msg_(std::move(msg)), remote_(remote), local_(local), route_(&empty_string), route_name_(&empty_string) {
  request_id_ = detail::accept_request_id(msg_["X-Request-ID"]);
  std::string_view t = msg_.target();
  if (t.empty()) throw http_bad_request("empty request target");
  // absolute-form (proxies): http://host/path?q -> /path?q
  if (t.front() != '/') {
    if (t == "*") {
      path_ = "*";
      path_end_ = t.size();
      return;
    }
    const auto scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos) throw http_bad_request("invalid request target");
    const auto slash = t.find('/', scheme_end + 3);
    // Normalise the target to origin-form so the rest of the code sees one shape.
    std::string origin = slash == std::string_view::npos ? "/" : std::string(t.substr(slash));
    if (slash == std::string_view::npos) {
      const auto q = t.find('?', scheme_end + 3);
      if (q != std::string_view::npos) origin += t.substr(q);
    }
    // The authority in the target replaces Host (RFC 9112 3.2.2).
    const auto authority = t.substr(scheme_end + 3,
                                    (slash == std::string_view::npos ? t.find('?', scheme_end + 3) : slash) - scheme_end -
                                        3);
    if (authority.empty()) throw http_bad_request("invalid request target");
    msg_.set(http::field::host, std::string(authority));
    msg_.target(origin);
    t = msg_.target();
  }
  // A fragment is never sent in a request (RFC 9112 3.2).
  if (t.find('#') != std::string_view::npos) throw http_bad_request("a request target may not contain '#'");
  const auto q = t.find('?');
  path_end_ = q == std::string_view::npos ? t.size() : q;
  if (!detail::url_codec::decode(t.substr(0, path_end_), path_, false))
    throw http_bad_request("invalid percent-encoding in path");
}

const query_params& request::query() const {
  if (!query_) {
    query_.emplace();
    std::string_view qs = query_string();
    std::string key, value;
    while (!qs.empty()) {
      const auto amp = qs.find('&');
      std::string_view part = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
      if (part.empty()) continue;
      const auto eq = part.find('=');
      const std::string_view k = part.substr(0, eq);
      const std::string_view v = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
      if (!detail::url_codec::decode(k, key, true) || !detail::url_codec::decode(v, value, true))
        throw http_bad_request("invalid percent-encoding in query string");
      query_->add(key, value);
    }
  }
  return *query_;
}

std::optional<std::string_view> request::header(std::string_view name) const {
  auto it = msg_.find(name);
  if (it == msg_.end()) return std::nullopt;
  return it->value();
}

const string_pairs& request::cookies() const {
  if (!cookies_) {
    cookies_.emplace();
    for (auto it = msg_.find(http::field::cookie); it != msg_.end() && it->name() == http::field::cookie; ++it) {
      std::string_view rest = it->value();
      while (!rest.empty()) {
        const auto semi = rest.find(';');
        std::string_view part = detail::trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        const auto eq = part.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        std::string_view value = detail::trim(part.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        cookies_->add(std::string(detail::trim(part.substr(0, eq))), std::string(value));
      }
    }
  }
  return *cookies_;
}

std::optional<std::string_view> request::cookie(std::string_view name) const { return cookies().get(name); }

boost::json::value request::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(msg_.body(), ec);
  if (ec) throw http_bad_request("invalid JSON body: " + ec.message());
  return v;
}

application& request::app() const {
  if (!app_) throw std::logic_error("request::app(): the request has not been routed");
  return *app_;
}

std::string request::remote_address() const { return remote_.address().to_string(); }

void request::set_match(application* app, const std::string* route, const std::string* route_name, loupe::match_info m) {
  app_ = app;
  route_ = route ? route : &empty_string;
  route_name_ = route_name ? route_name : &empty_string;
  match_ = std::move(m);
}

}  // namespace loupe
