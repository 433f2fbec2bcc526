#include "daemon/metrics/registry.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>

namespace clrdiag::metrics {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "metrics registry: %s\n", what.c_str());
  std::abort();
}

bool ValidName(const std::string& s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckLabels(const std::string& family, size_t want, size_t got) {
  if (want != got) {
    Die(family + ": " + std::to_string(got) + " label values for " + std::to_string(want) +
        " labels");
  }
}

// {a="x",b="y"} plus an optional extra pair (a histogram's le); nothing when there are no labels.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     const char* extra_name = nullptr, const std::string& extra_value = "") {
  if (names.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (extra_name != nullptr) {
    if (!names.empty()) out += ',';
    out += std::string(extra_name) + "=\"" + extra_value + "\"";
  }
  out += '}';
  return out;
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integral values (counts, bytes) exactly, without an exponent, up to 2^53.
  if (v == std::trunc(v) && std::fabs(v) <= 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  return std::string(buf, res.ptr);
}

void CounterFamily::Inc(const std::vector<std::string>& label_values, double by) {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  CheckLabels("counter", label_count_, label_values.size());
  double& v = values_[label_values];
  if (by > 0) v += by;
}

double CounterFamily::Value(const std::vector<std::string>& label_values) const {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  auto it = values_.find(label_values);
  return it == values_.end() ? 0 : it->second;
}

void GaugeFamily::Set(const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  CheckLabels("gauge", label_count_, label_values.size());
  values_[label_values] = value;
}

double GaugeFamily::Value(const std::vector<std::string>& label_values) const {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  auto it = values_.find(label_values);
  return it == values_.end() ? 0 : it->second;
}

void HistogramFamily::Observe(const std::vector<std::string>& label_values, double value) {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  CheckLabels("histogram", label_count_, label_values.size());
  Series& s = values_[label_values];
  if (s.buckets.empty()) s.buckets.assign(bounds_.size() + 1, 0);
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++s.buckets[i];
  s.sum += value;
  ++s.count;
}

uint64_t HistogramFamily::Count(const std::vector<std::string>& label_values) const {
  std::lock_guard<std::mutex> lock(registry_->mu_);
  auto it = values_.find(label_values);
  return it == values_.end() ? 0 : it->second.count;
}

Registry::Family& Registry::Add(const std::string& name, const std::string& help, Type type,
                                std::vector<std::string> label_names) {
  if (!ValidName(name, /*allow_colon=*/true)) Die("invalid metric name '" + name + "'");
  std::set<std::string> seen;
  for (const auto& l : label_names) {
    if (!ValidName(l, /*allow_colon=*/false) || l.rfind("__", 0) == 0 ||
        (type == Type::kHistogram && l == "le") || !seen.insert(l).second) {
      Die(name + ": invalid or repeated label name '" + l + "'");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) {
    if (f->name == name) Die("metric '" + name + "' registered twice");
  }
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = help;
  f->type = type;
  f->label_names = std::move(label_names);
  families_.push_back(std::move(f));
  return *families_.back();
}

CounterFamily* Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  Family& f = Add(name, help, Type::kCounter, std::move(label_names));
  f.counter.reset(new CounterFamily(this, f.label_names.size()));
  return f.counter.get();
}

GaugeFamily* Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  Family& f = Add(name, help, Type::kGauge, std::move(label_names));
  f.gauge.reset(new GaugeFamily(this, f.label_names.size()));
  return f.gauge.get();
}

HistogramFamily* Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (std::isnan(bounds[i]) || std::isinf(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Die(name + ": histogram bounds must be finite and ascending");
    }
  }
  Family& f = Add(name, help, Type::kHistogram, std::move(label_names));
  f.histogram.reset(new HistogramFamily(this, f.label_names.size(), std::move(bounds)));
  return f.histogram.get();
}

void Registry::AddScrapeHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

void Registry::RenderFamily(const Family& f, std::string* out) const {
  static const char* const kTypeNames[] = {"counter", "gauge", "histogram"};
  *out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
  *out += "# TYPE " + f.name + " " + kTypeNames[static_cast<int>(f.type)] + "\n";
  const std::map<std::vector<std::string>, double>* plain = nullptr;
  if (f.counter) plain = &f.counter->values_;
  if (f.gauge) plain = &f.gauge->values_;
  if (plain != nullptr) {
    for (const auto& [labels, value] : *plain) {
      *out += f.name + LabelSet(f.label_names, labels) + " " + FormatValue(value) + "\n";
    }
    return;
  }
  const HistogramFamily& h = *f.histogram;
  for (const auto& [labels, s] : h.values_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h.bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      std::string le = i < h.bounds_.size() ? FormatValue(h.bounds_[i]) : "+Inf";
      *out += f.name + "_bucket" + LabelSet(f.label_names, labels, "le", le) + " " +
              std::to_string(cumulative) + "\n";
    }
    *out += f.name + "_sum" + LabelSet(f.label_names, labels) + " " + FormatValue(s.sum) + "\n";
    *out +=
        f.name + "_count" + LabelSet(f.label_names, labels) + " " + std::to_string(s.count) + "\n";
  }
}

std::string Registry::Render() {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) RenderFamily(*f, &out);
  return out;
}

}  // namespace clrdiag::metrics
