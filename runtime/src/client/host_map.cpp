// map_host(): the loop's map of host names to endpoints (no DNS), kept as a
// service of the loop's io_context.
#include <loupe/runtime/client.hpp>
#include <loupe/runtime/loop.hpp>

#include "client/host_map.hpp"
#include "http/text.hpp"

#include <boost/asio/io_context.hpp>

namespace loupe {

boost::asio::execution_context::id detail::host_map::id;

void detail::host_map::set(std::string host, target to) { entries_.insert_or_assign(to_lower(host), std::move(to)); }

void detail::host_map::erase(std::string_view host) {
  if (auto it = entries_.find(to_lower(host)); it != entries_.end()) entries_.erase(it);
}

std::optional<detail::host_map::target> detail::host_map::find(std::string_view host) const {
  if (entries_.empty()) return std::nullopt;
  if (auto it = entries_.find(to_lower(host)); it != entries_.end()) return it->second;
  return std::nullopt;
}

void map_host(loop& l, std::string host, boost::asio::ip::tcp::endpoint to) {
  boost::asio::use_service<detail::host_map>(l.context()).set(std::move(host), {to, {}});
}

void map_host(loop& l, std::string host, memory_endpoint to) {
  if (to.name.empty()) throw std::invalid_argument("map_host: an empty in-memory name");
  boost::asio::use_service<detail::host_map>(l.context()).set(std::move(host), {{}, std::move(to.name)});
}

void unmap_host(loop& l, std::string_view host) { boost::asio::use_service<detail::host_map>(l.context()).erase(host); }

}  // namespace loupe
