// log-level: shows the log level, or sets it (read-only mode refuses setting
// it: the table says it changes state with arguments).
#include "table.hpp"

#include <loupe/runtime/log.hpp>

namespace loupe::monitor::detail {

std::string log_level(const command_call& call) {
  const auto& args = call.args;
  if (args.empty()) {
    const auto name = spdlog::level::to_string_view(log::level());
    return "log level: " + std::string(name.data(), name.size()) + "\n";
  }
  const auto lvl = log::parse_level(args[0]);
  log::set_level(lvl);
  const auto name = spdlog::level::to_string_view(lvl);
  log::runtime().warn("log level set to {} from the console", std::string_view(name.data(), name.size()));
  return "log level set to " + std::string(name.data(), name.size()) + "\n";
}

}  // namespace loupe::monitor::detail
