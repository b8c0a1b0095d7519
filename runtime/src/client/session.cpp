// The HTTP client session (aiohttp's ClientSession): a keep-alive pool per
// host, timeouts, redirects, cookies, streamed bodies.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/detail/socket_deadline.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/timer.hpp>

#include "client/connect.hpp"
#include "core/exceptions.hpp"
#include "observe/http_metrics.hpp"
#include "client/cookie_jar.hpp"
#include "client/request_builder.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
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
using clock_type = loupe::clock;  // deadlines; latencies are measured on the steady clock

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// When a request given `timeout` must be over: zero (or less) is no timeout.
clock_type::time_point due_after(std::chrono::milliseconds timeout) {
  return timeout > std::chrono::milliseconds::zero() ? clock_type::now() + timeout : clock_type::time_point::max();
}

struct pooled {
  std::unique_ptr<detail::client_conn> stream;
  clock_type::time_point idle_since;
};


}  // namespace

using detail::cookie_jar;

std::optional<std::string_view> client_response::header(std::string_view name) const {
  auto it = headers_.find(name);
  if (it == headers_.end()) return std::nullopt;
  return it->value();
}

const boost::json::value& client_response::json() const {
  if (json_) return *json_;
  boost::system::error_code ec;
  auto v = boost::json::parse(body_, ec);
  if (ec) throw client_error(client_errc::bad_response, "response body is not JSON: " + ec.message());
  return json_.emplace(std::move(v));
}


struct client_stream::impl {
  std::shared_ptr<client_session::impl> session;
  std::string key;
  std::unique_ptr<detail::client_conn> stream;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::chrono::milliseconds timeout;
  bool finished = false;
};

struct client_session::impl : std::enable_shared_from_this<impl> {
  impl(loop& l, client_options o) : lp(l), opts(std::move(o)), tls{opts.tls, {}} {}
  loop& lp;
  client_options opts;
  detail::client_tls tls;  // https: what is trusted
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
  awaitable<std::pair<std::unique_ptr<detail::client_conn>, bool>> acquire(const detail::url_origin& to,
                                                                           clock_type::time_point deadline) {
    auto& list = idle[to.pool_key];
    while (!list.empty()) {
      pooled p = std::move(list.back());
      list.pop_back();
      if (clock_type::now() - p.idle_since < opts.idle_timeout && p.stream->socket().is_open())
        co_return std::pair{std::move(p.stream), true};
    }
    const auto connect_deadline = std::min(deadline, clock_type::now() + opts.connect_timeout);
    auto stream = co_await detail::open_connection(lp, to, connect_deadline, tls);
    ++opened;
    co_return std::pair{std::move(stream), false};
  }

  void release(const std::string& pool_key, std::unique_ptr<detail::client_conn> s) {
    auto& list = idle[pool_key];
    if (closed || list.size() >= opts.max_idle_per_host) return;  // closes it
    s->tcp.expires_never();
    list.push_back(pooled{std::move(s), clock_type::now()});
  }

