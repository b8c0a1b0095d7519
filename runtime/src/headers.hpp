// Private: the header-injection guard every header write goes through.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace loupe::detail {

/// Throws std::invalid_argument for an empty or malformed name, or a value
/// with CR, LF or NUL (which would let it start another header).
inline void check_header(std::string_view name, std::string_view value) {
  using namespace std::string_view_literals;
  if (name.empty() || name.find_first_of(" \t\r\n:\0"sv) != std::string_view::npos)
    throw std::invalid_argument("invalid header name '" + std::string(name) + "'");
  if (value.find_first_of("\r\n\0"sv) != std::string_view::npos)
    throw std::invalid_argument("header '" + std::string(name) + "' has a CR, LF or NUL in its value");
}

}  // namespace loupe::detail
