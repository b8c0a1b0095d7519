// Private: the Beast stream behind loupe::websocket (shared with the server).
#pragma once

#include <loupe/runtime/websocket.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

namespace loupe {

struct websocket::impl {
  explicit impl(boost::beast::tcp_stream s) : stream(std::move(s)) {}
  void configure(bool server, const websocket_options& o);

  boost::beast::websocket::stream<boost::beast::tcp_stream> stream;
  boost::beast::flat_buffer buffer;
  std::uint16_t code = 0;
  std::string reason;
  std::size_t pongs = 0;
};

}  // namespace loupe
