// testkit: reading the Prometheus text format.
#include <loupe/testkit/metrics.hpp>

#include <cstdlib>

namespace loupe::testkit {

std::vector<metric_sample> parse_metrics(std::string_view text) {
  std::vector<metric_sample> out;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;
    metric_sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string key, value;
        while (i < line.size() && line[i] != '=') key += line[i++];
        i += 2;  // ="
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels.emplace(std::move(key), std::move(value));
      }
      ++i;  // closing brace
    }
    if (i >= line.size()) continue;
    const std::string value(line.substr(i + 1, line.find(' ', i + 1) - (i + 1)));
    s.value = std::strtod(value.c_str(), nullptr);  // also +Inf, -Inf, NaN
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> metric_value(std::string_view text, std::string_view name, const metric_labels& want) {
  std::optional<double> sum;
  for (const auto& s : parse_metrics(text)) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : want) {
      const auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

}  // namespace loupe::testkit
