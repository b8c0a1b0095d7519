// The HTTP client session: a keep-alive pool per host, timeouts, redirects.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>

#include "client/connect.hpp"
#include "core/exceptions.hpp"
#include "observe/http_metrics.hpp"
#include "core/loop_internals.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <charconv>
#include <ctime>
#include <iomanip>
#include <map>
#include <sstream>

namespace loupe {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

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
    }
    return "unknown client error";
  }
};

void append_form_encoded(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += static_cast<char>(c);
    else if (c == ' ') out += '+';
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}

struct pooled {
  std::unique_ptr<beast::tcp_stream> stream;
  clock_type::time_point idle_since;
};


// The session's cookie jar: RFC 6265's storage and matching rules, for a
// client that speaks plain HTTP (Secure cookies go to loopback hosts only, as
// browsers treat localhost as a secure context).
class cookie_jar {
 public:
  void store(std::string_view set_cookie, const boost::urls::url& from) {
    const std::string host = lower(from.host());
    auto parts = split(set_cookie, ';');
    if (parts.empty()) return;
    const auto eq = parts[0].find('=');
    if (eq == std::string_view::npos) return;
    client_cookie c;
    c.name = std::string(trim(parts[0].substr(0, eq)));
    c.value = std::string(trim(parts[0].substr(eq + 1)));
    if (c.name.empty()) return;
    if (c.value.size() >= 2 && c.value.front() == '"' && c.value.back() == '"') c.value = c.value.substr(1, c.value.size() - 2);
    c.domain = host;
    c.path = default_path(from.path());
    std::optional<std::int64_t> max_age;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const auto attr = trim(parts[i]);
      const auto aeq = attr.find('=');
      const std::string key = lower(trim(attr.substr(0, aeq)));
      const std::string_view val = aeq == std::string_view::npos ? std::string_view{} : trim(attr.substr(aeq + 1));
      if (key == "domain" && !val.empty()) {
        std::string d = lower(val.front() == '.' ? val.substr(1) : val);
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

  void put(client_cookie c) {
    std::erase_if(cookies_, [&](const client_cookie& o) {
      return o.name == c.name && o.domain == c.domain && o.path == c.path;
    });
    if (c.expires && *c.expires <= std::chrono::system_clock::now()) return;  // deleted
    cookies_.push_back(std::move(c));
  }

  /// The Cookie header for a request to `to`, or "" for none.
  std::string header_for(const boost::urls::url& to) {
    drop_expired();
    const std::string host = lower(to.host());
    const std::string path = to.path().empty() ? "/" : std::string(to.path());
    const bool loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
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

  std::vector<client_cookie> all() {
    drop_expired();
    return cookies_;
  }
  void clear() { cookies_.clear(); }

 private:
  void drop_expired() {
    const auto now = std::chrono::system_clock::now();
    std::erase_if(cookies_, [&](const client_cookie& c) { return c.expires && *c.expires <= now; });
  }
  static std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  }
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  }
  static std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (std::size_t start = 0;;) {
      const auto at = s.find(sep, start);
      out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
      if (at == std::string_view::npos) return out;
      start = at + 1;
    }
  }
  static bool domain_match(const std::string& host, const std::string& domain) {
    return host == domain ||
           (host.size() > domain.size() && host.ends_with(domain) && host[host.size() - domain.size() - 1] == '.');
  }
  static bool path_match(const std::string& path, const std::string& cookie_path) {
    if (path == cookie_path) return true;
    return path.starts_with(cookie_path) && (cookie_path.back() == '/' || path[cookie_path.size()] == '/');
  }
  static std::string default_path(std::string_view request_path) {
    if (request_path.empty() || request_path.front() != '/') return "/";
    const auto last = request_path.rfind('/');
    return last == 0 ? "/" : std::string(request_path.substr(0, last));
  }
  std::vector<client_cookie> cookies_;
};

}  // namespace

