// Building the client's requests: URL and query, body encoding (JSON, form,
// raw), and the request message with its headers.
#include "client/request_builder.hpp"

#include "http/url_codec.hpp"

#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

namespace loupe::detail {

namespace http = boost::beast::http;

boost::urls::url request_url(const std::string& text, const request_options& o) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw client_error(client_errc::invalid_url, "invalid URL '" + text + "'");
  boost::urls::url u = *parsed;
  for (const auto& [k, v] : o.query) u.params().append({k, v});
  return u;
}

request_body encode_body(const request_options& o) {
  request_body b;
  if (o.json) {
    b.data = boost::json::serialize(*o.json);
    b.content_type = "application/json";
  } else if (!o.form.empty()) {
    for (const auto& [k, v] : o.form) {
      if (!b.data.empty()) b.data += '&';
      url_codec::append_form(b.data, k);
      b.data += '=';
      url_codec::append_form(b.data, v);
    }
    b.content_type = "application/x-www-form-urlencoded";
  } else if (o.body) {
    b.data = *o.body;
  }
  return b;
}

http::request<http::string_body> build_request(http::verb method, const url_origin& to, const request_body& body,
                                               const request_options& o, std::string_view user_agent,
                                               std::string_view cookie) {
  http::request<http::string_body> req{method, to.target, 11};
  req.set(http::field::host, to.host_header);
  req.set(http::field::user_agent, user_agent);
  if (!body.content_type.empty()) req.set(http::field::content_type, body.content_type);
  if (!cookie.empty()) req.set(http::field::cookie, cookie);
  for (const auto& [k, v] : o.headers) req.set(k, v);
  req.body() = body.data;
  // A body, or a method that has one (an empty POST says Content-Length: 0).
  if (!body.data.empty() || o.body || method == http::verb::post || method == http::verb::put ||
      method == http::verb::patch)
    req.prepare_payload();
  req.keep_alive(true);
  return req;
}

}  // namespace loupe::detail
