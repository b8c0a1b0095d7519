// testkit::raw_client.
#include <loupe/testkit/raw_client.hpp>

#include <loupe/runtime/detail/socket_deadline.hpp>
#include <loupe/runtime/memory_network.hpp>
#include <loupe/runtime/timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace loupe::testkit {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// The client's timeout runs on loupe::clock (a test's virtual time moves it):
// an operation it cuts off fails with beast::error::timeout (socket_deadline::timed).
void check(boost::system::error_code ec) {
  if (ec) throw boost::system::system_error(ec);
}
}  // namespace

struct raw_client::impl {
  impl(asio::any_io_executor ex, std::chrono::milliseconds t) : stream(ex), timeout(t) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::chrono::milliseconds timeout;
  std::string host = "127.0.0.1";
};

raw_client::raw_client(asio::any_io_executor ex, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(std::move(ex), timeout)) {}
raw_client::~raw_client() = default;
raw_client::raw_client(raw_client&&) noexcept = default;
raw_client& raw_client::operator=(raw_client&&) noexcept = default;

awaitable<void> raw_client::connect(const asio::ip::tcp::endpoint& ep) {
  loupe::detail::socket_deadline d(impl_->stream.socket());
  d.arm_after(impl_->timeout);
  auto [ec] = co_await impl_->stream.async_connect(ep, nothrow);
  check(d.timed(ec));
  // Each send() reaches the peer at once (no Nagle delay between the bytes of a trickle).
  boost::system::error_code ignored;
  impl_->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  impl_->host = ep.address().to_string() + ":" + std::to_string(ep.port());
}

awaitable<void> raw_client::connect(const address& to) {
  if (!to.in_memory()) co_return co_await connect(to.tcp);
  impl_->stream.socket() = loupe::memory_connect(impl_->stream.get_executor(), to.memory);
  impl_->host = to.memory;
}

awaitable<void> raw_client::send(std::string_view bytes) {
  loupe::detail::socket_deadline d(impl_->stream.socket());
  d.arm_after(impl_->timeout);
  auto [ec, n] = co_await asio::async_write(impl_->stream, asio::buffer(bytes), nothrow);
  check(d.timed(ec));
}

awaitable<http_response> raw_client::read_response(bool head) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(head);
  loupe::detail::socket_deadline d(impl_->stream.socket());
  d.arm_after(impl_->timeout);
  auto [ec, n] = co_await http::async_read(impl_->stream, impl_->buffer, parser, nothrow);
  check(d.timed(ec));
  co_return parser.release();
}

awaitable<http_response> raw_client::request(http::verb method, std::string_view target, std::string body,
                                             const header_list& headers) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, impl_->host);
  for (const auto& [k, v] : headers) req.insert(k, v);
  req.body() = std::move(body);
  if (!req.body().empty() || method == http::verb::post || method == http::verb::put || method == http::verb::patch)
    req.prepare_payload();
  {
    loupe::detail::socket_deadline d(impl_->stream.socket());
    d.arm_after(impl_->timeout);
    auto [ec, n] = co_await http::async_write(impl_->stream, req, nothrow);
    check(d.timed(ec));
  }
  co_return co_await read_response(method == http::verb::head);
}

awaitable<std::string> raw_client::read_some() {
  if (impl_->buffer.size() > 0) {
    std::string out(static_cast<const char*>(impl_->buffer.data().data()), impl_->buffer.size());
    impl_->buffer.consume(impl_->buffer.size());
    co_return out;
  }
  std::string out(64 * 1024, '\0');
  loupe::detail::socket_deadline d(impl_->stream.socket());
  d.arm_after(impl_->timeout);
  auto [ec, n] = co_await impl_->stream.async_read_some(asio::buffer(out), nothrow);
  check(d.timed(ec));
  out.resize(n);
  co_return out;
}

awaitable<bool> raw_client::closed_by_peer() {
  char byte;
  // Bytes already buffered mean the peer sent more than expected: not closed.
  if (impl_->buffer.size() > 0) co_return false;
  loupe::detail::socket_deadline d(impl_->stream.socket());
  d.arm_after(impl_->timeout);
  auto [ec, n] = co_await impl_->stream.async_read_some(asio::buffer(&byte, 1), nothrow);
  if (!ec) co_return false;
  co_return !d.expired();
}

void raw_client::shutdown_send() {
  boost::system::error_code ec;
  impl_->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

void raw_client::set_receive_buffer(int bytes) {
  auto& sock = impl_->stream.socket();
  boost::system::error_code ec;
  if (!sock.is_open()) sock.open(asio::ip::tcp::v4(), ec);
  sock.set_option(asio::socket_base::receive_buffer_size(bytes), ec);
}

awaitable<raw_client::slow_read> raw_client::read_slowly(std::size_t chunk, std::chrono::milliseconds interval,
                                                         std::size_t total) {
  slow_read out;
  std::string scratch(chunk, '\0');
  loupe::timer pause(impl_->stream.get_executor());
  // What the response parser had already buffered counts as read.
  out.bytes = impl_->buffer.size();
  impl_->buffer.consume(impl_->buffer.size());
  while (out.bytes < total) {
    loupe::detail::socket_deadline d(impl_->stream.socket());
    d.arm_after(impl_->timeout);
    auto [ec, n] = co_await impl_->stream.async_read_some(asio::buffer(scratch), nothrow);
    out.bytes += n;
    if (ec) {
      out.closed_by_peer = !d.expired();
      break;
    }
    pause.expires_after(interval);
    co_await pause.async_wait(asio::use_awaitable);
  }
  co_return out;
}

void raw_client::close() {
  boost::system::error_code ec;
  impl_->stream.socket().close(ec);
}

}  // namespace loupe::testkit
