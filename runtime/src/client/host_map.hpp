// Private: map_host() — names this loop's clients connect to without DNS.
// An Asio service of the loop's io_context (created on first use, destroyed
// with the context), so the loop itself knows nothing of it.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <loupe/runtime/memory_network.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace loupe::detail {

class host_map : public boost::asio::execution_context::service {
 public:
  static boost::asio::execution_context::id id;
  explicit host_map(boost::asio::execution_context& ctx) : service(ctx) {}

  /// Where a host goes: a TCP endpoint, or (`memory` not empty) a name on
  /// the in-memory network.
  struct target {
    boost::asio::ip::tcp::endpoint tcp;
    std::string memory;
  };
  /// Touched on the loop's thread only.
  void set(std::string host, target to);
  void erase(std::string_view host);
  std::optional<target> find(std::string_view host) const;

 private:
  void shutdown() override {}
  std::map<std::string, target, std::less<>> entries_;
};

}  // namespace loupe::detail
