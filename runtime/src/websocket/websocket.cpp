// WebSocket: Beast's stream behind loupe's small API; routes and the client.
#include <loupe/runtime/application.hpp>
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/timer.hpp>
#include <loupe/runtime/websocket.hpp>

#include <loupe/runtime/detail/socket_deadline.hpp>

#include "client/connect.hpp"
#include "core/access.hpp"
#include "websocket/websocket_internals.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace loupe {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = beast::websocket;
using tcp = asio::ip::tcp;

websocket::impl::impl(beast::tcp_stream s)
    : plain(std::in_place, std::move(s)), idle_timer(plain->get_executor()),
      ping_done(plain->get_executor(), loupe::clock::time_point::max()) {}

websocket::impl::impl(detail::tls_stream& s) : impl(s, nullptr) {}

websocket::impl::impl(detail::tls_stream& s, std::unique_ptr<detail::client_conn> owner)
    : owned(std::move(owner)), secure(std::in_place, s), idle_timer(secure->get_executor()),
      ping_done(secure->get_executor(), loupe::clock::time_point::max()) {}

websocket::impl::~impl() {
  *alive = false;
  // The WebSocket streams before the connection they are over.
  secure.reset();
  plain.reset();
}

tcp::socket& websocket::impl::socket() {
  return with([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s).socket(); });
}

void websocket::impl::configure(bool server, const websocket_options& o) {
  idle = o.idle_timeout;
  handshake = o.handshake_timeout;
  with([&](auto& stream) {
    // Timeouts are ours, on loupe::clock (start_idle_watch, timed_handshake).
    stream.set_option(ws::stream_base::timeout{ws::stream_base::none(), ws::stream_base::none(), false});
    stream.set_option(ws::stream_base::decorator([server](auto& m) {
      m.set(beast::http::field::server, "loupe");
      (void)server;
    }));
    stream.read_message_max(o.max_message_bytes);
    stream.control_callback([this](ws::frame_type kind, beast::string_view) {
      heard();
      if (kind == ws::frame_type::pong) ++pongs;
    });
  });
}

void websocket::impl::start_idle_watch() {
  if (idle <= loupe::clock::duration::zero()) return;
  // Due at half the timeout after the peer was last heard (time to ping),
  // or at the whole of it once pinged.
  const bool pinged = pinged_for == last_heard;
  idle_timer.expires_at(last_heard + (pinged ? idle : idle / 2));
  idle_timer.async_wait([this, a = alive](const boost::system::error_code& ec) {
    if (*a && !ec) idle_tick();
  });
}

void websocket::impl::idle_tick() {
  if (!with([](auto& s) { return s.is_open(); })) return;
  const auto quiet = loupe::clock::now() - last_heard;
  if (quiet >= idle) {
    boost::system::error_code ignored;
    socket().close(ignored);
    return;
  }
  if (quiet >= idle / 2 && pinged_for != last_heard && !ping_out) {
    // Beast allows one ping beside a pending write and read; ping() and
    // close() wait for this one to be written first.
    ping_out = true;
    pinged_for = last_heard;
    with([&](auto& stream) {
      stream.async_ping({}, [this, a = alive](const boost::system::error_code&) {
        if (!*a) return;
        ping_out = false;
        ping_done.cancel();  // wakes ping() or close() waiting for it
      });
    });
  }
  start_idle_watch();
}

awaitable<boost::system::error_code> websocket::impl::timed_handshake(
    std::function<awaitable<boost::system::error_code>()> step) {
  detail::socket_deadline deadline(socket());
  if (handshake > loupe::clock::duration::zero()) deadline.arm_after(handshake);
  auto ec = co_await step();
  co_return deadline.timed(ec);
}

namespace {
// A control frame of the caller's waits for a keep-alive ping being written.
awaitable<void> wait_for_keepalive_ping(websocket::impl& i) {
  while (i.ping_out) co_await i.ping_done.async_wait(asio::as_tuple(asio::use_awaitable));
}
}  // namespace

