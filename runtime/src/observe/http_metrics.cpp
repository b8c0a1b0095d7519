// The HTTP server and client metric families (http_server_*, http_client_*)
// and their caches: series resolved once per route, method and status.
#include "observe/http_metrics.hpp"

#include <array>

namespace loupe {

namespace detail {

namespace {
constexpr std::array<std::string_view, 10> method_names{"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                        "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER"};
}  // namespace

std::uint8_t method_index(std::string_view method) noexcept {
  for (std::size_t i = 0; i + 1 < method_names.size(); ++i)
    if (method == method_names[i]) return static_cast<std::uint8_t>(i);
  return static_cast<std::uint8_t>(method_names.size() - 1);
}

std::string_view method_name(std::uint8_t index) noexcept {
  return method_names[index < method_names.size() ? index : method_names.size() - 1];
}

const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

const prometheus::Histogram::BucketBoundaries& size_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0,     64,     256,     1024,    4096,     16384,
                                                         65536, 262144, 1048576, 4194304, 16777216, 67108864};
  return b;
}

http_server_families::http_server_families(prometheus::Registry& r)
    : requests(prometheus::BuildCounter()
                   .Name("http_server_requests_total")
                   .Help("HTTP requests answered, by method, route template and status code.")
                   .Register(r)),
      duration(prometheus::BuildHistogram()
                   .Name("http_server_request_duration_seconds")
                   .Help("Time from a request's headers to the end of its response.")
                   .Register(r)),
      request_size(prometheus::BuildHistogram()
                       .Name("http_server_request_body_size_bytes")
                       .Help("Size of request bodies.")
                       .Register(r)),
      response_size(prometheus::BuildHistogram()
                        .Name("http_server_response_body_size_bytes")
                        .Help("Size of response bodies sent.")
                        .Register(r)),
      active(prometheus::BuildGauge()
                 .Name("http_server_active_requests")
                 .Help("Requests being handled now, by loop.")
                 .Register(r)),
      open_connections(prometheus::BuildGauge()
                           .Name("http_server_open_connections")
                           .Help("Client connections open now, by loop.")
                           .Register(r)),
      accepted(prometheus::BuildCounter()
                   .Name("http_server_connections_accepted_total")
                   .Help("Client connections accepted, by loop.")
                   .Register(r)),
      tls_handshakes(prometheus::BuildCounter()
                         .Name("http_server_tls_handshakes_total")
                         .Help("TLS handshakes completed, by loop and protocol version.")
                         .Register(r)),
      tls_handshake_failures(prometheus::BuildCounter()
                                 .Name("http_server_tls_handshake_failures_total")
                                 .Help("TLS handshakes that failed, by loop and reason.")
                                 .Register(r)) {}

http_series& http_server_series::get(const std::string* route, std::uint8_t method, unsigned status) {
  const key k{route, (static_cast<std::uint32_t>(method) << 16) | (status & 0xffff)};
  auto it = map_.find(k);
  if (it != map_.end()) return it->second;
  const prometheus::Labels labels{{"http_request_method", std::string(method_name(method))},
                                  {"http_route", route ? *route : std::string(metrics::unmatched_route)},
                                  {"http_response_status_code", std::to_string(status)}};
  http_series s;
  s.requests = &families_.requests.Add(labels);
  s.duration = &families_.duration.Add(labels, duration_buckets());
  s.request_size = &families_.request_size.Add(labels, size_buckets());
  s.response_size = &families_.response_size.Add(labels, size_buckets());
  return map_.emplace(k, s).first->second;
}

http_client_families::http_client_families(prometheus::Registry& r)
    : requests(prometheus::BuildCounter()
                   .Name("http_client_requests_total")
                   .Help("HTTP requests made by client sessions, by method, server and status code "
                         "(error_type names the failure when there was no response).")
                   .Register(r)),
      duration(prometheus::BuildHistogram()
                   .Name("http_client_request_duration_seconds")
                   .Help("Time from sending a request to having its whole response.")
                   .Register(r)) {}

http_client_families& http_client_families::get() {
  static http_client_families f(metrics::process_registry());
  return f;
}

void http_client_series::observe(std::string_view host, std::uint8_t method, unsigned status, std::string_view error,
                                 double seconds) {
  std::string k;
  k.reserve(host.size() + error.size() + 8);
  k.append(host).append(1, '\0').append(std::to_string(method * 1000 + status)).append(1, '\0').append(error);
  auto it = map_.find(k);
  if (it == map_.end()) {
    auto& f = http_client_families::get();
    const prometheus::Labels labels{{"http_request_method", std::string(method_name(method))},
                                    {"server_address", std::string(host)},
                                    {"http_response_status_code", status ? std::to_string(status) : std::string()},
                                    {"error_type", std::string(error)}};
    series s{&f.requests.Add(labels), &f.duration.Add(labels, duration_buckets())};
    it = map_.emplace(std::move(k), s).first;
  }
  it->second.requests->Increment();
  it->second.duration->Observe(seconds);
}

}  // namespace detail

namespace metrics {

std::string_view method_label(std::string_view method) noexcept {
  return detail::method_name(detail::method_index(method));
}

}  // namespace metrics

}  // namespace loupe
