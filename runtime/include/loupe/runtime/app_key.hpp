// loupe/runtime/app_key.hpp — typed keys for application state.
//
// What `app["db"]` is in aiohttp, type-checked by the compiler:
//
//   inline const loupe::app_key<database> db_key{"db"};
//   app.set(db_key, database{...});
//   database& db = request.config(db_key);   // looked up through parent apps
//
// A key is identified by its address, so define each key once (a namespace-scope
// `inline const` or a static member) and refer to that object.
#pragma once

#include <string>
#include <string_view>

namespace loupe {

template <class T>
class app_key {
 public:
  using value_type = T;
  explicit app_key(std::string_view name) : name_(name) {}
  app_key(const app_key&) = delete;
  app_key& operator=(const app_key&) = delete;
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

}  // namespace loupe
