// Private: describing exceptions captured as std::exception_ptr.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

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

/// True for the operation_aborted error that cancellation makes an await throw.
inline bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return se.code() == boost::asio::error::operation_aborted;
  } catch (...) {
  }
  return false;
}

}  // namespace loupe::detail
