// loupe/testkit/network.hpp — where test servers are reached, and chaos links between them and their clients.
//
//   LOUPE_TEST(Shop, FragmentedHeadersStillParse) {
//     use_memory_network();                                   // servers listen in memory, no ports
//     auto& srv = server(make_shop_app());
//     auto& link = chaos(srv, {.to_server = {.segment_bytes = 69}, .seed = 7});
//     auto& http = client(link);                              // every request crosses the link
//     auto res = co_await http.get("/orders", {.headers = {{"Cookie", std::string(2048, 'c')}}});
//     EXPECT_EQ(res.status_code(), 200u);                     // read by the server in 69-byte pieces
//   }
//
// An `address` is a TCP endpoint on 127.0.0.1 or a name on the in-memory
// network (loupe/runtime/memory_network.hpp); test servers, chaos links and
// fault servers have one, and client(), map_host() and raw_client::connect()
// take one, so one test body runs on either network.
//
// A chaos link stands between clients and a server, on the server's network
// (in memory, or a TCP proxy on 127.0.0.1 for a TCP server), and does to the
// bytes of each connection what a bad network does, per direction
// (`to_server`: the client's bytes; `to_client`: the server's):
//   delay           each piece waits this long (loupe::clock: virtual time too)
//   segment_bytes   written in segments of at most N bytes, each read by the
//                   peer before the next is written (in memory; over TCP the
//                   kernel may still merge them); random_segments draws each
//                   size from 1..N with the seed
//   bytes_per_second a bandwidth limit
//   stop_after      stops reading after N bytes: the sender's writes then
//                   wait for ever (a reader that stalls)
//   close_after     forwards N bytes, then closes the connection (both ends
//                   read end of stream)
//   reset_after     forwards N bytes, then resets it (over TCP an RST; in
//                   memory ECONNRESET where bytes were unread, else an end of
//                   stream mid-message)
//   corrupt_at      flips bits of the byte at this offset (which bits: from
//                   the seed)
// and `accept_stall`: a new connection reaches the server only after this
// long (its client's bytes wait meanwhile).
// Every link has a seed (given, or drawn and logged): the same seed gives the
// same segments and the same corruption. Creating a link logs a record
// ("chaos link 'link-1' seed 7: to_server segment_bytes=69"), so a failing
// test's captured log names it, and its connection tasks ("chaos.link") say
// it in `doing`.
#pragma once

#include <loupe/runtime/loop.hpp>
#include <loupe/runtime/task.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace loupe::testkit {

/// Which network test servers listen on.
enum class network { tcp, memory };
const char* to_string(network n) noexcept;

/// A TCP endpoint, or (when `memory` is not empty) a name on the in-memory network.
struct address {
  boost::asio::ip::tcp::endpoint tcp;
  std::string memory;
  bool in_memory() const noexcept { return !memory.empty(); }
  /// "http://127.0.0.1:PORT/path" or "http://NAME/path"; `scheme` "ws" for WebSockets.
  std::string url(std::string_view path = "/", std::string_view scheme = "http") const;
  /// "127.0.0.1:PORT" or "memory:NAME", for messages.
  std::string text() const;
};

/// What a chaos link does to the bytes of one direction (see above).
struct direction_faults {
  std::chrono::nanoseconds delay{0};
  std::size_t segment_bytes = 0;  ///< 0: pieces as read
  bool random_segments = false;
  std::size_t bytes_per_second = 0;  ///< 0: no limit
  std::optional<std::size_t> stop_after;
  std::optional<std::size_t> close_after;
  std::optional<std::size_t> reset_after;
  std::optional<std::size_t> corrupt_at;
};

struct link_faults {
  direction_faults to_server;
  direction_faults to_client;
  std::chrono::nanoseconds accept_stall{0};
  std::uint64_t seed = 0;  ///< 0: one is drawn, and logged
  std::string name;        ///< for messages; "link-N" by default
};

/// A link in front of `upstream`, on its network. Owned by one loop; close()
/// (or the test's teardown) ends its connections.
class chaos_link {
 public:
  chaos_link(loop& l, const address& upstream, link_faults faults);
  ~chaos_link();
  chaos_link(const chaos_link&) = delete;
  chaos_link& operator=(const chaos_link&) = delete;

  /// Where clients connect to go through the link.
  const address& where() const noexcept;
  std::string url(std::string_view path = "/", std::string_view scheme = "http") const {
    return where().url(path, scheme);
  }
  std::uint64_t seed() const noexcept;
  /// "chaos link 'link-1' seed 7 to memory:server-1.memory: to_server segment_bytes=69".
  std::string describe() const;
  /// Connections accepted so far, and open now.
  std::size_t connections_accepted() const noexcept;
  std::size_t connections_open() const noexcept;
  /// Writes the link made towards each side (a segment is one write).
  std::size_t writes_to_server() const noexcept;
  std::size_t writes_to_client() const noexcept;
  /// Stops accepting and closes every connection (their peers read end of stream).
  awaitable<void> close();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace loupe::testkit
