// loupe/testkit/faults.hpp — peers that misbehave, for testing how code copes.
//
//   // An upstream that dies half-way through its response:
//   loupe::testkit::fault_server upstream(loop, loupe::testkit::fault::close_mid_response(1000, 100));
//   map_host("pong.test", upstream);          // the app's client now reaches it
//   auto res = co_await http.get("/ping");    // the app should answer 502, not hang or crash
//
//   // A client that reads the response a little at a time:
//   loupe::testkit::raw_client slow(loop.get_executor());
//   slow.set_receive_buffer(4096);
//   co_await slow.connect(srv.endpoint());
//   co_await slow.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
//   auto got = co_await slow.read_slowly(1024, 50ms, 10'000'000);   // see raw_client.hpp
//
// A fault server accepts on 127.0.0.1 (port 0), reads each request's header
// and then misbehaves as told. Its tasks are named "testkit.fault".
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace loupe {
class loop;
}

namespace loupe::testkit {

struct fault {
  enum class kind { close_mid_response, close_before_response, no_response, garbage };
  kind what = kind::close_mid_response;
  std::size_t declared = 0;  ///< close_mid_response: the Content-Length promised
  std::size_t sent = 0;      ///< close_mid_response: the body bytes actually sent

  /// A 200 promising `declared` body bytes, then `sent` of them, then close.
  static fault close_mid_response(std::size_t declared = 1000, std::size_t sent = 100) {
    return {kind::close_mid_response, declared, sent};
  }
  /// Reads the request and closes without a byte of response.
  static fault close_before_response() { return {kind::close_before_response}; }
  /// Reads the request and never answers (the peer's timeout must act).
  static fault no_response() { return {kind::no_response}; }
  /// Answers with bytes that are not HTTP.
  static fault garbage() { return {kind::garbage}; }
};

class fault_server {
 public:
  fault_server(loop& l, fault f);
  ~fault_server();
  fault_server(const fault_server&) = delete;
  fault_server& operator=(const fault_server&) = delete;

  const boost::asio::ip::tcp::endpoint& endpoint() const noexcept;
  unsigned short port() const noexcept { return endpoint().port(); }
  std::string url(std::string_view path = "/") const;
  /// Requests whose header it has read.
  std::size_t requests() const noexcept;
  /// Stops accepting and closes its connections.
  void close();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace loupe::testkit
