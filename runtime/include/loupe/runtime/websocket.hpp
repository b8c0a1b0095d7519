// loupe/runtime/websocket.hpp — WebSocket routes and a WebSocket client (Beast).
//
//   app.websocket("/ws", [](loupe::websocket& ws, loupe::request&) -> loupe::awaitable<void> {
//     while (auto msg = co_await ws.receive())           // std::nullopt once closed
//       co_await ws.send(msg->data, msg->binary);         // echo
//   });
//
//   auto ws = co_await loupe::websocket::connect(loop, "ws://127.0.0.1:8080/ws");   // or wss://
//   co_await ws->send("hello");
//   auto reply = co_await ws->receive();
//   co_await ws->close(1000, "done");                  // or ws->close(loupe::ws_close::normal)
//
// Control frames are handled for you: pings are answered, a peer heard from
// nothing for half of `idle_timeout` is pinged and, silent for all of it,
// dropped (receive() then ends with 1006), and a message larger than
// `max_message_bytes` closes the connection with 1009 (too big). After the
// close handshake `receive()` returns std::nullopt and `close_code()` says
// why. Over HTTPS servers (server_options::tls) routes are served as wss://,
// and a wss:// client verifies the server as client_session does
// (websocket_options::tls). A websocket belongs to the loop that made it;
// not thread-safe.
#pragma once

#include <loupe/runtime/task.hpp>
#include <loupe/runtime/tls.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace loupe {

namespace detail {
struct access;
}

class loop;
class request;

struct websocket_options {
  std::size_t max_message_bytes = 1024 * 1024;
  /// Both on loupe::clock (virtual time in tests); zero: none.
  std::chrono::seconds idle_timeout{300};
  std::chrono::seconds handshake_timeout{30};
  /// wss:// clients: what is trusted (as client_options::tls, tls.hpp).
  client_tls_options tls{};
};

struct ws_message {
  std::string data;
  bool binary = false;
};

/// The close codes of RFC 6455 7.4.1. Applications may use 4000–4999 too
/// (close() takes a number; close_code() returns one).
enum class ws_close : std::uint16_t {
  normal = 1000,
  going_away = 1001,        ///< the server is shutting down
  protocol_error = 1002,
  unsupported_data = 1003,
  no_status = 1005,         ///< never sent: the close frame had no code
  abnormal = 1006,          ///< never sent: the connection dropped without a close frame
  invalid_payload = 1007,
  policy_violation = 1008,
  too_big = 1009,           ///< a message over max_message_bytes
  mandatory_extension = 1010,
  internal_error = 1011,    ///< the handler failed
};

class websocket {
 public:
  struct impl;
  explicit websocket(std::unique_ptr<impl> i);
  ~websocket();
  websocket(const websocket&) = delete;
  websocket& operator=(const websocket&) = delete;

  // Each operation's wait carries the caller's `co_await` file:line (`at`),
  // as the console's `ps` and `where` show it.

  /// Connects to a ws:// or wss:// URL as a client. Throws client_error on failure.
  /// (Two overloads, not a defaulted `opts = {}`: GCC 12 copies a defaulted
  /// argument that holds strings bit by bit when the call is in a co_await
  /// expression, and frees its strings twice. Give options as a variable of
  /// their own, not a braced list in the co_await, for the same reason.)
  static awaitable<std::unique_ptr<websocket>> connect(loop& l, std::string url,
                                                       std::source_location at = std::source_location::current());
  static awaitable<std::unique_ptr<websocket>> connect(loop& l, std::string url, websocket_options opts,
                                                       std::source_location at = std::source_location::current());

  /// The next message, or std::nullopt once the connection is closed.
  awaitable<std::optional<ws_message>> receive(std::source_location at = std::source_location::current());
  awaitable<void> send(std::string_view data, bool binary = false,
                       std::source_location at = std::source_location::current());
  awaitable<void> ping(std::string_view payload = {}, std::source_location at = std::source_location::current());
  /// Starts the close handshake with `code` (1000: normal) and `reason`.
  awaitable<void> close(std::uint16_t code = static_cast<std::uint16_t>(ws_close::normal), std::string_view reason = {},
                        std::source_location at = std::source_location::current());
  awaitable<void> close(ws_close code, std::string_view reason = {},
                        std::source_location at = std::source_location::current()) {
    return close(static_cast<std::uint16_t>(code), reason, at);
  }

  /// The close code the peer sent (or 1006 if the connection just dropped); 0 while open.
  std::uint16_t close_code() const noexcept;
  const std::string& close_reason() const noexcept;
  /// Pongs received so far.
  std::size_t pongs() const noexcept;

 private:
  friend struct detail::access;
  std::unique_ptr<impl> impl_;
};

/// A WebSocket route's handler: runs for the life of the connection.
using websocket_handler = std::function<awaitable<void>(websocket&, request&)>;

/// What a WebSocket route's response carries to the server (see application::websocket).
struct websocket_upgrade {
  websocket_handler handler;
  websocket_options options;
};

}  // namespace loupe