websocket::websocket(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
websocket::~websocket() = default;

awaitable<std::optional<ws_message>> websocket::receive(std::source_location at) {
  auto& i = *impl_;
  if (i.code != 0) co_return std::nullopt;
  auto [ec, n] = co_await i.with([&](auto& s) { return s.async_read(i.buffer, asio::as_tuple(here(at))); });
  if (!ec) i.heard();
  if (ec) {
    // The peer's close frame counts even if tearing down the TCP connection
    // failed afterwards (the peer may reset it right after closing).
    const ws::close_reason& why = i.with([](auto& s) -> const ws::close_reason& { return s.reason(); });
    if (ec == ws::error::closed || why.code != ws::close_code::none) {
      i.code = why.code;
      i.reason = std::string(why.reason.c_str());
    } else if (ec == ws::error::message_too_big || ec == ws::error::buffer_overflow) {
      i.code = static_cast<std::uint16_t>(ws_close::too_big);  // Beast has sent 1009
    } else {
      i.code = static_cast<std::uint16_t>(ws_close::abnormal);
    }
    co_return std::nullopt;
  }
  ws_message m{beast::buffers_to_string(i.buffer.data()), i.with([](auto& s) { return s.got_binary(); })};
  i.buffer.consume(i.buffer.size());
  co_return m;
}

awaitable<void> websocket::send(std::string_view data, bool binary, std::source_location at) {
  co_await impl_->with([&](auto& s) {
    s.binary(binary);
    return s.async_write(asio::buffer(data), here(at));
  });
}

awaitable<void> websocket::ping(std::string_view payload, std::source_location at) {
  co_await wait_for_keepalive_ping(*impl_);
  co_await impl_->with([&](auto& s) { return s.async_ping(ws::ping_data(payload.data(), payload.size()), here(at)); });
}

awaitable<void> websocket::close(std::uint16_t code, std::string_view reason, std::source_location at) {
  auto& i = *impl_;
  const auto open = [&i] { return i.with([](auto& s) { return s.is_open(); }); };
  if (!open()) co_return;
  ws::close_reason why(code);
  why.reason = ws::reason_string(reason.data(), std::min<std::size_t>(reason.size(), 123));
  co_await wait_for_keepalive_ping(i);
  if (!open()) co_return;
  auto [ec] = co_await i.with([&](auto& s) { return s.async_close(why, asio::as_tuple(here(at))); });
  if (i.code == 0) i.code = code;
  // Read until the peer's close frame arrives (the handshake's second half).
  while (!ec && open()) {
    auto [rec, n] = co_await i.with([&](auto& s) { return s.async_read(i.buffer, asio::as_tuple(here(at))); });
    i.buffer.consume(i.buffer.size());
    if (rec) break;
  }
}

std::uint16_t websocket::close_code() const noexcept { return impl_->code; }
const std::string& websocket::close_reason() const noexcept { return impl_->reason; }
std::size_t websocket::pongs() const noexcept { return impl_->pongs; }

namespace {
awaitable<std::unique_ptr<websocket>> connect_to(loop& l, std::string url,
                                                 std::unique_ptr<const websocket_options> options,
                                                 std::source_location at);
}  // namespace

// Neither is a coroutine: the options are made or moved here, outside the
// caller's co_await expression (see websocket.hpp), and go to the coroutine.
awaitable<std::unique_ptr<websocket>> websocket::connect(loop& l, std::string url, std::source_location at) {
  return connect_to(l, std::move(url), std::make_unique<const websocket_options>(), at);
}
awaitable<std::unique_ptr<websocket>> websocket::connect(loop& l, std::string url, websocket_options opts,
                                                         std::source_location at) {
  return connect_to(l, std::move(url), std::make_unique<const websocket_options>(std::move(opts)), at);
}

namespace {
awaitable<std::unique_ptr<websocket>> connect_to(loop& l, std::string url,
                                                 std::unique_ptr<const websocket_options> options,
                                                 std::source_location at) {
  const websocket_options& opts = *options;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw client_error(client_errc::invalid_url, "invalid WebSocket URL '" + url + "'");
  const auto to = detail::origin_of(*parsed, true);
  // wss: TCP, then TLS (verified as client_session verifies), then the
  // WebSocket handshake, all within handshake_timeout.
  detail::client_tls tls{opts.tls, {}};
  auto conn = co_await detail::open_connection(l, to, loupe::clock::now() + opts.handshake_timeout, tls);
  std::unique_ptr<websocket::impl> i;
  if (conn->tls) {
    auto& t = *conn->tls;
    i = std::make_unique<websocket::impl>(t, std::move(conn));
  } else {
    i = std::make_unique<websocket::impl>(std::move(conn->tcp));
  }
  i->configure(false, opts);
  auto& ref = *i;
  auto hec = co_await i->timed_handshake([&]() -> awaitable<boost::system::error_code> {
    auto [ec] = co_await ref.with([&](auto& s) {
      return s.async_handshake(to.host_header, to.target, asio::as_tuple(here(at)));
    });
    co_return ec;
  });
  if (hec == beast::error::timeout)
    throw client_error(client_errc::timeout, "WebSocket handshake with " + url + " timed out (handshake_timeout)");
  if (hec) throw client_error(client_errc::bad_response, "WebSocket handshake with " + url + " failed: " + hec.message());
  i->heard();
  i->start_idle_watch();
  co_return std::make_unique<websocket>(std::move(i));
}
}  // namespace

route& application::websocket(std::string_view path, websocket_handler h, websocket_options opts, std::string name) {
  auto up = std::make_shared<const websocket_upgrade>(websocket_upgrade{std::move(h), opts});
  return get(
      path,
      [up](request& req) -> awaitable<response> {
        if (!ws::is_upgrade(req.native())) {
          http_error e(boost::beast::http::status::upgrade_required, "this is a WebSocket endpoint");
          e.with_header("Upgrade", "websocket");
          throw e;
        }
        response r(boost::beast::http::status::switching_protocols);
        detail::access::set_upgrade(r, up);
        co_return r;
      },
      std::move(name));
}

}  // namespace loupe