namespace detail {

url_origin origin_of(const boost::urls::url_view_base& u, std::string_view scheme) {
  if (u.scheme() != scheme || u.host().empty())
    throw client_error(client_errc::invalid_url, "invalid URL '" + std::string(u.buffer()) + "' (" +
                                                     std::string(scheme) + ":// with a host only)");
  url_origin o;
  o.host = u.host();
  o.port = u.has_port() ? u.port_number() : 80;
  o.key = o.host + ":" + std::to_string(o.port);
  o.host_header = u.has_port() ? o.key : o.host;
  o.target = std::string(u.encoded_target());
  if (o.target.empty()) o.target = "/";
  return o;
}

awaitable<beast::tcp_stream> connect_tcp(loop& l, const url_origin& to, clock_type::time_point deadline) {
  asio::any_io_executor ex = l.get_executor();
  beast::tcp_stream stream(ex);
  stream.expires_at(deadline);
  boost::system::error_code cec;
  const auto& hosts = l.internals().hosts;
  std::string name = to.host;
  for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (auto mapped = hosts.find(name); mapped != hosts.end()) {
    std::tie(cec) = co_await stream.async_connect(mapped->second, nothrow);
  } else {
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(to.host, std::to_string(to.port), nothrow);
    if (rec) throw client_error(client_errc::connection_failed, "cannot resolve " + to.host + ": " + rec.message());
    std::tie(cec, std::ignore) = co_await stream.async_connect(results, nothrow);
  }
  if (cec == beast::error::timeout) throw client_error(client_errc::timeout, "connecting to " + to.key + " timed out");
  if (cec) throw client_error(client_errc::connection_failed, "cannot connect to " + to.key + ": " + cec.message());
  stream.expires_never();
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  co_return stream;
}

}  // namespace detail

const std::error_category& client_category() noexcept {
  static const client_category_impl c;
  return c;
}
std::error_code make_error_code(client_errc e) noexcept { return {static_cast<int>(e), client_category()}; }

std::optional<std::string_view> client_response::header(std::string_view name) const {
  auto it = headers_.find(name);
  if (it == headers_.end()) return std::nullopt;
  return it->value();
}

boost::json::value client_response::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body_, ec);
  if (ec) throw client_error(client_errc::bad_response, "response body is not JSON: " + ec.message());
  return v;
}

namespace {
std::string_view errc_name(int e) {
  switch (static_cast<client_errc>(e)) {
    case client_errc::invalid_url: return "invalid_url";
    case client_errc::connection_failed: return "connection_failed";
    case client_errc::timeout: return "timeout";
    case client_errc::bad_response: return "bad_response";
    case client_errc::too_many_redirects: return "too_many_redirects";
    case client_errc::response_too_large: return "response_too_large";
    case client_errc::session_closed: return "session_closed";
  }
  return "other";
}
}  // namespace

struct client_stream::impl {
  std::shared_ptr<client_session::impl> session;
  std::string key;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::chrono::milliseconds timeout;
  bool finished = false;
};

struct client_session::impl : std::enable_shared_from_this<impl> {
  impl(loop& l, client_options o) : lp(l), opts(std::move(o)) {}
  loop& lp;
  client_options opts;
  bool closed = false;
  std::size_t opened = 0;
  std::map<std::string, std::vector<pooled>> idle;
  cookie_jar jar;
  detail::http_client_series series;  // http_client_* metrics, resolved once per key

  std::size_t idle_count() const {
    std::size_t n = 0;
    for (const auto& [k, v] : idle) n += v.size();
    return n;
  }

  // A pooled connection if one is fresh enough, else a new one.
  awaitable<std::pair<std::unique_ptr<beast::tcp_stream>, bool>> acquire(const detail::url_origin& to,
                                                                        clock_type::time_point deadline) {
    auto& list = idle[to.key];
    while (!list.empty()) {
      pooled p = std::move(list.back());
      list.pop_back();
      if (clock_type::now() - p.idle_since < opts.idle_timeout && p.stream->socket().is_open())
        co_return std::pair{std::move(p.stream), true};
    }
    const auto connect_deadline = std::min(deadline, clock_type::now() + opts.connect_timeout);
    auto stream = std::make_unique<beast::tcp_stream>(co_await detail::connect_tcp(lp, to, connect_deadline));
    ++opened;
    co_return std::pair{std::move(stream), false};
  }

