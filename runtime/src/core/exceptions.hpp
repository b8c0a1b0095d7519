// Private: describing exceptions captured as std::exception_ptr.
#pragma once

#include <exception>
#include <string>

namespace loupe::detail {

/// The exception's what(), or a fixed text for a non-standard exception.
inline std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace loupe::detail
