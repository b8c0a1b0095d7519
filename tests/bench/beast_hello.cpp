// The floor: a bare Boost.Beast HTTP/1.1 hello-world server with C++20
// coroutines on one io_context and one thread — no router, tasks, tracking,
// metrics or logs. compare.sh measures loupe against it.
//
//   beast_hello PORT        (prints "listening on 127.0.0.1:PORT")
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [rec, rn] = co_await http::async_read(stream, buffer, req, nothrow);
    if (rec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "beast");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "Hello, world!";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

int main(int argc, char** argv) {
  const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 8080);
  asio::io_context ctx(1);
  tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), port});
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { ctx.stop(); });
  asio::co_spawn(ctx, listen(acceptor), asio::detached);
  ctx.run();
}
