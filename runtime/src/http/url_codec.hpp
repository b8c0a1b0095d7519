// Private: percent coding, done one way for the whole runtime (Boost.URL).
// The router builds URLs with it (url_for), the request decodes its target's
// path and query with it, and the client encodes form bodies with it.
#pragma once

#include <string>
#include <string_view>

namespace loupe::detail::url_codec {

/// Appends `s` encoded for a path segment (RFC 3986 pchar); '/' is kept when
/// `keep_slash` (a `{name:regex}` parameter may span segments).
void append_path(std::string& out, std::string_view s, bool keep_slash);
/// Appends `s` encoded for a query key or value: only unreserved characters
/// stay as they are; a space is "%20".
void append_query(std::string& out, std::string_view s);
/// Appends `s` encoded as application/x-www-form-urlencoded: a space is '+'.
void append_form(std::string& out, std::string_view s);
/// Decodes `in` into `out`; false for a malformed escape or an encoded NUL.
/// `plus_is_space` for query strings and form bodies.
bool decode(std::string_view in, std::string& out, bool plus_is_space);

}  // namespace loupe::detail::url_codec
