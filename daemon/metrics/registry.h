// A small metrics registry: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format (version 0.0.4). Thread-safe; meant for a few dozen series
// updated at RPC rates, so one mutex guards everything.
//
// Families are registered once at start-up with constant names (a malformed name or a duplicate
// is a programming error and aborts). Series are created on first use of a label-value tuple;
// callers keep label values to small, closed sets (a dump type, a gRPC code), never ids or paths.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace clrdiag::metrics {

class Registry;

// Monotonic count, e.g. clrdiag_collections_total{type,result}.
class CounterFamily {
 public:
  // Adds `by` (>= 0; negative values are ignored) to the series with these label values, given
  // in the order of the family's label names.
  void Inc(const std::vector<std::string>& label_values, double by = 1);
  double Value(const std::vector<std::string>& label_values) const;

 private:
  friend class Registry;
  explicit CounterFamily(Registry* r, size_t labels) : registry_(r), label_count_(labels) {}
  Registry* registry_;
  size_t label_count_;
  std::map<std::vector<std::string>, double> values_;
};

// A value that goes up and down, e.g. clrdiag_analysis_sessions.
class GaugeFamily {
 public:
  void Set(const std::vector<std::string>& label_values, double value);
  double Value(const std::vector<std::string>& label_values) const;

 private:
  friend class Registry;
  explicit GaugeFamily(Registry* r, size_t labels) : registry_(r), label_count_(labels) {}
  Registry* registry_;
  size_t label_count_;
  std::map<std::vector<std::string>, double> values_;
};

// Observations in cumulative buckets (upper bounds, ascending; +Inf is implicit), with their sum
// and count, e.g. clrdiag_collection_duration_seconds{type}.
class HistogramFamily {
 public:
  void Observe(const std::vector<std::string>& label_values, double value);
  uint64_t Count(const std::vector<std::string>& label_values) const;

 private:
  friend class Registry;
  HistogramFamily(Registry* r, size_t labels, std::vector<double> bounds)
      : registry_(r), label_count_(labels), bounds_(std::move(bounds)) {}
  struct Series {
    std::vector<uint64_t> buckets;  // per bound, not cumulative; the last one is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Registry* registry_;
  size_t label_count_;
  std::vector<double> bounds_;
  std::map<std::vector<std::string>, Series> values_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*, not starting "__",
  // and not "le" for histograms. The returned families live as long as the registry.
  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds);

  // Runs before each Render(), outside the registry's lock: the place to Set() gauges whose
  // value is read from elsewhere at scrape time (the store, the session registry).
  void AddScrapeHook(std::function<void()> hook);

  // The text exposition: for each family in registration order, its # HELP and # TYPE lines and
  // its series sorted by label values. A family without series renders only its comments.
  std::string Render();

 private:
  friend class CounterFamily;
  friend class GaugeFamily;
  friend class HistogramFamily;
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<std::string> label_names;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  Family& Add(const std::string& name, const std::string& help, Type type,
              std::vector<std::string> label_names);
  void RenderFamily(const Family& f, std::string* out) const;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void()>> hooks_;
};

// Exposed for tests: the escaping and number formats of the text format.
std::string EscapeLabelValue(const std::string& value);  // \ " and newline
std::string EscapeHelp(const std::string& help);         // \ and newline
std::string FormatValue(double v);                       // integers exactly; +Inf, -Inf, NaN

}  // namespace clrdiag::metrics
