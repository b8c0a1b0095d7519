// loupe/runtime/memory_network.hpp — the in-memory network: servers and clients without ports or TCP.
//
//   loupe::server srv(loop, app);
//   srv.listen_memory("shop.test");                  // a name, not a port
//   loupe::client_session http(loop);
//   auto res = co_await http.get("http://shop.test/orders");   // reaches srv in memory
//   loupe::map_host(loop, "api.example.com", loupe::memory_endpoint{"shop.test"});
//
// A server listening under a name is reached by every client of the process
// (client_session, WebSocket clients, the testkit's client and raw_client)
// that connects to that host, any port, before DNS or map_host's TCP entries
// are looked at... except that a map_host entry for the host comes first. No
// port is taken, no TCP stack runs: a connection is a pair of connected
// AF_UNIX stream sockets (socketpair(2)), one end handed to the server's
// accept loop and one to the client, so the same Asio socket type, the same
// Beast streams and the same server and client code serve both networks —
// what passes over memory passes over TCP. A write is in the peer's receive
// queue when it returns: there is no segment in flight between the two, so
// a loop with nothing ready is exactly idle (what virtual time in the
// testkit needs), and a run is the same every time. Half-close (shutdown of
// the send side) reads as end of stream; closing a socket whose received
// bytes were never read gives its peer ECONNRESET, as TCP's reset does.
//
// memory_acceptor is the listening end, for code that accepts by itself.
//
// On a server, request::remote() of an in-memory connection is the empty
// endpoint (0.0.0.0:0) and the access log's `remote` says "memory".
// memory_connect() of a name nobody listens under fails with
// connection_refused, as a closed port does.
#pragma once

#include <loupe/runtime/task.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <tuple>

namespace loupe {

/// Where a server listens on the in-memory network: its name.
struct memory_endpoint {
  std::string name;
  friend bool operator==(const memory_endpoint&, const memory_endpoint&) = default;
};

namespace detail {
class memory_listener;
}

/// Listens under a name on the in-memory network, as a TCP acceptor listens
/// on a port (server::listen_memory uses one; so do the testkit's chaos links).
class memory_acceptor {
 public:
  /// Throws boost::system::system_error (address_in_use) when the name is taken.
  memory_acceptor(const boost::asio::any_io_executor& ex, std::string name);
  ~memory_acceptor();  ///< closes
  memory_acceptor(const memory_acceptor&) = delete;
  memory_acceptor& operator=(const memory_acceptor&) = delete;

  /// The next connection, its server end as a socket on the acceptor's
  /// executor (await it there); operation_aborted once closed.
  awaitable<std::tuple<boost::system::error_code, boost::asio::ip::tcp::socket>> accept();
  /// Frees the name; a pending accept ends, connections not accepted yet are closed.
  void close();
  bool is_open() const;
  const std::string& name() const noexcept;
  memory_endpoint endpoint() const { return {name()}; }

 private:
  std::shared_ptr<detail::memory_listener> impl_;
};

/// Whether some server of this process listens under `name`.
bool memory_listening(std::string_view name);

/// A connection to the server listening under `name`, its client end as a
/// socket on `ex`. Throws boost::system::system_error (connection_refused)
/// when nobody listens there. Callable from any thread.
boost::asio::ip::tcp::socket memory_connect(const boost::asio::any_io_executor& ex, std::string_view name);

}  // namespace loupe