  void release(const std::string& key, std::unique_ptr<beast::tcp_stream> s) {
    auto& list = idle[key];
    if (closed || list.size() >= opts.max_idle_per_host) return;  // closes it
    s->expires_never();
    list.push_back(pooled{std::move(s), clock_type::now()});
  }

  awaitable<client_response> run([[maybe_unused]] std::shared_ptr<impl> self, http::verb method, std::string url_text,
                                 request_options o) {
    if (closed) throw client_error(client_errc::session_closed, "the client session is closed");
    auto parsed = boost::urls::parse_uri(url_text);
    if (!parsed) throw client_error(client_errc::invalid_url, "invalid URL '" + url_text + "'");
    boost::urls::url u = *parsed;
    for (const auto& [k, v] : o.query) u.params().append({k, v});

    std::string body;
    std::string content_type;
    if (o.json) {
      body = boost::json::serialize(*o.json);
      content_type = "application/json";
    } else if (!o.form.empty()) {
      for (const auto& [k, v] : o.form) {
        if (!body.empty()) body += '&';
        append_form_encoded(body, k);
        body += '=';
        append_form_encoded(body, v);
      }
      content_type = "application/x-www-form-urlencoded";
    } else if (o.body) {
      body = *o.body;
    }
    const auto deadline = clock_type::now() + o.timeout.value_or(opts.request_timeout);
    client_response out;

    for (std::size_t redirects = 0;; ++redirects) {
      const auto to = detail::origin_of(u, "http");
      const std::string& key = to.key;

      http::request<http::string_body> req{method, to.target, 11};
      req.set(http::field::host, to.host_header);
      req.set(http::field::user_agent, opts.user_agent);
      if (!content_type.empty()) req.set(http::field::content_type, content_type);
      if (opts.cookies)
        if (auto cookie = jar.header_for(u); !cookie.empty()) req.set(http::field::cookie, cookie);
      for (const auto& [k, v] : o.headers) req.set(k, v);
      req.body() = body;
      if (!body.empty() || method == http::verb::post || method == http::verb::put || method == http::verb::patch)
        req.prepare_payload();
      req.keep_alive(true);

      http::response<http::string_body> res;
      const auto started = clock_type::now();
      const std::uint8_t method_index = detail::method_index(req.method_string());
      auto observe = [&](unsigned status, std::string_view error) {
        series.observe(key, method_index, status, error,
                       std::chrono::duration<double>(clock_type::now() - started).count());
      };
      try {
      for (int attempt = 0;; ++attempt) {
        auto [stream, reused] = co_await acquire(to, deadline);
        stream->expires_at(deadline);
        auto [wec, wn] = co_await http::async_write(*stream, req, nothrow);
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(opts.max_response_bytes);
        parser.skip(method == http::verb::head);
        boost::system::error_code rec = wec;
        if (!rec) std::tie(rec, std::ignore) = co_await http::async_read(*stream, buf, parser, nothrow);
        if (rec) {
          // A pooled connection the server closed meanwhile: try once more on a fresh one.
          const bool stale = reused && attempt == 0 && buf.size() == 0 && !parser.got_some() &&
                             (rec == http::error::end_of_stream || rec == asio::error::connection_reset ||
                              rec == asio::error::broken_pipe || rec == asio::error::eof);
          if (stale) continue;
          if (rec == beast::error::timeout)
            throw client_error(client_errc::timeout, std::string(http::to_string(method)) + " " +
                                                         std::string(u.buffer()) + " timed out");
          if (rec == http::error::body_limit)
            throw client_error(client_errc::response_too_large, "response from " + key + " exceeds " +
                                                                    std::to_string(opts.max_response_bytes) + " bytes");
          throw client_error(client_errc::bad_response, "bad response from " + key + ": " + rec.message());
        }
        res = parser.release();
        if (res.keep_alive() && buf.size() == 0) release(key, std::move(stream));
        break;
      }
      } catch (const client_error& e) {
        observe(0, errc_name(e.code().value()));
        throw;
      } catch (...) {
        observe(0, detail::is_cancellation(std::current_exception()) ? "cancelled" : "other");
        throw;
      }
      observe(res.result_int(), {});
      if (opts.cookies)
        for (const auto& f : res.base())
          if (f.name() == http::field::set_cookie) jar.store(f.value(), u);

      const unsigned code = res.result_int();
      const bool redirect = code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
      if (o.follow_redirects && redirect && res.find(http::field::location) != res.end()) {
        if (redirects >= opts.max_redirects)
          throw client_error(client_errc::too_many_redirects,
                             "more than " + std::to_string(opts.max_redirects) + " redirects from '" + url_text + "'");
        auto ref = boost::urls::parse_uri_reference(res[http::field::location]);
        if (!ref) throw client_error(client_errc::bad_response, "bad Location header from " + key);
        boost::urls::url next = u;
        if (!next.resolve(*ref)) throw client_error(client_errc::bad_response, "cannot follow Location from " + key);
        u = std::move(next);
        // 303, and 301/302 after a POST, continue as GET without a body (as browsers and aiohttp do).
        if (code == 303 || ((code == 301 || code == 302) && method == http::verb::post)) {
          method = http::verb::get;
          body.clear();
          content_type.clear();
        }
        continue;
      }
      out.status_ = res.result();
      out.headers_ = std::move(res.base());
      out.body_ = std::move(res.body());
      out.url_ = std::string(u.buffer());
      out.redirects_ = redirects;
      co_return out;
    }
  }
};

