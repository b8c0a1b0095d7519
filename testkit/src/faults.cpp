// testkit: misbehaving peers.
#include <loupe/testkit/faults.hpp>

#include <loupe/runtime/loop.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <vector>

namespace loupe::testkit {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct fault_server::impl : std::enable_shared_from_this<impl> {
  impl(loop& l, fault f) : lp(l), what(f), acceptor(l.context(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    ep = acceptor.local_endpoint();
  }
  loop& lp;
  fault what;
  tcp::acceptor acceptor;
  tcp::endpoint ep;
  std::size_t requests = 0;
  std::vector<std::weak_ptr<tcp::socket>> sockets;
  bool closed = false;

  awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    for (;;) {
      auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec || closed) co_return;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      sockets.push_back(sock);
      spawn(lp, "testkit.fault", serve(self, sock));
    }
  }

  // `self` keeps the server state alive while the connection lasts.
  awaitable<void> serve([[maybe_unused]] std::shared_ptr<impl> self, std::shared_ptr<tcp::socket> s) {
    constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
    std::string in;
    auto [rec, n] = co_await asio::async_read_until(*s, asio::dynamic_buffer(in), "\r\n\r\n", nothrow);
    if (rec) co_return;
    ++requests;
    boost::system::error_code ignored;
    switch (what.what) {
      case fault::kind::close_mid_response: {
        std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                          std::to_string(what.declared) + "\r\n\r\n" + std::string(what.sent, 'x');
        co_await asio::async_write(*s, asio::buffer(out), nothrow);
        break;
      }
      case fault::kind::close_before_response: break;
      case fault::kind::no_response: {
        // Holds the connection until the peer gives up or the server closes.
        char byte;
        co_await s->async_read_some(asio::buffer(&byte, 1), nothrow);
        break;
      }
      case fault::kind::garbage: {
        static constexpr std::string_view junk = "\x16\x03\x01 this is not HTTP\r\n\r\n";
        co_await asio::async_write(*s, asio::buffer(junk), nothrow);
        break;
      }
    }
    s->close(ignored);
  }
};

fault_server::fault_server(loop& l, fault f) : impl_(std::make_shared<impl>(l, f)) {
  spawn(l, "testkit.fault_server", impl_->accept_loop(impl_));
}

fault_server::~fault_server() { close(); }

const tcp::endpoint& fault_server::endpoint() const noexcept { return impl_->ep; }

std::string fault_server::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(impl_->ep.port()) + std::string(path);
}

std::size_t fault_server::requests() const noexcept { return impl_->requests; }

void fault_server::close() {
  impl_->closed = true;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& w : impl_->sockets)
    if (auto s = w.lock()) s->close(ignored);
  impl_->sockets.clear();
}

}  // namespace loupe::testkit
