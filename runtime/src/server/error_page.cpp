// The error responses the server sends itself (400, 413, 431, 503 …), before
// or outside the application.
#include "http/error_page.hpp"
#include "server/server_internals.hpp"

#include <boost/beast/http/write.hpp>

namespace loupe {

using detail::nothrow;
using detail::http_date;

awaitable<std::size_t> server::impl::send_error(connection& c, http::status status, std::string_view message,
                                                std::string_view request_id) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set("X-Request-ID", request_id);
  if (!opts.server_header.empty()) res.set(http::field::server, opts.server_header);
  res.set(http::field::date, http_date());
  res.body() = detail::error_text(status, message);
  res.keep_alive(false);
  res.prepare_payload();
  const std::size_t size = res.body().size();
  detail::socket_deadline deadline(c.stream.socket());
  deadline.arm_after(opts.write_timeout);
  co_await on_stream(c, [&](auto& s) { return http::async_write(s, res, nothrow); });
  co_return size;
}

}  // namespace loupe
