// testkit: reading the Prometheus text format.
#include <loupe/testkit/metrics.hpp>

#include <loupe/runtime/metrics.hpp>


namespace loupe::testkit {

std::vector<metric_sample> parse_metrics(std::string_view text) { return metrics::parse_exposition(text); }

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
