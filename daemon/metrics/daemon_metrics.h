// The daemon's metrics (all named clrdiag_*), on top of the generic registry:
//
//   clrdiag_build_info{version}                          1
//   clrdiag_start_time_seconds                           the daemon's start, Unix time
//   clrdiag_collections_total{type,result}               collections that reached the collector;
//                                                        result "ok" or the lower-case status
//                                                        code ("not_found", "unavailable", ...)
//   clrdiag_collection_duration_seconds{type}            histogram of those collections
//   clrdiag_store_dumps, clrdiag_store_bytes             dumps in the catalog and their total
//                                                        size (as `clrdiag dumps` lists them)
//   clrdiag_store_free_bytes                             free space on the store's filesystem
//   clrdiag_analysis_sessions                            analysis sessions open now
//   clrdiag_grpc_requests_total{service,method,code}     finished RPCs by gRPC status code
//
// The store and session gauges are read at scrape time through the sources given here.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/metrics/registry.h"

namespace clrdiag::metrics {

// Where scrape-time gauges come from; any may be empty (that gauge is then not reported).
struct MetricSources {
  struct StoreTotals {
    uint64_t dumps = 0;
    uint64_t bytes = 0;
  };
  std::function<StoreTotals()> store_totals;
  std::function<uint64_t()> store_free_bytes;
  std::function<size_t()> active_sessions;
};

// Bucket bounds of clrdiag_collection_duration_seconds: a Triage dump takes a fraction of a
// second, a Full dump of a large process minutes.
inline const std::vector<double>& CollectionDurationBuckets() {
  static const std::vector<double> kBounds = {0.1, 0.25, 0.5, 1,   2.5, 5,  10,
                                              20,  30,   60,  120, 300, 600};
  return kBounds;
}

class DaemonMetrics {
 public:
  DaemonMetrics(const std::string& version, const MetricSources& sources);

  // One collection that reached the collector; `type` is the dump kind's name (any case).
  void ObserveCollection(const std::string& type, const absl::Status& result,
                         absl::Duration duration);
  // One finished RPC. `full_method` is gRPC's "/package.Service/Method"; `code` its status.
  void ObserveRpc(const std::string& full_method, int code);

  // The exposition text for GET /metrics.
  std::string Render() { return registry_.Render(); }
  Registry& registry() { return registry_; }

  // gRPC's canonical name of a status code ("OK", "NOT_FOUND", ...); "UNKNOWN" when out of range.
  static std::string GrpcCodeName(int code);

 private:
  Registry registry_;
  CounterFamily* collections_;
  HistogramFamily* collection_seconds_;
  CounterFamily* requests_;
};

}  // namespace clrdiag::metrics
