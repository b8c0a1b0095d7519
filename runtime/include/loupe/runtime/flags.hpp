// loupe/runtime/flags.hpp — a small command-line flag parser with clear errors.
//
//   loupe::flag_set flags("loupe-demo", "The loupe reference application.");
//   std::int64_t port = 8080;
//   flags.add_int("port", &port, 0, 65535, "TCP port to listen on");
//   flags.parse(argc, argv);            // throws loupe::flag_error("--port: ...")
//
// Accepts `--name value` and `--name=value`; `--flag` alone for booleans;
// `--help` throws help_requested (print usage(), exit 0). Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loupe {

/// A bad flag or flag value. The message names the flag.
class flag_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by `flag_set::parse` for --help / -h.
class help_requested : public std::exception {
 public:
  const char* what() const noexcept override { return "help requested"; }
};

class flag_set {
 public:
  flag_set(std::string program, std::string summary);

  void add_string(std::string name, std::string* target, std::string help);
  void add_int(std::string name, std::int64_t* target, std::int64_t min, std::int64_t max, std::string help);
  void add_choice(std::string name, std::string* target, std::vector<std::string> choices, std::string help);
  void add_bool(std::string name, bool* target, std::string help);
  /// A duration given in whole milliseconds, from `min` to `max`.
  void add_millis(std::string name, std::chrono::milliseconds* target, std::int64_t min, std::int64_t max,
                  std::string help);
  /// A count or a size in bytes, from `min` to `max`.
  void add_size(std::string name, std::size_t* target, std::size_t min, std::size_t max, std::string help);

  /// Parses argv[1..]. Returns the positional arguments.
  std::vector<std::string> parse(int argc, const char* const* argv) const;
  std::vector<std::string> parse(const std::vector<std::string>& args) const;
  std::string usage() const;
  const std::string& program() const noexcept { return program_; }

 private:
  struct flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool takes_value = true;
    std::function<void(std::string_view)> set;  // throws flag_error
  };
  std::string program_;
  std::string summary_;
  std::vector<flag> flags_;
};

}  // namespace loupe