client_stream::client_stream(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
client_stream::~client_stream() = default;
http::status client_stream::status() const noexcept { return impl_->parser.get().result(); }
std::optional<std::string_view> client_stream::header(std::string_view name) const {
  const auto& h = impl_->parser.get();
  auto it = h.find(name);
  if (it == h.end()) return std::nullopt;
  return it->value();
}

awaitable<std::optional<std::string>> client_stream::read_chunk() {
  auto& i = *impl_;
  if (i.finished || i.parser.is_done()) {
    if (!i.finished && i.stream && i.parser.get().keep_alive()) i.session->release(i.key, std::move(i.stream));
    i.finished = true;
    co_return std::nullopt;
  }
  std::string chunk(64 * 1024, '\0');
  auto& body = i.parser.get().body();
  body.data = chunk.data();
  body.size = chunk.size();
  i.stream->expires_after(i.timeout);
  auto [ec, n] = co_await http::async_read_some(*i.stream, i.buffer, i.parser, nothrow);
  if (ec == http::error::need_buffer) ec = {};
  if (ec == beast::error::timeout) throw client_error(client_errc::timeout, "reading the response body timed out");
  if (ec) throw client_error(client_errc::bad_response, "reading the response body: " + ec.message());
  chunk.resize(chunk.size() - body.size);
  if (chunk.empty() && i.parser.is_done()) co_return co_await read_chunk();
  co_return chunk;
}

client_session::client_session(loop& l, client_options opts) : impl_(std::make_shared<impl>(l, std::move(opts))) {}
client_session::~client_session() {
  impl_->closed = true;
  impl_->idle.clear();
}

awaitable<client_response> client_session::request(http::verb method, std::string url, request_options opts) {
  co_return co_await spawn(impl_->lp, "http.client", impl_->run(impl_, method, std::move(url), std::move(opts)),
                           asio::use_awaitable);
}
awaitable<client_response> client_session::get(std::string u, request_options o) { return request(http::verb::get, std::move(u), std::move(o)); }
awaitable<client_response> client_session::post(std::string u, request_options o) { return request(http::verb::post, std::move(u), std::move(o)); }
awaitable<client_response> client_session::put(std::string u, request_options o) { return request(http::verb::put, std::move(u), std::move(o)); }
awaitable<client_response> client_session::patch(std::string u, request_options o) { return request(http::verb::patch, std::move(u), std::move(o)); }
awaitable<client_response> client_session::del(std::string u, request_options o) { return request(http::verb::delete_, std::move(u), std::move(o)); }
awaitable<client_response> client_session::head(std::string u, request_options o) { return request(http::verb::head, std::move(u), std::move(o)); }

awaitable<std::unique_ptr<client_stream>> client_session::stream(http::verb method, std::string url,
                                                                 request_options opts) {
  auto self = impl_;
  auto start = [](std::shared_ptr<impl> s, http::verb m, std::string u, request_options o)
      -> awaitable<std::unique_ptr<client_stream>> {
    if (s->closed) throw client_error(client_errc::session_closed, "the client session is closed");
    auto parsed = boost::urls::parse_uri(u);
    if (!parsed) throw client_error(client_errc::invalid_url, "invalid URL '" + u + "'");
    boost::urls::url url_ = *parsed;
    for (const auto& [k, v] : o.query) url_.params().append({k, v});
    const auto to = detail::origin_of(url_, "http");
    const std::string& key = to.key;
    const auto timeout = o.timeout.value_or(s->opts.request_timeout);
    auto [stream, reused] = co_await s->acquire(to, clock_type::now() + timeout);
    http::request<http::string_body> req{m, to.target, 11};
    req.set(http::field::host, to.host_header);
    req.set(http::field::user_agent, s->opts.user_agent);
    if (s->opts.cookies)
      if (auto cookie = s->jar.header_for(url_); !cookie.empty()) req.set(http::field::cookie, cookie);
    for (const auto& [k, v] : o.headers) req.set(k, v);
    if (o.body) {
      req.body() = *o.body;
      req.prepare_payload();
    }
    auto i = std::make_unique<client_stream::impl>();
    i->session = s;
    i->key = key;
    i->timeout = timeout;
    i->parser.body_limit(boost::none);
    i->parser.skip(m == http::verb::head);
    stream->expires_after(timeout);
    auto [wec, wn] = co_await http::async_write(*stream, req, nothrow);
    if (wec) throw client_error(wec == beast::error::timeout ? client_errc::timeout : client_errc::bad_response,
                                "sending to " + key + ": " + wec.message());
    auto [hec, hn] = co_await http::async_read_header(*stream, i->buffer, i->parser, nothrow);
    if (hec) throw client_error(hec == beast::error::timeout ? client_errc::timeout : client_errc::bad_response,
                                "response headers from " + key + ": " + hec.message());
    if (s->opts.cookies)
      for (const auto& f : i->parser.get().base())
        if (f.name() == http::field::set_cookie) s->jar.store(f.value(), url_);
    i->stream = std::move(stream);
    co_return std::make_unique<client_stream>(std::move(i));
  };
  co_return co_await spawn(impl_->lp, "http.client", start(self, method, std::move(url), std::move(opts)),
                           asio::use_awaitable);
}

awaitable<void> client_session::close() {
  impl_->closed = true;
  impl_->idle.clear();
  co_return;
}

std::vector<client_cookie> client_session::cookies() const { return impl_->jar.all(); }
void client_session::set_cookie(client_cookie c) { impl_->jar.put(std::move(c)); }
void client_session::clear_cookies() { impl_->jar.clear(); }

void map_host(loop& l, std::string host, tcp::endpoint to) {
  for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  l.internals().hosts.insert_or_assign(std::move(host), to);
}
void unmap_host(loop& l, std::string_view host) {
  std::string name(host);
  for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto& hosts = l.internals().hosts;
  if (auto it = hosts.find(name); it != hosts.end()) hosts.erase(it);
}

std::size_t client_session::connections_opened() const noexcept { return impl_->opened; }
std::size_t client_session::idle_connections() const noexcept { return impl_->idle_count(); }

}  // namespace loupe
