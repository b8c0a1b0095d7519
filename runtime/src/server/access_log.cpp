// One answered request's metrics and its access-log record ("loupe.access").
#include "server/server_internals.hpp"

#include <charconv>

namespace loupe {

using detail::refused;

void server::impl::record(const request* req, const refused* r, unsigned status, std::size_t request_bytes,
                          std::size_t response_bytes, std::int64_t start_ns, std::uint64_t task_id,
                          const tcp::endpoint& remote, unsigned handler_status) {
  const std::int64_t took_ns = detail::now_ns() - start_ns;
  [[maybe_unused]] const double seconds = static_cast<double>(took_ns) / 1e9;
  const std::string* route = req && !req->route().empty() ? &req->route() : r ? r->route : nullptr;
  const std::string_view method = req ? std::string_view(req->method_name()) : r ? std::string_view(r->method) : "";
  LOUPE_HTTP_METRIC(series.observe(route, detail::method_index(method), status, seconds, request_bytes, response_bytes));
  if (!opts.access_log || !log::access().should_log(spdlog::level::info)) return;
  const std::string_view path = req ? req->raw_path() : r ? std::string_view(r->path) : std::string_view{};
  // The text of the last peer address, per loop thread: behind a proxy (or
  // under a load test) it is the same one request after request.
  thread_local asio::ip::address last_addr;
  thread_local std::string last_text;
  if (last_text.empty() || remote.address() != last_addr) {
    last_addr = remote.address();
    // Only an in-memory connection has no address and port (see serve()).
    last_text = remote.port() == 0 && last_addr.is_unspecified() ? "memory" : last_addr.to_string();
  }
  const std::string& remote_addr = last_text;
  std::string_view agent = r ? std::string_view(r->user_agent) : std::string_view{};
  if (req) {
    if (auto ua = req->header("User-Agent")) agent = *ua;
  }
  const std::string_view request_id = req ? std::string_view(req->request_id())
                                      : r ? std::string_view(r->request_id)
                                          : std::string_view{};
  // "127.0.0.1 GET /path 200", built directly (fmt::format was a tenth of the record).
  std::string msg;
  msg.reserve(remote_addr.size() + method.size() + path.size() + 8);
  msg.append(remote_addr).append(1, ' ').append(method.empty() ? "-" : method).append(1, ' ');
  msg.append(path.empty() ? "-" : path).append(1, ' ');
  char code[8];
  msg.append(code, std::to_chars(code, code + sizeof code, status).ptr);
  if (r) msg.append(" (").append(to_string(r->reason)).append(")");
  const std::string_view route_text = route ? std::string_view(*route) : metrics::unmatched_route;
  const double duration_ms = static_cast<double>(took_ns / 1000) / 1e3;
  const log::context whose{task_id, task_id ? std::string_view("http.request") : std::string_view{}, request_id};
  if (status == detail::client_closed_request) {
    // nginx's 499: the client left before the response; what the handler
    // would have answered is a field of its own.
    msg.append(" (client closed request)");
    log::write(log::access(), spdlog::level::info, msg,
               {{"method", method},
                {"path", path},
                {"route", route_text},
                {"status", status},
                {"client_gone", true},
                {"handler_status", handler_status},
                {"response_bytes", response_bytes},
                {"duration_ms", duration_ms},
                {"remote", remote_addr},
                {"user_agent", agent}},
               whose);
    return;
  }
  log::write(log::access(), spdlog::level::info, msg,
             {{"method", method},
              {"path", path},
              {"route", route_text},
              {"status", status},
              {"response_bytes", response_bytes},
              {"duration_ms", duration_ms},
              {"remote", remote_addr},
              {"user_agent", agent}},
             whose);
}

}  // namespace loupe
