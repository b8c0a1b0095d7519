// loupe/testkit/metrics.hpp — read values out of a Prometheus text exposition.
//
//   auto text = loupe::metrics::exposition(app);
//   auto n = loupe::testkit::metric_value(text, "http_server_requests_total",
//                                         {{"http_route", "/orders"}, {"http_response_status_code", "200"}});
//   EXPECT_EQ(n, 3);                                  // std::optional<double>: nullopt if absent
//
// A test server has the same as `srv.metric(name, labels)`. Labels given must
// all match; labels not given are ignored, and the values of every matching
// sample are summed (so {"http_route", "/"} counts all methods and statuses).
#pragma once

#include <loupe/runtime/metrics.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::testkit {

using metric_labels = std::map<std::string, std::string, std::less<>>;
/// One sample line of the text format (loupe::metrics::sample).
using metric_sample = metrics::sample;

/// Every sample line of `exposition` (comments skipped; escaped label values unescaped).
std::vector<metric_sample> parse_metrics(std::string_view exposition);

/// The sum of the samples named `name` whose labels include `want`, or
/// std::nullopt when there is none.
std::optional<double> metric_value(std::string_view exposition, std::string_view name, const metric_labels& want = {});

}  // namespace loupe::testkit
