// Private: the header-injection guard every header write goes through.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>

namespace loupe::detail {

/// Throws std::invalid_argument for an empty or malformed name, or a value
/// with CR, LF or NUL (which would let it start another header).
inline void check_header(std::string_view name, std::string_view value) {
  // Plain loops: find_first_of with a character set was a thousand
  // instructions for a typical Content-Type, on every response.
  const auto bad_in_name = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':' || c == '\0';
  };
  const auto bad_in_value = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  if (name.empty() || std::any_of(name.begin(), name.end(), bad_in_name))
    throw std::invalid_argument("invalid header name '" + std::string(name) + "'");
  if (std::any_of(value.begin(), value.end(), bad_in_value))
    throw std::invalid_argument("header '" + std::string(name) + "' has a CR, LF or NUL in its value");
}

}  // namespace loupe::detail
