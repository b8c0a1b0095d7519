// Private: the client session's cookie jar — RFC 6265's storage and matching
// rules (aiohttp's CookieJar), for a client that speaks plain HTTP (Secure
// cookies go to loopback hosts only, as browsers treat localhost as a secure
// context).
#pragma once

#include <loupe/runtime/client.hpp>

#include <boost/url/url.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace loupe::detail {

class cookie_jar {
 public:
  /// Keeps the cookie a Set-Cookie header from `from` sets (or deletes it:
  /// Max-Age <= 0, Expires in the past). One for another site is ignored.
  void store(std::string_view set_cookie, const boost::urls::url& from);
  /// Adds or replaces (same name, domain and path) a cookie.
  void put(client_cookie c);
  /// The Cookie header for a request to `to`, or "" for none.
  std::string header_for(const boost::urls::url& to);
  std::vector<client_cookie> all() {
    drop_expired();
    return cookies_;
  }
  void clear() { cookies_.clear(); }

 private:
  void drop_expired();
  std::vector<client_cookie> cookies_;
};

}  // namespace loupe::detail
