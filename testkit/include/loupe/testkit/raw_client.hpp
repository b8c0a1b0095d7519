// loupe/testkit/raw_client.hpp — an HTTP/1.1 client for tests, byte-exact when needed.
//
//   loupe::testkit::raw_client c(loop.get_executor());
//   co_await c.connect(server_endpoint);                 // or c.connect(srv.where()): TCP or in memory
//   auto res = co_await c.request(http::verb::get, "/users/7");      // one request
//   co_await c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n");
//   auto a = co_await c.read_response();                              // pipelined: in order
//   auto b = co_await c.read_response();
//   bool closed = co_await c.closed_by_peer();
//
// It sends whatever bytes it is given (malformed requests included) and parses
// responses with Beast. Every operation has a timeout (default 10 s) and
// throws boost::system::system_error on failure. Not thread-safe; one loop.
#pragma once

#include <loupe/runtime/task.hpp>
#include <loupe/testkit/network.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace loupe::testkit {

using http_response = boost::beast::http::response<boost::beast::http::string_body>;
using header_list = std::vector<std::pair<std::string, std::string>>;

class raw_client {
 public:
  explicit raw_client(boost::asio::any_io_executor ex, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~raw_client();
  raw_client(raw_client&&) noexcept;
  raw_client& operator=(raw_client&&) noexcept;

  awaitable<void> connect(const boost::asio::ip::tcp::endpoint& ep);
  /// A TCP endpoint, or a name on the in-memory network (a test server's or
  /// a chaos link's where()).
  awaitable<void> connect(const address& to);
  /// Writes `bytes` exactly as given.
  awaitable<void> send(std::string_view bytes);
  /// Reads one response (for a HEAD request, pass `head = true`).
  awaitable<http_response> read_response(bool head = false);
  /// Sends one well-formed request (Host and Content-Length filled in) and reads its response.
  awaitable<http_response> request(boost::beast::http::verb method, std::string_view target, std::string body = {},
                                   const header_list& headers = {});
  /// The bytes that have arrived (waiting for at least one; none buffered
  /// by an earlier read_response are lost). Throws on end of stream.
  awaitable<std::string> read_some();
  /// True when the server has closed the connection (EOF or reset) within the timeout.
  awaitable<bool> closed_by_peer();
  /// Ends the request side (the server reads EOF); responses can still be read.
  void shutdown_send();

  /// A slow reader: sets SO_RCVBUF (call before connect) so that the
  /// server's writes really wait for it.
  void set_receive_buffer(int bytes);
  struct slow_read {
    std::size_t bytes = 0;        ///< bytes received
    bool closed_by_peer = false;  ///< the server ended the connection first
  };
  /// Reads at most `chunk` bytes every `interval` until `total` bytes have
  /// arrived or the server closes the connection.
  awaitable<slow_read> read_slowly(std::size_t chunk, std::chrono::milliseconds interval, std::size_t total);
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace loupe::testkit
