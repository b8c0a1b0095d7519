// Private: how a log record reads — one JSON object per line, or a text
// line — built on the calling thread into a reused string.
#pragma once

#include <loupe/runtime/log.hpp>

#include <spdlog/common.h>

#include <string>
#include <string_view>

namespace loupe::log::detail {

/// Appends the whole record (and its newline) to `line`.
void format_record(std::string& line, log::format f, spdlog::log_clock::time_point time, spdlog::level::level_enum level,
                   std::string_view logger, std::string_view text, const context& ctx, const fields* extra);

}  // namespace loupe::log::detail
