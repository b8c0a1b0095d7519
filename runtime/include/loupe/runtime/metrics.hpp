// loupe/runtime/metrics.hpp — Prometheus metrics (prometheus-cpp's core).
//
// Every root application owns a registry (`app.metrics()`); its server
// records HTTP metrics there, and the application registers its own:
//
//   auto& orders = prometheus::BuildCounter()
//                      .Name("shop_orders_total").Help("Orders placed.")
//                      .Register(app.metrics());
//   auto& placed = orders.Add({{"kind", "web"}});   // resolve once, keep the reference
//   ...
//   placed.Increment();                             // per request: an atomic add
//
// `app.add_metrics_route("/metrics")` (done by run_app) serves the text
// exposition format 0.0.4 with `exposition(app.metrics())`: the application's
// registry, then everything process-wide:
//
//   http_server_requests_total{http_request_method,http_route,http_response_status_code}
//   http_server_request_duration_seconds           histogram, same labels, 0.5 ms .. 10 s
//   http_server_request_body_size_bytes, http_server_response_body_size_bytes
//   http_server_active_requests{loop}, http_server_open_connections{loop},
//   http_server_connections_accepted_total{loop}
//   http_client_requests_total{http_request_method,server_address,http_response_status_code,error_type}
//   http_client_request_duration_seconds           histogram, same labels
//   loupe_loop_callback_duration_seconds{loop} (its _count is the callbacks run),
//   loupe_loop_slow_callbacks_total, loupe_loop_lag_seconds, loupe_loop_stalls_total,
//   loupe_tasks{loop}, loupe_tasks_spawned_total, loupe_tasks_finished_total{loop,outcome}
//   loupe_log_records_dropped_total
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_open_fds, process_max_fds, process_start_time_seconds
//
// Label values follow the OpenTelemetry HTTP conventions: a method outside
// the standard nine is `_OTHER`; a request that matched no route has
// `http_route="_unmatched"` (never the raw path). Loop and task series are
// read from the loops at scrape time, so they cost nothing per callback
// beyond the loop's own counters.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}

namespace loupe {
class application;
}

namespace loupe::metrics {

/// The Content-Type of `exposition()`.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of a request that matched no route.
inline constexpr std::string_view unmatched_route = "_unmatched";

/// Process-wide series: HTTP client sessions, and (at scrape time) loops,
/// tasks, the log writer and the process itself.
prometheus::Registry& process_registry();

/// The text exposition of `app_registry` followed by the process-wide series.
std::string exposition(const prometheus::Registry& app_registry);
/// What `app`'s metrics route serves: its root's registry, what mounted
/// sub-applications registered, and the process-wide series.
std::string exposition(application& app);

/// One sample line of the text format: `name{labels} value`.
struct sample {
  std::string name;
  std::map<std::string, std::string, std::less<>> labels;
  double value = 0;
};
/// Every sample line of a text exposition (comments skipped; escaped label
/// values unescaped). For the console and tests.
std::vector<sample> parse_exposition(std::string_view text);

/// The OpenTelemetry `http.request.method` value: the method if it is one
/// of the nine standard ones, otherwise "_OTHER".
std::string_view method_label(std::string_view method) noexcept;

}  // namespace loupe::metrics
