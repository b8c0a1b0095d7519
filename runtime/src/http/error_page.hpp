// Private: the body of every error response, one way for the whole runtime —
// an http_error a handler throws (its what()) and the refusals the server
// sends itself before or outside the application (server/error_page.cpp).
#pragma once

#include <boost/beast/http/status.hpp>

#include <string>
#include <string_view>

namespace loupe::detail {

/// "404: Not Found", or "400: ms must be a number" when there is a message.
std::string error_text(boost::beast::http::status status, std::string_view message);

}  // namespace loupe::detail
