// Private: the HTTP server and client metric families, and the per-loop
// caches that resolve their series once per (route, method, status).
#pragma once

#include <loupe/runtime/metrics.hpp>

#include <boost/unordered/unordered_flat_map.hpp>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::detail {

/// Index of an OpenTelemetry method label: 0..8 the standard methods, 9 "_OTHER".
std::uint8_t method_index(std::string_view method) noexcept;
std::string_view method_name(std::uint8_t index) noexcept;

/// Request duration buckets, in seconds: 0.5 ms .. 10 s.
const prometheus::Histogram::BucketBoundaries& duration_buckets();
/// Body size buckets, in bytes: 0 .. 64 MiB.
const prometheus::Histogram::BucketBoundaries& size_buckets();

/// The server families of one root application (shared by all its loops).
struct http_server_families {
  explicit http_server_families(prometheus::Registry& r);
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& request_size;
  prometheus::Family<prometheus::Histogram>& response_size;
  prometheus::Family<prometheus::Gauge>& active;
  prometheus::Family<prometheus::Gauge>& open_connections;
  prometheus::Family<prometheus::Counter>& accepted;
  prometheus::Family<prometheus::Counter>& tls_handshakes;          // by loop and TLS version
  prometheus::Family<prometheus::Counter>& tls_handshake_failures;  // by loop and reason
};

/// What an application owns for metrics.
struct app_metrics {
  app_metrics() : registry(std::make_shared<prometheus::Registry>()), server(*registry) {}
  std::shared_ptr<prometheus::Registry> registry;
  http_server_families server;
  /// Registries of sub-applications mounted below (directly or not): what
  /// they registered before being mounted is scraped with this one.
  std::vector<std::shared_ptr<prometheus::Registry>> mounted;
};

/// The exposition of an application's registry, its mounted ones (families of
/// the same name merged) and the process-wide series.
std::string exposition(const app_metrics& m);

/// The series of one (route, method, status).
struct http_series {
  prometheus::Counter* requests = nullptr;
  prometheus::Histogram* duration = nullptr;
  prometheus::Histogram* request_size = nullptr;
  prometheus::Histogram* response_size = nullptr;
};

/// One server's (one loop's) cache of resolved series. Only its loop's
/// thread uses it; Family::Add runs once per key.
class http_server_series {
 public:
  explicit http_server_series(http_server_families& f) : families_(f) {}
  /// `route` is the matched route's template (its address is the key), or
  /// nullptr for a request that matched none.
  http_series& get(const std::string* route, std::uint8_t method, unsigned status);

  /// Records one finished request.
  void observe(const std::string* route, std::uint8_t method, unsigned status, double seconds, std::size_t request_bytes,
               std::size_t response_bytes) {
    auto& s = get(route, method, status);
    s.requests->Increment();
    s.duration->Observe(seconds);
    s.request_size->Observe(static_cast<double>(request_bytes));
    s.response_size->Observe(static_cast<double>(response_bytes));
  }

 private:
  struct key {
    const std::string* route;
    std::uint32_t method_status;
    bool operator==(const key&) const = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      return std::hash<const void*>()(k.route) * 31 + k.method_status;
    }
  };
  http_server_families& families_;
  boost::unordered_flat_map<key, http_series, key_hash> map_;
};

/// The client families (process-wide).
struct http_client_families {
  static http_client_families& get();
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;

 private:
  explicit http_client_families(prometheus::Registry& r);
};

/// One client session's cache of resolved series.
class http_client_series {
 public:
  struct series {
    prometheus::Counter* requests = nullptr;
    prometheus::Histogram* duration = nullptr;
  };
  /// `status` is 0 when there was no response; `error` names what failed.
  void observe(std::string_view host, std::uint8_t method, unsigned status, std::string_view error, double seconds);

 private:
  boost::unordered_flat_map<std::string, series> map_;
};

}  // namespace loupe::detail
