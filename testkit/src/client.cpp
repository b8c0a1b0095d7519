// testkit: a client bound to one server.
#include <loupe/testkit/client.hpp>

namespace loupe::testkit {

namespace http = boost::beast::http;

test_client::test_client(loop& l, std::string base_url, client_options opts)
    : loop_(l), base_(std::move(base_url)), tls_(opts.tls), session_(l, std::move(opts)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::string test_client::url(std::string_view path) const {
  if (path.starts_with("http://") || path.starts_with("https://") || path.starts_with("ws://") ||
      path.starts_with("wss://"))
    return std::string(path);
  std::string out = base_;
  if (path.empty() || path.front() != '/') out += '/';
  out += path;
  return out;
}

awaitable<client_response> test_client::request(http::verb method, std::string_view path, request_options opts,
                                                std::source_location at) {
  co_return co_await session_.request(method, url(path), std::move(opts), at);
}
awaitable<client_response> test_client::get(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::get, p, std::move(o), at);
}
awaitable<client_response> test_client::post(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::post, p, std::move(o), at);
}
awaitable<client_response> test_client::put(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::put, p, std::move(o), at);
}
awaitable<client_response> test_client::patch(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::patch, p, std::move(o), at);
}
awaitable<client_response> test_client::del(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::delete_, p, std::move(o), at);
}
awaitable<client_response> test_client::head(std::string_view p, request_options o, std::source_location at) {
  return request(http::verb::head, p, std::move(o), at);
}

awaitable<std::unique_ptr<client_stream>> test_client::stream(http::verb method, std::string_view path,
                                                              request_options opts, std::source_location at) {
  co_return co_await session_.stream(method, url(path), std::move(opts), at);
}

awaitable<std::unique_ptr<websocket>> test_client::ws_connect(std::string_view path, std::source_location at) {
  return ws_connect(path, websocket_options{}, at);
}

awaitable<std::unique_ptr<websocket>> test_client::ws_connect(std::string_view path, websocket_options opts,
                                                              std::source_location at) {
  std::string u = url(path);
  if (u.starts_with("http://")) u.replace(0, 4, "ws");
  if (u.starts_with("https://")) u.replace(0, 5, "wss");
  if (opts.tls.ca_file.empty() && opts.tls.ca_pem.empty()) opts.tls = tls_;
  return websocket::connect(loop_, std::move(u), std::move(opts), at);
}

}  // namespace loupe::testkit
