#include "daemon/metrics/daemon_metrics.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace clrdiag::metrics {

DaemonMetrics::DaemonMetrics(const std::string& version, const MetricSources& sources) {
  Registry& r = registry_;
  r.AddGauge("clrdiag_build_info", "clrdiagd build; the value is always 1.", {"version"})
      ->Set({version}, 1);
  r.AddGauge("clrdiag_start_time_seconds", "When clrdiagd started, in seconds since the epoch.")
      ->Set({}, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  collections_ =
      r.AddCounter("clrdiag_collections_total",
                   "Dump collections by dump type and result (ok, or the failure's status code).",
                   {"type", "result"});
  for (const char* type : {"full", "heap", "mini", "triage"}) collections_->Inc({type, "ok"}, 0);
  collection_seconds_ = r.AddHistogram("clrdiag_collection_duration_seconds",
                                       "Time to take a dump and store it, by dump type.", {"type"},
                                       CollectionDurationBuckets());
  requests_ = r.AddCounter("clrdiag_grpc_requests_total",
                           "Finished gRPC requests by service, method and status code.",
                           {"service", "method", "code"});

  if (sources.store_totals) {
    GaugeFamily* dumps = r.AddGauge("clrdiag_store_dumps", "Dumps in the catalog.");
    GaugeFamily* bytes =
        r.AddGauge("clrdiag_store_bytes", "Total size of the dumps in the catalog, in bytes.");
    r.AddScrapeHook([dumps, bytes, f = sources.store_totals] {
      MetricSources::StoreTotals t = f();
      dumps->Set({}, static_cast<double>(t.dumps));
      bytes->Set({}, static_cast<double>(t.bytes));
    });
  }
  if (sources.store_free_bytes) {
    GaugeFamily* free =
        r.AddGauge("clrdiag_store_free_bytes", "Free bytes on the filesystem of the dump store.");
    r.AddScrapeHook(
        [free, f = sources.store_free_bytes] { free->Set({}, static_cast<double>(f())); });
  }
  if (sources.active_sessions) {
    GaugeFamily* sessions =
        r.AddGauge("clrdiag_analysis_sessions", "Analysis sessions open now (one worker each).");
    r.AddScrapeHook(
        [sessions, f = sources.active_sessions] { sessions->Set({}, static_cast<double>(f())); });
  }
}

void DaemonMetrics::ObserveCollection(const std::string& type, const absl::Status& result,
                                      absl::Duration duration) {
  std::string t = absl::AsciiStrToLower(type);
  std::string r =
      result.ok() ? "ok" : absl::AsciiStrToLower(absl::StatusCodeToString(result.code()));
  collections_->Inc({t, r});
  collection_seconds_->Observe({t}, absl::ToDoubleSeconds(duration));
}

void DaemonMetrics::ObserveRpc(const std::string& full_method, int code) {
  // "/clrdiag.v1.Diagnostics/ListProcesses" -> service, method.
  absl::string_view m = full_method;
  if (!m.empty() && m[0] == '/') m.remove_prefix(1);
  size_t slash = m.find('/');
  std::string service = slash == absl::string_view::npos ? "" : std::string(m.substr(0, slash));
  std::string method =
      slash == absl::string_view::npos ? std::string(m) : std::string(m.substr(slash + 1));
  requests_->Inc({service, method, GrpcCodeName(code)});
}

std::string DaemonMetrics::GrpcCodeName(int code) {
  // gRPC and absl number their status codes alike, and absl names them.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace clrdiag::metrics
