// metrics: the current metric values, from the application's registry.
#include "table.hpp"

#include <loupe/runtime/metrics.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <prometheus/registry.h>

namespace loupe::monitor::detail {

namespace json = boost::json;

std::string metrics(const command_call& call) {
  const auto& args = call.args;
  const bool as_json = call.json;
  const std::string prefix = args.empty() ? std::string() : args[0];
  application* app = call.ctx.app;
  const std::string text = app ? loupe::metrics::exposition(*app) : loupe::metrics::exposition(prometheus::Registry{});
  json::array a;
  std::string out;
  for (const auto& s : loupe::metrics::parse_exposition(text)) {
    if (!s.name.starts_with(prefix)) continue;
    if (as_json) {
      json::object labels;
      for (const auto& [k, v] : s.labels) labels[k] = v;
      a.push_back(json::object{{"name", s.name}, {"labels", labels}, {"value", s.value}});
      continue;
    }
    std::string l;
    for (const auto& [k, v] : s.labels) l += fmt::format("{}{}=\"{}\"", l.empty() ? "" : ",", k, v);
    out += s.name + (l.empty() ? "" : "{" + l + "}") + " " + fmt::format("{}", s.value) + "\n";
  }
  if (as_json) return json::serialize(a) + "\n";
  return out.empty() ? "no metric starts with '" + prefix + "'\n" : out;
}

}  // namespace loupe::monitor::detail
