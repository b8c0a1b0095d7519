// The flag parser.
#include <loupe/runtime/flags.hpp>

#include <algorithm>
#include <charconv>

namespace loupe {

flag_set::flag_set(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void flag_set::add_string(std::string name, std::string* target, std::string help) {
  flags_.push_back({name, std::move(help), *target, true, [target](std::string_view v) { *target = std::string(v); }});
}

namespace {

// The integer `v` given to --name, within [min, max]; throws flag_error.
template <class Int>
Int parse_integer(const std::string& name, std::string_view v, Int min, Int max) {
  Int x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec == std::errc::result_out_of_range || (ec == std::errc{} && p == v.data() + v.size() && (x < min || x > max)))
    throw flag_error("--" + name + ": " + std::string(v) + " is out of range [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]");
  if (ec != std::errc{} || p != v.data() + v.size() || v.empty())
    throw flag_error("--" + name + ": '" + std::string(v) + "' is not an integer");
  return x;
}

}  // namespace

void flag_set::add_int(std::string name, std::int64_t* target, std::int64_t min, std::int64_t max, std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(*target), true,
                    [name, target, min, max](std::string_view v) { *target = parse_integer(name, v, min, max); }});
}

void flag_set::add_millis(std::string name, std::chrono::milliseconds* target, std::int64_t min, std::int64_t max,
                          std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(target->count()), true,
                    [name, target, min, max](std::string_view v) {
    *target = std::chrono::milliseconds(parse_integer(name, v, min, max));
                    }});
}

void flag_set::add_size(std::string name, std::size_t* target, std::size_t min, std::size_t max, std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(*target), true,
                    [name, target, min, max](std::string_view v) { *target = parse_integer(name, v, min, max); }});
}

void flag_set::add_choice(std::string name, std::string* target, std::vector<std::string> choices, std::string help) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  flags_.push_back({name, std::move(help) + " (" + list + ")", *target, true,
                    [name, target, choices, list](std::string_view v) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      throw flag_error("--" + name + ": '" + std::string(v) + "' is not one of " + list);
    *target = std::string(v);
                    }});
}

void flag_set::add_bool(std::string name, bool* target, std::string help) {
  flags_.push_back({name, std::move(help), *target ? "true" : "false", false, [name, target](std::string_view v) {
                      if (v.empty() || v == "true" || v == "1") *target = true;
                      else if (v == "false" || v == "0") *target = false;
                      else throw flag_error("--" + name + ": '" + std::string(v) + "' is not true or false");
                    }});
}

std::vector<std::string> flag_set::parse(int argc, const char* const* argv) const {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return parse(args);
}

std::vector<std::string> flag_set::parse(const std::vector<std::string>& args) const {
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") throw help_requested();
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      if (!a.empty() && a[0] == '-') throw flag_error("unknown flag '" + a + "'");
      positional.push_back(a);
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto f = std::find_if(flags_.begin(), flags_.end(), [&](const flag& x) { return x.name == name; });
    if (f == flags_.end()) throw flag_error("unknown flag '--" + name + "'");
    if (eq != std::string::npos) {
      f->set(std::string_view(a).substr(eq + 1));
    } else if (!f->takes_value) {
      f->set("");
    } else {
      if (i + 1 >= args.size()) throw flag_error("--" + name + ": missing value");
      f->set(args[++i]);
    }
  }
  return positional;
}

std::string flag_set::usage() const {
  std::string u = "usage: " + program_ + " [flags]\n";
  if (!summary_.empty()) u += summary_ + "\n";
  u += "\nflags:\n";
  for (const auto& f : flags_) {
    std::string left = "  --" + f.name + (f.takes_value ? " VALUE" : "");
    if (left.size() < 28) left.resize(28, ' ');
    else left += "  ";
    u += left + f.help;
    if (!f.default_text.empty()) u += " [default: " + f.default_text + "]";
    u += "\n";
  }
  u += "  --help                    show this help\n";
  return u;
}

}  // namespace loupe
