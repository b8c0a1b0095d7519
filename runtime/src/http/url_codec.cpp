// Percent coding over Boost.URL's encode/decode and its RFC 3986 character sets.
#include "http/url_codec.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/string_token.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace loupe::detail::url_codec {

namespace urls = boost::urls;

namespace {
constexpr urls::grammar::lut_chars path_chars = urls::pchars + '/';
}

void append_path(std::string& out, std::string_view s, bool keep_slash) {
  if (keep_slash) urls::encode(s, path_chars, {}, urls::string_token::append_to(out));
  else urls::encode(s, urls::pchars, {}, urls::string_token::append_to(out));
}

void append_query(std::string& out, std::string_view s) {
  urls::encode(s, urls::unreserved_chars, {}, urls::string_token::append_to(out));
}

void append_form(std::string& out, std::string_view s) {
  urls::encoding_opts opts;
  opts.space_as_plus = true;
  urls::encode(s, urls::unreserved_chars, opts, urls::string_token::append_to(out));
}

bool decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  auto valid = urls::make_pct_string_view(in);
  if (!valid) return false;
  urls::encoding_opts opts;
  opts.space_as_plus = plus_is_space;
  valid->decode(opts, urls::string_token::assign_to(out));
  // An encoded NUL ("%00") is refused: it would cut C strings and paths.
  return out.find('\0') == std::string::npos;
}

}  // namespace loupe::detail::url_codec