  awaitable<client_response> run([[maybe_unused]] std::shared_ptr<impl> self, http::verb method, std::string url_text,
                                 request_options o) {
    if (closed) throw client_error(client_errc::session_closed, "the client session is closed");
    boost::urls::url u = detail::request_url(url_text, o);
    loupe::detail::set_task_what(std::string(http::to_string(method)) + " " + std::string(u.buffer()));
    detail::request_body body = detail::encode_body(o);
    const auto deadline = due_after(o.timeout.value_or(opts.request_timeout));
    client_response out;

    for (std::size_t redirects = 0;; ++redirects) {
      const auto to = detail::origin_of(u, false);
      const std::string& key = to.key;

      const std::string cookie = opts.cookies ? jar.header_for(u) : std::string();
      const auto req = detail::build_request(method, to, body, o, opts.user_agent, cookie);

      http::response<http::string_body> res;
      const auto started = std::chrono::steady_clock::now();
      const std::uint8_t method_index = detail::method_index(req.method_string());
      auto observe = [&](unsigned status, std::string_view error) {
        series.observe(key, method_index, status, error,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      };
      try {
        for (int attempt = 0;; ++attempt) {
          auto [stream, reused] = co_await acquire(to, deadline);
          detail::socket_deadline timeout(stream->socket());
          timeout.arm_at(deadline);
          auto [wec, wn] = co_await stream->with([&](auto& s) { return http::async_write(s, req, nothrow); });
          beast::flat_buffer buf;
          http::response_parser<http::string_body> parser;
          parser.body_limit(opts.max_response_bytes);
          parser.skip(method == http::verb::head);
          boost::system::error_code rec = wec;
          if (!rec)
            std::tie(rec, std::ignore) = co_await stream->with([&](auto& s) {
              return http::async_read(s, buf, parser, nothrow);
            });
          rec = timeout.timed(rec);
          if (rec) {
          // A pooled connection the server closed meanwhile: try once more on a fresh one.
            const bool stale = reused && attempt == 0 && buf.size() == 0 && !parser.got_some() &&
                               (rec == http::error::end_of_stream || rec == asio::error::connection_reset ||
                                rec == asio::ssl::error::stream_truncated || rec == asio::error::broken_pipe ||
                                rec == asio::error::eof);
            if (stale) continue;
            if (rec == beast::error::timeout)
              throw client_error(client_errc::timeout,
                                 std::string(http::to_string(method)) + " " + std::string(u.buffer()) + " timed out");
            if (rec == http::error::body_limit)
              throw client_error(client_errc::response_too_large, "response from " + key + " exceeds " +
                                                                      std::to_string(opts.max_response_bytes) + " bytes");
            throw client_error(client_errc::bad_response, "bad response from " + key + ": " + rec.message());
          }
          res = parser.release();
          if (res.keep_alive() && buf.size() == 0) release(to.pool_key, std::move(stream));
          break;
        }
      } catch (const client_error& e) {
        observe(0, detail::client_errc_name(e.code().value()));
        throw;
      } catch (...) {
        observe(0, is_cancellation(std::current_exception()) ? "cancelled" : "other");
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
          body = {};
          o.body.reset();
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

awaitable<std::optional<std::string>> client_stream::read_chunk(std::source_location at) {
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
  detail::socket_deadline timeout(i.stream->socket());
  timeout.arm_at(due_after(i.timeout));
  // Stamped with the caller's co_await: the wait is theirs.
  auto [ec, n] = co_await i.stream->with([&](auto& s) {
    return http::async_read_some(s, i.buffer, i.parser, asio::as_tuple(here(at)));
  });
  ec = timeout.timed(ec);
  if (ec == http::error::need_buffer) ec = {};
  if (ec == beast::error::timeout) throw client_error(client_errc::timeout, "reading the response body timed out");
  if (ec) throw client_error(client_errc::bad_response, "reading the response body: " + ec.message());
  chunk.resize(chunk.size() - body.size);
  if (chunk.empty() && i.parser.is_done()) co_return co_await read_chunk(at);
  co_return chunk;
}

client_session::client_session(loop& l, client_options opts) : impl_(std::make_shared<impl>(l, std::move(opts))) {}
client_session::~client_session() {
  impl_->closed = true;
  impl_->idle.clear();
}

awaitable<client_response> client_session::request(http::verb method, std::string url, request_options opts,
                                                   std::source_location at) {
  co_return co_await spawn(impl_->lp, "http.client", impl_->run(impl_, method, std::move(url), std::move(opts)),
                           asio::use_awaitable, at);
}
awaitable<client_response> client_session::get(std::string u, request_options o, std::source_location at) {
  return request(http::verb::get, std::move(u), std::move(o), at);
}
awaitable<client_response> client_session::post(std::string u, request_options o, std::source_location at) {
  return request(http::verb::post, std::move(u), std::move(o), at);
}
awaitable<client_response> client_session::put(std::string u, request_options o, std::source_location at) {
  return request(http::verb::put, std::move(u), std::move(o), at);
}
awaitable<client_response> client_session::patch(std::string u, request_options o, std::source_location at) {
  return request(http::verb::patch, std::move(u), std::move(o), at);
}
awaitable<client_response> client_session::del(std::string u, request_options o, std::source_location at) {
  return request(http::verb::delete_, std::move(u), std::move(o), at);
}
awaitable<client_response> client_session::head(std::string u, request_options o, std::source_location at) {
  return request(http::verb::head, std::move(u), std::move(o), at);
}

awaitable<std::unique_ptr<client_stream>> client_session::stream(http::verb method, std::string url, request_options opts,
                                                                 std::source_location at) {
  auto self = impl_;
  auto start = [](std::shared_ptr<impl> s, http::verb m, std::string u,
                  request_options o) -> awaitable<std::unique_ptr<client_stream>> {
    if (s->closed) throw client_error(client_errc::session_closed, "the client session is closed");
    const boost::urls::url url_ = detail::request_url(u, o);
    loupe::detail::set_task_what(std::string(http::to_string(m)) + " " + std::string(url_.buffer()));
    const auto to = detail::origin_of(url_, false);
    const std::string& key = to.key;
    const auto timeout = o.timeout.value_or(s->opts.request_timeout);
    auto [stream, reused] = co_await s->acquire(to, due_after(timeout));
    const std::string cookie = s->opts.cookies ? s->jar.header_for(url_) : std::string();
    const auto req = detail::build_request(m, to, detail::encode_body(o), o, s->opts.user_agent, cookie);
    auto i = std::make_unique<client_stream::impl>();
    i->session = s;
    i->key = to.pool_key;
    i->timeout = timeout;
    i->parser.body_limit(boost::none);
    i->parser.skip(m == http::verb::head);
    detail::socket_deadline deadline(stream->socket());
    deadline.arm_at(due_after(timeout));
    auto [wec, wn] = co_await stream->with([&](auto& s) { return http::async_write(s, req, nothrow); });
    wec = deadline.timed(wec);
    if (wec)
      throw client_error(wec == beast::error::timeout ? client_errc::timeout : client_errc::bad_response,
                         "sending to " + key + ": " + wec.message());
    auto [hec,
          hn] = co_await stream->with([&](auto& s) { return http::async_read_header(s, i->buffer, i->parser, nothrow); });
    hec = deadline.timed(hec);
    if (hec)
      throw client_error(hec == beast::error::timeout ? client_errc::timeout : client_errc::bad_response,
                         "response headers from " + key + ": " + hec.message());
    if (s->opts.cookies)
      for (const auto& f : i->parser.get().base())
        if (f.name() == http::field::set_cookie) s->jar.store(f.value(), url_);
    i->stream = std::move(stream);
    co_return std::make_unique<client_stream>(std::move(i));
  };
  co_return co_await spawn(impl_->lp, "http.client", start(self, method, std::move(url), std::move(opts)),
                           asio::use_awaitable, at);
}

awaitable<void> client_session::close() {
  impl_->closed = true;
  impl_->idle.clear();
  co_return;
}

std::vector<client_cookie> client_session::cookies() const { return impl_->jar.all(); }
void client_session::set_cookie(client_cookie c) { impl_->jar.put(std::move(c)); }
void client_session::clear_cookies() { impl_->jar.clear(); }

std::size_t client_session::connections_opened() const noexcept { return impl_->opened; }
std::size_t client_session::idle_connections() const noexcept { return impl_->idle_count(); }

}  // namespace loupe
