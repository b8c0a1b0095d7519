// loupe/runtime/log.hpp — loupe's loggers (spdlog), JSON lines or text.
//
//   loupe::log::configure({.format = loupe::log::format::json});
//   loupe::log::app().info("cache warmed in {} ms", ms);
//
// JSON output is one object per line — {"ts","level","logger","msg"} — and
// stays valid JSON whatever the message holds (quotes, newlines, control bytes,
// invalid UTF-8). Records go to stderr. Loggers are thread-safe.
#pragma once

#include <spdlog/logger.h>

#include <string>

namespace loupe::log {

enum class format { json, text };

struct options {
  log::format format = format::json;
  spdlog::level::level_enum level = spdlog::level::info;
};

/// Installs the sink and formatter on every loupe logger. Call before serving.
void configure(const options& opts);
/// The runtime's own records ("loupe").
spdlog::logger& runtime();
/// For application code ("app").
spdlog::logger& app();
/// Changes the level of every loupe logger.
void set_level(spdlog::level::level_enum level);
/// Parses "json" / "text"; throws std::invalid_argument otherwise.
format parse_format(const std::string& text);
/// Appends `text` to `out` as the inside of a JSON string (escaped; invalid
/// UTF-8 becomes U+FFFD).
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace loupe::log
