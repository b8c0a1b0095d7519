// Private: how the client turns a URL and request_options into the HTTP
// request it sends — one way for client_session::request and ::stream.
#pragma once

#include "client/connect.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/url.hpp>

#include <string>
#include <string_view>

namespace loupe::detail {

/// `text` parsed, with the options' query appended (percent-encoded);
/// throws client_error(invalid_url) naming it.
boost::urls::url request_url(const std::string& text, const request_options& o);

/// What goes in the body and its Content-Type: json, else form, else body.
struct request_body {
  std::string data;
  std::string content_type;  ///< empty: none set (the caller's headers may)
};
request_body encode_body(const request_options& o);

/// The request for `to`: Host, User-Agent, Content-Type, Cookie (when not
/// empty), then the options' headers (which win), the body and its length.
boost::beast::http::request<boost::beast::http::string_body> build_request(boost::beast::http::verb method,
                                                                           const url_origin& to, const request_body& body,
                                                                           const request_options& o,
                                                                           std::string_view user_agent,
                                                                           std::string_view cookie);

}  // namespace loupe::detail
