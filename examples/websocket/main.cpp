// websocket — a WebSocket echo route.
//
//   ./example-websocket --port 8080
// then, from the developer console of a browser tab on about:blank:
//   ws = new WebSocket("ws://127.0.0.1:8080/ws"); ws.onmessage = e => console.log(e.data);
//   ws.send("hi")        // -> "echo: hi";   ws.send("bye") -> the server closes (1000)
// or from a shell, with `pip install websockets`:  python3 -m websockets ws://127.0.0.1:8080/ws
//
// The handler runs for the life of the connection; receive() returns
// std::nullopt once the peer has closed. Pings are answered and an idle peer
// is dropped for you; a message past max_message_bytes closes with 1009.
// Other paths (and a plain GET of /ws) are ordinary HTTP: curl gets 426.
#include <loupe/runtime.hpp>

#include <string>

using loupe::awaitable, loupe::request;

int main(int argc, char** argv) {
  loupe::application app;
  app.websocket("/ws",
                [](loupe::websocket& ws, request& req) -> awaitable<void> {
    // Name what you send: GCC 12 can destroy a temporary std::string in a
    // co_await expression twice (`co_await ws.send(a ? b : "x" + b)` crashes).
                  const std::string hello = "hello " + req.remote_address() + ", say something (bye to leave)";
                  co_await ws.send(hello);
                  while (auto msg = co_await ws.receive()) {
                    if (!msg->binary && msg->data == "bye") {
                      co_await ws.close(1000, "bye");  // both halves of the close handshake
                      break;
                    }
                    const std::string reply = msg->binary ? msg->data : "echo: " + msg->data;
                    co_await ws.send(reply, msg->binary);
                  }
                  loupe::log::info(loupe::log::app(), "websocket closed", {{"code", ws.close_code()}});
                },
                {.max_message_bytes = 64 * 1024});
  return loupe::run_main(app, argc, argv);
}
