#include "daemon/config/config.h"

#include <arpa/inet.h>
#include <grp.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/egress_prefix.h"
#include "core/base/fs.h"
#include "core/base/paths.h"

namespace clrdiag::config {
namespace {

// Collects errors with their key paths while walking the document.
class Walker {
 public:
  explicit Walker(std::string source) : source_(std::move(source)) {}
  void Error(const std::string& path, const std::string& msg) {
    errors_.push_back(absl::StrCat(source_, ": ", path, ": ", msg));
  }
  // Reports keys of `node` not in `known`, keys that are not plain names, and repeated keys
  // (YAML parsers keep one of the values silently).
  void CheckKeys(const YAML::Node& node, const std::string& path,
                 const std::set<std::string>& known) {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        Error(path.empty() ? "(top level)" : path, "a key must be a plain name");
        continue;
      }
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        Error(path.empty() ? key : path + "." + key, "duplicate key");
        continue;
      }
      if (!known.count(key)) {
        Error(path.empty() ? key : absl::StrCat(path, ".", key),
              absl::StrCat("unknown key (known: ", absl::StrJoin(known.begin(), known.end(), ", "),
                           ")"));
      }
    }
  }
  bool Scalar(const YAML::Node& n, const std::string& path, std::string* out) {
    if (!n.IsScalar()) {
      Error(path, "expected a single value");
      return false;
    }
    *out = n.Scalar();
    return true;
  }
  void Bool(const YAML::Node& n, const std::string& path, bool* out) {
    std::string s;
    if (!Scalar(n, path, &s)) return;
    if (s == "true" || s == "yes" || s == "on") {
      *out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      *out = false;
    } else {
      Error(path, "expected true or false");
    }
  }
  void Int(const YAML::Node& n, const std::string& path, int lo, int hi, int* out) {
    std::string s;
    int v = 0;
    if (!Scalar(n, path, &s)) return;
    if (!absl::SimpleAtoi(s, &v) || v < lo || v > hi) {
      Error(path, absl::StrCat("expected an integer from ", lo, " to ", hi, ", got '", s, "'"));
      return;
    }
    *out = v;
  }
  // "bad duration" for automation keys: 500ms, 5s, 2m, 1h, 1d (days too).
  bool RuleDuration(const YAML::Node& n, const std::string& path, absl::Duration* out) {
    std::string s;
    if (!Scalar(n, path, &s)) return false;
    absl::Duration d;
    int64_t days = 0;
    if (absl::EndsWith(s, "d") && absl::SimpleAtoi(s.substr(0, s.size() - 1), &days) && days >= 0 &&
        days <= 3650) {
      *out = absl::Hours(24 * days);
      return true;
    }
    if (s == "0" || (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration() && s != "inf")) {
      *out = s == "0" ? absl::ZeroDuration() : d;
      return true;
    }
    Error(path, absl::StrCat("bad duration \"", s, "\" (use e.g. 500ms, 5s, 10m, 1h, 7d)"));
    return false;
  }
  void Duration(const YAML::Node& n, const std::string& path, absl::Duration* out) {
    std::string s;
    absl::Duration d;
    if (!Scalar(n, path, &s)) return;
    if (!absl::ParseDuration(s, &d) || d < absl::ZeroDuration()) {
      Error(path, absl::StrCat("expected a duration like 500ms, 2s or 5m, got '", s, "'"));
      return;
    }
    *out = d;
  }
  absl::Status Result() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// A non-negative count or size in a 64-bit key.
void U64(Walker& w, const YAML::Node& n, const std::string& path, uint64_t* out) {
  std::string s;
  uint64_t v = 0;
  if (!w.Scalar(n, path, &s)) return;
  if (!absl::SimpleAtoi(s, &v) || v > (uint64_t{1} << 40)) {
    w.Error(path, absl::StrCat("expected a whole number, 0 or more, got '", s, "'"));
    return;
  }
  *out = v;
}

// `crash_dumps` (see config/clrdiagd.yaml).
void ParseCrashDumps(Walker& w, const YAML::Node& n, CrashDumpsConfig* out) {
  if (!n.IsMap()) {
    w.Error("crash_dumps",
            "expected a mapping like {directories: [{path: /var/lib/clrdiag/crash}]}");
    return;
  }
  w.CheckKeys(n, "crash_dumps", {"directories", "settle", "scan_interval"});
  if (n["settle"]) w.Duration(n["settle"], "crash_dumps.settle", &out->settle);
  if (n["scan_interval"]) {
    w.Duration(n["scan_interval"], "crash_dumps.scan_interval", &out->scan_interval);
    if (out->scan_interval < absl::Milliseconds(100)) {
      w.Error("crash_dumps.scan_interval", "must be at least 100ms");
    }
  }
  const YAML::Node& dirs = n["directories"];
  if (!dirs) return;
  if (!dirs.IsSequence()) {
    w.Error("crash_dumps.directories", "expected a list like [{path: /var/lib/clrdiag/crash}]");
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string path = absl::StrCat("crash_dumps.directories[", i, "]");
    const YAML::Node& e = dirs[i];
    if (!e.IsMap()) {
      w.Error(path, "expected a mapping with at least `path`");
      continue;
    }
    w.CheckKeys(e, path, {"path", "type"});
    CrashDumpDirConfig d;
    std::string s;
    if (!e["path"]) {
      w.Error(path + ".path", "missing: the directory the apps write crash dumps into");
    } else if (w.Scalar(e["path"], path + ".path", &s)) {
      if (s.empty() || s[0] != '/') {
        w.Error(path + ".path", absl::StrCat("must be an absolute path, got '", s, "'"));
      } else if (!seen.insert(s).second) {
        w.Error(path + ".path", absl::StrCat(s, " is listed twice"));
      } else {
        d.path = s;
      }
    }
    if (e["type"] && w.Scalar(e["type"], path + ".type", &s)) {
      std::string t = absl::AsciiStrToLower(s);
      if (t == "full" || t == "heap" || t == "mini" || t == "triage") {
        d.type = s;
      } else {
        w.Error(path + ".type", absl::StrCat("expected Full, Heap, Mini or Triage, got '", s, "'"));
      }
    }
    out->directories.push_back(d);
  }
}

// `retention` and `store` (see config/clrdiagd.yaml).
void ParseStoreSafety(const YAML::Node& root, Walker& w, StoreSafety* out) {
  if (auto n = root["retention"]) {
    if (!n.IsMap()) {
      w.Error("retention", "expected a mapping");
    } else {
      w.CheckKeys(n, "retention", {"max_age", "max_total_mib", "max_count", "check_interval"});
      if (n["check_interval"]) {
        std::string ci;
        absl::Duration d;
        if (w.Scalar(n["check_interval"], "retention.check_interval", &ci)) {
          if (absl::ParseDuration(ci, &d) && d >= absl::Seconds(1) && d <= absl::Hours(24)) {
            out->check_interval = d;
          } else {
            w.Error("retention.check_interval",
                    absl::StrCat("expected a duration from 1s to 24h, like 10m, got '", ci, "'"));
          }
        }
      }
      std::string s;
      if (n["max_age"] && w.Scalar(n["max_age"], "retention.max_age", &s)) {
        // Days are what retention is usually said in; absl durations stop at hours.
        int64_t days = 0;
        absl::Duration d;
        if (absl::EndsWith(s, "d") && absl::SimpleAtoi(s.substr(0, s.size() - 1), &days) &&
            days >= 0) {
          out->max_age = absl::Hours(24 * days);
        } else if (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration()) {
          out->max_age = d;
        } else {
          w.Error("retention.max_age",
                  absl::StrCat("expected an age like 7d, 36h or 0 (keep forever), got '", s, "'"));
        }
      }
      if (n["max_total_mib"])
        U64(w, n["max_total_mib"], "retention.max_total_mib", &out->max_total_mib);
      if (n["max_count"]) U64(w, n["max_count"], "retention.max_count", &out->max_count);
    }
  }
  if (auto n = root["store"]) {
    if (!n.IsMap()) {
      w.Error("store", "expected a mapping");
    } else {
      w.CheckKeys(n, "store", {"preflight", "free_space_reserve_mib"});
      if (n["preflight"]) w.Bool(n["preflight"], "store.preflight", &out->preflight);
      if (n["free_space_reserve_mib"]) {
        U64(w, n["free_space_reserve_mib"], "store.free_space_reserve_mib",
            &out->free_space_reserve_mib);
      }
    }
  }
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

// The keys `tls`, `auth` and `audit`.
void ParseSecurity(const YAML::Node& root, Walker* w, DaemonConfig* c) {
  auto path_key = [&](const YAML::Node& n, const std::string& key, std::string* out) {
    std::string s;
    if (!w->Scalar(n, key, &s)) return;
    if (s.empty() || s[0] != '/') {
      w->Error(key, absl::StrCat("must be an absolute path, got '", s, "'"));
      return;
    }
    *out = s;
  };
  if (auto n = root["tls"]) {
    if (!n.IsMap()) {
      w->Error("tls", "expected a mapping");
    } else {
      w->CheckKeys(n, "tls", {"cert", "key", "client_ca"});
      if (n["cert"]) path_key(n["cert"], "tls.cert", &c->tls.cert);
      if (n["key"]) path_key(n["key"], "tls.key", &c->tls.key);
      if (n["client_ca"]) path_key(n["client_ca"], "tls.client_ca", &c->tls.client_ca);
      if (c->tls.cert.empty() != c->tls.key.empty()) {
        w->Error("tls", "cert and key go together: give both");
      }
      if (!c->tls.client_ca.empty() && c->tls.cert.empty()) {
        w->Error("tls.client_ca", "needs tls.cert and tls.key (the server's own certificate)");
      }
    }
  }
  if (auto n = root["auth"]) {
    if (!n.IsMap()) {
      w->Error("auth", "expected a mapping");
    } else {
      w->CheckKeys(n, "auth", {"admin_group", "identities"});
      if (n["admin_group"]) w->Scalar(n["admin_group"], "auth.admin_group", &c->auth.admin_group);
      if (auto ids = n["identities"]) {
        if (!ids.IsSequence()) {
          w->Error("auth.identities", "expected a list");
        } else {
          std::set<std::string> names;
          for (size_t i = 0; i < ids.size(); ++i) {
            std::string p = absl::StrCat("auth.identities[", i, "]");
            const YAML::Node& e = ids[i];
            if (!e.IsMap()) {
              w->Error(p, "expected a mapping with name, role, and cert and/or token_sha256");
              continue;
            }
            w->CheckKeys(e, p, {"name", "role", "cert", "token_sha256"});
            IdentityConfig id;
            if (e["name"]) w->Scalar(e["name"], p + ".name", &id.name);
            if (e["role"]) w->Scalar(e["role"], p + ".role", &id.role);
            if (e["cert"]) w->Scalar(e["cert"], p + ".cert", &id.cert);
            if (e["token_sha256"])
              w->Scalar(e["token_sha256"], p + ".token_sha256", &id.token_sha256);
            if (id.name.empty())
              w->Error(p + ".name", "every identity needs a name (for the audit log)");
            if (!id.name.empty() && !names.insert(id.name).second) {
              w->Error(p + ".name", absl::StrCat("'", id.name, "' is used twice"));
            }
            static const std::set<std::string> kRoles = {"viewer", "collector", "analyst", "admin"};
            if (!kRoles.count(id.role)) {
              w->Error(p + ".role",
                       absl::StrCat("expected viewer, collector, analyst or admin, got '", id.role,
                                    "'"));
            }
            if (id.cert.empty() && id.token_sha256.empty()) {
              w->Error(p, "give cert (a client certificate's CN or SAN) and/or token_sha256");
            }
            if (!id.token_sha256.empty() && !IsHex64(id.token_sha256)) {
              w->Error(p + ".token_sha256",
                       "expected 64 lower-case hex digits (make one with: clrdiagd --hash-token)");
            }
            c->auth.identities.push_back(id);
          }
        }
      }
    }
  }
  if (auto n = root["audit"]) {
    if (!n.IsMap()) {
      w->Error("audit", "expected a mapping");
    } else {
      w->CheckKeys(n, "audit", {"path"});
      if (n["path"]) {
        std::string s;
        if (w->Scalar(n["path"], "audit.path", &s) && s != "default") {
          path_key(n["path"], "audit.path", &c->audit.path);
        }
      }
    }
  }
}

// ---- Automation: `automation`, `egress`, `collection_rules` (core/automation/rules.h). ----

void Double(Walker& w, const YAML::Node& n, const std::string& path, std::optional<double>* out) {
  std::string s;
  double v = 0;
  if (!w.Scalar(n, path, &s)) return;
  if (!absl::SimpleAtod(s, &v) || !std::isfinite(v)) {
    w.Error(path, absl::StrCat("expected a number, got '", s, "'"));
    return;
  }
  *out = v;
}

void PatternKey(Walker& w, const YAML::Node& n, const std::string& path,
                std::optional<automation::Pattern>* out) {
  std::string s;
  if (!w.Scalar(n, path, &s)) return;
  if (s.empty()) {
    w.Error(path, "empty pattern (give a name or a glob such as 'Shop*')");
    return;
  }
  *out = automation::Pattern{s};
}

void ParseEgress(const YAML::Node& root, Walker& w, automation::AutomationConfig* out) {
  auto n = root["egress"];
  if (!n) return;
  if (!n.IsMap()) {
    w.Error("egress",
            "expected a mapping of names to targets, e.g. local: {type: filesystem, "
            "directory: /var/lib/clrdiag/egress}");
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      w.Error("egress", "a key must be a plain name");
      continue;
    }
    const std::string name = kv.first.Scalar();
    const std::string p = "egress." + name;
    if (!seen.insert(name).second) {
      w.Error(p, "duplicate key");
      continue;
    }
    bool name_ok = !name.empty() && name.size() <= 64;
    for (char ch : name) {
      name_ok &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
    }
    if (!name_ok) {
      w.Error(p, "an egress name is 1 to 64 of letters, digits, '-' and '_'");
      continue;
    }
    const YAML::Node& e = kv.second;
    if (!e.IsMap()) {
      w.Error(p, "expected a mapping with `type` (filesystem or s3)");
      continue;
    }
    automation::EgressConfig eg;
    eg.name = name;
    std::string type;
    if (!e["type"]) {
      w.Error(p + ".type", "missing: filesystem or s3");
      continue;
    }
    if (!w.Scalar(e["type"], p + ".type", &type)) continue;
    auto abs_path = [&](const char* key, std::string* dst, bool required) {
      if (!e[key]) {
        if (required) w.Error(p + "." + key, "missing");
        return;
      }
      std::string s;
      if (!w.Scalar(e[key], p + "." + key, &s)) return;
      if (s.empty() || s[0] != '/') {
        w.Error(p + "." + key, absl::StrCat("must be an absolute path, got '", s, "'"));
        return;
      }
      *dst = s;
    };
    auto text = [&](const char* key, std::string* dst, bool required) {
      if (!e[key]) {
        if (required) w.Error(p + "." + key, "missing");
        return;
      }
      std::string s;
      if (!w.Scalar(e[key], p + "." + key, &s)) return;
      if (required && s.empty()) {
        w.Error(p + "." + key, "must not be empty");
        return;
      }
      *dst = s;
    };
    if (type == "filesystem") {
      eg.type = automation::EgressConfig::Type::kFilesystem;
      w.CheckKeys(e, p, {"type", "directory", "prefix"});
      abs_path("directory", &eg.directory, true);
    } else if (type == "s3") {
      eg.type = automation::EgressConfig::Type::kS3;
      w.CheckKeys(e, p,
                  {"type", "endpoint", "bucket", "region", "access_key_id",
                   "secret_access_key_file", "path_style", "prefix"});
      text("endpoint", &eg.endpoint, true);
      if (!eg.endpoint.empty() && !absl::StartsWith(eg.endpoint, "http://") &&
          !absl::StartsWith(eg.endpoint, "https://")) {
        w.Error(p + ".endpoint",
                absl::StrCat("expected http://host[:port] or https://host[:port], got '",
                             eg.endpoint, "'"));
      }
      text("bucket", &eg.bucket, true);
      // S3 bucket names: 3..63 of [a-z0-9.-], starting and ending with a letter or digit.
      if (!eg.bucket.empty()) {
        bool ok = eg.bucket.size() >= 3 && eg.bucket.size() <= 63;
        for (char ch : eg.bucket) {
          ok &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
        }
        ok &= std::isalnum(static_cast<unsigned char>(eg.bucket.front())) &&
              std::isalnum(static_cast<unsigned char>(eg.bucket.back()));
        if (!ok) {
          w.Error(p + ".bucket",
                  absl::StrCat("'", eg.bucket,
                               "' is not a bucket name (3 to 63 of a-z, 0-9, '.' and '-')"));
        }
      }
      text("region", &eg.region, false);
      if (eg.region.empty()) w.Error(p + ".region", "must not be empty (e.g. us-east-1)");
      text("access_key_id", &eg.access_key_id, true);
      abs_path("secret_access_key_file", &eg.secret_access_key_file, true);
      if (e["path_style"]) w.Bool(e["path_style"], p + ".path_style", &eg.path_style);
    } else {
      w.Error(p + ".type",
              absl::StrCat("unknown egress type '", type, "' (known: filesystem, s3)"));
      continue;
    }
    if (e["prefix"]) {
      std::string s;
      if (w.Scalar(e["prefix"], p + ".prefix", &s)) {
        if (absl::Status st = ValidateEgressPrefix(s); !st.ok()) {
          w.Error(p + ".prefix", std::string(st.message()));
        } else if (absl::StartsWith(s, "/")) {
          w.Error(p + ".prefix", "must be relative (it is put under the directory or bucket)");
        } else {
          eg.prefix = s;
        }
      }
    }
    out->egress.push_back(std::move(eg));
  }
}

// Counter shortcuts (dotnet-monitor's trigger shortcuts): System.Runtime counters.
struct Shortcut {
  const char* name;
  const char* counter;
  double default_greater_than;
};
constexpr Shortcut kShortcuts[] = {
    {"gc_heap_size", "gc-heap-size", 10},  // MB
    {"cpu_usage", "cpu-usage", 50},        // %
    {"threadpool_queue_length", "threadpool-queue-length", 200},
    {"exception_rate", "exception-count", 10},  // per counter interval
};

void ParseTrigger(const YAML::Node& t, const std::string& p, Walker& w,
                  const automation::AutomationOptions& opts, automation::Trigger* out) {
  if (!t.IsMap()) {
    w.Error(p, "expected a mapping with `type`, e.g. {type: working_set, greater_than: 500}");
    return;
  }
  std::string type;
  if (!t["type"]) {
    w.Error(p + ".type", "missing");
    return;
  }
  if (!w.Scalar(t["type"], p + ".type", &type)) return;
  using automation::TriggerType;
  static const std::set<std::string> kThresholdKeys = {"type", "greater_than", "less_than",
                                                       "window"};
  const Shortcut* shortcut = nullptr;
  for (const auto& s : kShortcuts) {
    if (type == s.name) shortcut = &s;
  }
  out->counter_interval = opts.counter_interval;
  if (type == "startup") {
    out->type = TriggerType::kStartup;
    w.CheckKeys(t, p, {"type"});
    return;
  }
  if (type == "crash") {
    out->type = TriggerType::kCrash;
    w.CheckKeys(t, p, {"type", "exception", "capture", "confirm_window", "speculative"});
    std::optional<automation::Pattern> ty;
    if (t["exception"]) PatternKey(w, t["exception"], p + ".exception", &ty);
    out->exception_type = ty ? *ty : automation::Pattern{"*"};
    std::string capture;
    if (t["capture"] && w.Scalar(t["capture"], p + ".capture", &capture)) {
      using C = automation::Trigger::CrashCapture;
      if (capture == "runtime") {
        out->crash_capture = C::kRuntime;
      } else if (capture == "eventpipe") {
        out->crash_capture = C::kEventPipe;
      } else if (capture == "both") {
        out->crash_capture = C::kBoth;
      } else {
        w.Error(p + ".capture",
                absl::StrCat("unknown capture '", capture, "' (known: runtime, eventpipe, both)"));
      }
    }
    if (t["confirm_window"] &&
        w.RuleDuration(t["confirm_window"], p + ".confirm_window", &out->confirm_window) &&
        (out->confirm_window < absl::Milliseconds(100) || out->confirm_window > absl::Minutes(1))) {
      w.Error(p + ".confirm_window", "must be from 100ms to 1m");
    }
    if (auto sp = t["speculative"]) {
      const std::string sk = p + ".speculative";
      if (!sp.IsMap()) {
        w.Error(sk, "expected a mapping like {max: 3, window: 10m}");
      } else {
        w.CheckKeys(sp, sk, {"max", "window"});
        if (sp["max"]) w.Int(sp["max"], sk + ".max", 1, 1000, &out->speculative_max);
        if (sp["window"] &&
            w.RuleDuration(sp["window"], sk + ".window", &out->speculative_window) &&
            out->speculative_window <= absl::ZeroDuration()) {
          w.Error(sk + ".window", "must be more than 0");
        }
      }
    }
    if (!out->crash_eventpipe() && (t["confirm_window"] || t["speculative"])) {
      w.Error(p + ".capture", "confirm_window and speculative apply to capture: eventpipe or both");
    }
    return;
  }
  if (type == "exception") {
    out->type = TriggerType::kException;
    w.CheckKeys(t, p, {"type", "exception_type", "message"});
    std::optional<automation::Pattern> ty;
    if (t["exception_type"]) {
      PatternKey(w, t["exception_type"], p + ".exception_type", &ty);
    }
    out->exception_type = ty ? *ty : automation::Pattern{"*"};
    if (t["message"]) PatternKey(w, t["message"], p + ".message", &out->exception_message);
    return;
  }
  if (type == "working_set") {
    out->type = TriggerType::kWorkingSet;
  } else if (type == "cpu") {
    out->type = TriggerType::kCpu;
  } else if (type == "threads") {
    out->type = TriggerType::kThreads;
  } else if (type == "fds") {
    out->type = TriggerType::kFds;
  } else if (type == "counter" || shortcut) {
    out->type = TriggerType::kCounter;
  } else {
    w.Error(p + ".type",
            absl::StrCat("unknown trigger type '", type,
                         "' (known: startup, working_set, cpu, threads, fds, counter, "
                         "gc_heap_size, cpu_usage, threadpool_queue_length, exception_rate, "
                         "exception, crash)"));
    return;
  }
  std::set<std::string> keys = kThresholdKeys;
  if (out->type == TriggerType::kCounter) keys.insert("interval");
  if (type == "counter") {
    keys.insert("provider");
    keys.insert("counter");
  }
  w.CheckKeys(t, p, keys);
  if (t["greater_than"]) Double(w, t["greater_than"], p + ".greater_than", &out->greater_than);
  if (t["less_than"]) Double(w, t["less_than"], p + ".less_than", &out->less_than);
  if (t["window"]) w.RuleDuration(t["window"], p + ".window", &out->window);
  if (t["interval"]) {
    absl::Duration d;
    if (w.RuleDuration(t["interval"], p + ".interval", &d)) {
      if (d < absl::Seconds(1) || d % absl::Seconds(1) != absl::ZeroDuration()) {
        w.Error(p + ".interval", "must be whole seconds, 1s or more (EventCounterIntervalSec)");
      } else {
        out->counter_interval = d;
      }
    }
  }
  if (shortcut) {
    out->shortcut = shortcut->name;
    out->provider = "System.Runtime";
    out->counter = shortcut->counter;
    // As dotnet-monitor: setting only less_than drops the greater_than default.
    if (!out->greater_than && !out->less_than) out->greater_than = shortcut->default_greater_than;
  } else if (type == "counter") {
    if (!t["provider"]) {
      w.Error(p + ".provider", "missing (e.g. System.Runtime)");
    } else {
      w.Scalar(t["provider"], p + ".provider", &out->provider);
    }
    if (!t["counter"]) {
      w.Error(p + ".counter", "missing (e.g. gc-heap-size)");
    } else {
      w.Scalar(t["counter"], p + ".counter", &out->counter);
    }
  }
  if (!out->greater_than && !out->less_than) {
    w.Error(p, absl::StrCat("a ", type, " trigger needs greater_than and/or less_than"));
  }
  if (out->greater_than && out->less_than && *out->greater_than >= *out->less_than) {
    w.Error(p, "greater_than must be below less_than (the value must lie between them)");
  }
  if (out->type == TriggerType::kCounter && !t["window"]) out->window = absl::Minutes(1);
  if (out->type == TriggerType::kCpu && !t["window"]) out->window = opts.poll_interval;
  if (out->type == TriggerType::kCpu && out->window < opts.poll_interval) {
    w.Error(p + ".window", "a cpu window must be at least automation.poll_interval");
  }
}

void ParseAutomation(const YAML::Node& root, Walker& w, automation::AutomationConfig* out) {
  if (auto n = root["automation"]) {
    if (!n.IsMap()) {
      w.Error("automation", "expected a mapping");
    } else {
      w.CheckKeys(n, "automation", {"poll_interval", "counter_interval", "event_buffer"});
      absl::Duration d;
      if (n["poll_interval"] &&
          w.RuleDuration(n["poll_interval"], "automation.poll_interval", &d)) {
        if (d < absl::Milliseconds(50) || d > absl::Hours(1)) {
          w.Error("automation.poll_interval", "must be from 50ms to 1h");
        } else {
          out->options.poll_interval = d;
        }
      }
      if (n["counter_interval"] &&
          w.RuleDuration(n["counter_interval"], "automation.counter_interval", &d)) {
        if (d < absl::Seconds(1) || d % absl::Seconds(1) != absl::ZeroDuration()) {
          w.Error("automation.counter_interval", "must be whole seconds, 1s or more");
        } else {
          out->options.counter_interval = d;
        }
      }
      if (n["event_buffer"]) {
        int v = 0;
        w.Int(n["event_buffer"], "automation.event_buffer", 10, 1000000, &v);
        if (v > 0) out->options.event_buffer = static_cast<size_t>(v);
      }
    }
  }
  ParseEgress(root, w, out);
  auto rules = root["collection_rules"];
  if (!rules) return;
  if (!rules.IsSequence()) {
    w.Error("collection_rules", "expected a list of rules");
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string p = absl::StrCat("collection_rules[", i, "]");
    const YAML::Node& r = rules[i];
    if (!r.IsMap()) {
      w.Error(p, "expected a mapping with name, trigger and action");
      continue;
    }
    w.CheckKeys(r, p, {"name", "filter", "trigger", "action", "limits"});
    automation::Rule rule;
    if (!r["name"]) {
      w.Error(p + ".name", "missing");
    } else if (w.Scalar(r["name"], p + ".name", &rule.name)) {
      bool ok = !rule.name.empty() && rule.name.size() <= 64;
      for (char ch : rule.name) {
        ok &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
      }
      if (!ok) {
        w.Error(p + ".name",
                absl::StrCat("'", rule.name, "': use 1 to 64 of letters, digits, '-', '_', '.'"));
      } else if (!names.insert(rule.name).second) {
        w.Error(p + ".name", absl::StrCat("'", rule.name, "' is used twice"));
      }
    }
    if (auto f = r["filter"]) {
      const std::string fp = p + ".filter";
      if (!f.IsMap()) {
        w.Error(fp, "expected a mapping, e.g. {process_name: Shop}");
      } else {
        w.CheckKeys(f, fp,
                    {"process_name", "command_line", "entry_assembly", "k8s_namespace", "pod",
                     "container_id"});
        automation::Filter& fl = rule.filter;
        if (f["process_name"])
          PatternKey(w, f["process_name"], fp + ".process_name", &fl.process_name);
        if (f["command_line"])
          PatternKey(w, f["command_line"], fp + ".command_line", &fl.command_line);
        if (f["entry_assembly"]) {
          PatternKey(w, f["entry_assembly"], fp + ".entry_assembly", &fl.entry_assembly);
        }
        if (f["k8s_namespace"]) {
          PatternKey(w, f["k8s_namespace"], fp + ".k8s_namespace", &fl.k8s_namespace);
        }
        if (f["pod"]) PatternKey(w, f["pod"], fp + ".pod", &fl.pod);
        if (f["container_id"])
          PatternKey(w, f["container_id"], fp + ".container_id", &fl.container_id);
      }
    }
    if (!r["trigger"]) {
      w.Error(p + ".trigger", "missing");
    } else {
      ParseTrigger(r["trigger"], p + ".trigger", w, out->options, &rule.trigger);
    }
    if (!r["action"]) {
      w.Error(p + ".action", "missing (e.g. {collect: {type: Mini}, egress: local})");
    } else if (auto a = r["action"]; !a.IsMap()) {
      w.Error(p + ".action", "expected a mapping with collect and optionally egress");
    } else {
      const std::string ap = p + ".action";
      w.CheckKeys(a, ap, {"collect", "egress"});
      if (auto c = a["collect"]) {
        const std::string cp = ap + ".collect";
        if (!c.IsMap()) {
          w.Error(cp, "expected a mapping, e.g. {type: Mini}");
        } else {
          w.CheckKeys(c, cp, {"type", "flags"});
          std::string ty;
          if (c["type"] && w.Scalar(c["type"], cp + ".type", &ty)) {
            static const char* kTypes[] = {"Full", "Heap", "Mini", "Triage"};
            bool found = false;
            for (const char* k : kTypes) {
              if (absl::EqualsIgnoreCase(ty, k)) {
                rule.action.collect.type = k;
                found = true;
              }
            }
            if (!found) {
              w.Error(cp + ".type", absl::StrCat("unknown dump type '", ty,
                                                 "' (known: Full, Heap, Mini, Triage)"));
            }
          }
          if (auto fl = c["flags"]) {
            if (!fl.IsSequence()) {
              w.Error(cp + ".flags", "expected a list, e.g. [diag, crash_report]");
            } else {
              for (size_t k = 0; k < fl.size(); ++k) {
                std::string s;
                const std::string kp = absl::StrCat(cp, ".flags[", k, "]");
                if (!w.Scalar(fl[k], kp, &s)) continue;
                if (s == "diag") {
                  rule.action.collect.diag = true;
                } else if (s == "crash_report") {
                  rule.action.collect.crash_report = true;
                } else {
                  w.Error(kp, absl::StrCat("unknown flag '", s, "' (known: diag, crash_report)"));
                }
              }
            }
          }
        }
      } else {
        w.Error(ap + ".collect", "missing (e.g. {type: Mini})");
      }
      if (auto e = a["egress"]) {
        std::vector<std::pair<std::string, std::string>> wanted;  // (name, key path)
        if (e.IsScalar()) {
          wanted.emplace_back(e.Scalar(), ap + ".egress");
        } else if (e.IsSequence()) {
          for (size_t k = 0; k < e.size(); ++k) {
            std::string s;
            const std::string kp = absl::StrCat(ap, ".egress[", k, "]");
            if (w.Scalar(e[k], kp, &s)) wanted.emplace_back(s, kp);
          }
        } else {
          w.Error(ap + ".egress", "expected an egress name or a list of names");
        }
        for (const auto& [name, kp] : wanted) {
          if (!out->FindEgress(name)) {
            std::vector<std::string> known;
            for (const auto& eg : out->egress) known.push_back(eg.name);
            w.Error(kp, absl::StrCat("no egress named '", name, "' (defined: ",
                                     known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
          } else {
            rule.action.egress.push_back(name);
          }
        }
      }
    }
    if (auto l = r["limits"]) {
      const std::string lp = p + ".limits";
      if (!l.IsMap()) {
        w.Error(lp, "expected a mapping, e.g. {action_count: 1, window: 1h}");
      } else {
        w.CheckKeys(l, lp, {"action_count", "window", "rule_duration", "cooldown", "per_process"});
        if (l["action_count"]) {
          w.Int(l["action_count"], lp + ".action_count", 1, 1000000, &rule.limits.action_count);
        }
        if (l["window"]) w.RuleDuration(l["window"], lp + ".window", &rule.limits.window);
        if (l["rule_duration"]) {
          w.RuleDuration(l["rule_duration"], lp + ".rule_duration", &rule.limits.rule_duration);
        }
        if (l["cooldown"]) w.RuleDuration(l["cooldown"], lp + ".cooldown", &rule.limits.cooldown);
        if (l["per_process"]) {
          w.Bool(l["per_process"], lp + ".per_process", &rule.limits.per_process);
        }
      }
    }
    out->rules.push_back(std::move(rule));
  }
}

}  // namespace

std::string ResolveGroupSetting(const std::string& value, const char* default_group) {
  if (value != "default") return value;
  return ::getgrnam(default_group) ? default_group : "";
}

std::string ListenAddress::ToString() const {
  return kind == Kind::kUnix ? "unix:" + address : address;
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  if (absl::StartsWith(text, "unix:")) {
    a.kind = ListenAddress::Kind::kUnix;
    a.address = text.substr(5);
    if (a.address == "default") a.address = DefaultSocketPath();
    if (a.address.empty() || a.address[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': a unix socket path must be absolute (unix:/path)"));
    }
    if (a.address.size() > 107) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': unix socket paths must be shorter than 108 bytes"));
    }
    return a;
  }
  size_t colon = text.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a listen address: use unix:/path or host:port"));
  }
  a.kind = ListenAddress::Kind::kTcp;
  a.address = text;
  return a;
}

absl::StatusOr<std::string> ParseMetricsAddress(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' ", why, ": use IPV4:PORT, e.g. 127.0.0.1:9464 or 0.0.0.0:9464"));
  };
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("has no port");
  std::string host = text.substr(0, colon);
  int port = -1;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return bad("has no valid port");
  }
  if (host == "localhost") host = "127.0.0.1";
  if (!host.empty() && host.front() == '[') {
    // Debian's civetweb is built without IPv6 (mg_check_feature(8) is 0).
    return bad("is IPv6, which the metrics server does not support");
  }
  in_addr addr;
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) return bad("has no valid IPv4 address");
  return absl::StrCat(host, ":", port);
}

DaemonConfig DefaultConfig() {
  DaemonConfig c;
  c.listen.push_back({ListenAddress::Kind::kUnix, DefaultSocketPath()});
  c.dump_dir = DefaultDumpDir();
  return c;
}

absl::StatusOr<DaemonConfig> ParseConfig(const std::string& text, const std::string& source) {
  DaemonConfig c = DefaultConfig();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid YAML: ", e.what()));
  }
  if (root.IsNull()) return c;
  if (!root.IsMap()) return absl::InvalidArgumentError(source + ": expected a mapping at the top");
  Walker w(source);
  w.CheckKeys(root, "",
              {"listen", "insecure", "insecure_tcp", "tls", "auth", "audit", "socket", "dump_dir",
               "log_level", "limits", "analysis", "retention", "store", "metrics",
               "diagnostic_ports", "crash_dumps", "automation", "collection_rules", "egress"});
  if (auto n = root["listen"]) {
    if (!n.IsSequence()) {
      w.Error("listen", "expected a list of addresses");
    } else {
      c.listen.clear();
      for (size_t i = 0; i < n.size(); ++i) {
        std::string s, path = absl::StrCat("listen[", i, "]");
        if (!w.Scalar(n[i], path, &s)) continue;
        auto a = ParseListenAddress(s);
        if (!a.ok()) {
          w.Error(path, std::string(a.status().message()));
        } else {
          c.listen.push_back(*a);
        }
      }
    }
  }
  if (auto n = root["insecure"]) w.Bool(n, "insecure", &c.insecure);
  if (root["insecure_tcp"]) {
    w.Error("insecure_tcp",
            "renamed: use `insecure: true` (plaintext TCP), or better configure tls");
  }
  ParseSecurity(root, &w, &c);
  if (auto n = root["socket"]) {
    if (!n.IsMap()) {
      w.Error("socket", "expected a mapping");
    } else {
      w.CheckKeys(n, "socket", {"mode", "group"});
      std::string s;
      if (n["mode"] && w.Scalar(n["mode"], "socket.mode", &s)) {
        char* end = nullptr;
        unsigned long m = std::strtoul(s.c_str(), &end, 8);
        if (s.empty() || *end != '\0' || m > 0777) {
          w.Error("socket.mode",
                  absl::StrCat("expected octal permission bits like \"0660\", got '", s, "'"));
        } else {
          c.socket_mode = static_cast<mode_t>(m);
        }
      }
      if (n["group"]) w.Scalar(n["group"], "socket.group", &c.socket_group);
    }
  }
  if (auto n = root["dump_dir"]) {
    std::string s;
    if (w.Scalar(n, "dump_dir", &s)) {
      if (s == "default") {
        c.dump_dir = DefaultDumpDir();
      } else if (s.empty() || s[0] != '/') {
        w.Error("dump_dir", absl::StrCat("must be an absolute path or 'default', got '", s, "'"));
      } else {
        c.dump_dir = s;
      }
    }
  }
  if (auto n = root["log_level"]) {
    std::string s;
    if (w.Scalar(n, "log_level", &s)) {
      static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
      if (!kLevels.count(s)) {
        w.Error("log_level", "expected one of trace, debug, info, warn, error");
      } else {
        c.log_level = s;
      }
    }
  }
  if (auto n = root["limits"]) {
    if (!n.IsMap()) {
      w.Error("limits", "expected a mapping");
    } else {
      w.CheckKeys(n, "limits", {"max_concurrent_collections", "process_info_timeout"});
      if (n["max_concurrent_collections"]) {
        w.Int(n["max_concurrent_collections"], "limits.max_concurrent_collections", 1, 64,
              &c.max_concurrent_collections);
      }
      if (n["process_info_timeout"]) {
        w.Duration(n["process_info_timeout"], "limits.process_info_timeout",
                   &c.process_info_timeout);
      }
    }
  }
  if (auto n = root["analysis"]) {
    if (!n.IsMap()) {
      w.Error("analysis", "expected a mapping");
    } else {
      w.CheckKeys(n, "analysis",
                  {"max_sessions", "max_sessions_per_user", "idle_timeout", "command_timeout",
                   "max_command_output_mib", "worker_memory_mib", "prebuild_heap_graph",
                   "warm_workers", "warm_worker_idle", "warm_worker_max_rss_mib"});
      AnalysisLimits& a = c.analysis;
      if (n["max_sessions"])
        w.Int(n["max_sessions"], "analysis.max_sessions", 1, 1024, &a.max_sessions);
      if (n["max_sessions_per_user"]) {
        w.Int(n["max_sessions_per_user"], "analysis.max_sessions_per_user", 1, 1024,
              &a.max_sessions_per_user);
      }
      if (n["idle_timeout"])
        w.Duration(n["idle_timeout"], "analysis.idle_timeout", &a.idle_timeout);
      if (n["command_timeout"]) {
        w.Duration(n["command_timeout"], "analysis.command_timeout", &a.command_timeout);
      }
      if (n["max_command_output_mib"]) {
        w.Int(n["max_command_output_mib"], "analysis.max_command_output_mib", 1, 1 << 20,
              &a.max_command_output_mib);
      }
      if (n["worker_memory_mib"]) {
        w.Int(n["worker_memory_mib"], "analysis.worker_memory_mib", 256, 1 << 24,
              &a.worker_memory_mib);
      }
      if (n["prebuild_heap_graph"]) {
        w.Bool(n["prebuild_heap_graph"], "analysis.prebuild_heap_graph", &a.prebuild_heap_graph);
      }
      if (n["warm_workers"]) {
        w.Int(n["warm_workers"], "analysis.warm_workers", 0, 64, &a.warm_workers);
      }
      if (n["warm_worker_idle"]) {
        w.Duration(n["warm_worker_idle"], "analysis.warm_worker_idle", &a.warm_worker_idle);
      }
      if (n["warm_worker_max_rss_mib"]) {
        w.Int(n["warm_worker_max_rss_mib"], "analysis.warm_worker_max_rss_mib", 16, 1 << 24,
              &a.warm_worker_max_rss_mib);
      }
    }
  }
  ParseStoreSafety(root, w, &c.store);
  if (auto n = root["metrics"]) {
    if (!n.IsMap()) {
      w.Error("metrics", "expected a mapping");
    } else {
      w.CheckKeys(n, "metrics", {"listen"});
      std::string listen;
      if (n["listen"] && !n["listen"].IsNull() &&
          w.Scalar(n["listen"], "metrics.listen", &listen) && !listen.empty()) {
        auto a = ParseMetricsAddress(listen);
        if (a.ok()) {
          c.metrics.listen = *a;
        } else {
          w.Error("metrics.listen", std::string(a.status().message()));
        }
      }
    }
  }
  if (auto n = root["diagnostic_ports"]) {
    if (!n.IsSequence()) {
      w.Error("diagnostic_ports", "expected a list of ports like {path: /diag/clrdiag.sock}");
    } else {
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string path = absl::StrCat("diagnostic_ports[", i, "]");
        const YAML::Node& e = n[i];
        if (!e.IsMap()) {
          w.Error(path, "expected a mapping with at least `path`");
          continue;
        }
        w.CheckKeys(e, path, {"path", "mode", "resume", "dump_dir", "dump_dir_in_app"});
        DiagnosticPortConfig port;
        std::string s;
        if (!e["path"]) {
          w.Error(path + ".path", "missing: the unix socket to listen on");
        } else if (w.Scalar(e["path"], path + ".path", &s)) {
          absl::StatusOr<DiagnosticPortConfig> parsed = ParseDiagnosticPort(s);
          if (!parsed.ok()) {
            w.Error(path + ".path", std::string(parsed.status().message()));
          } else {
            port = *parsed;
          }
        }
        if (e["mode"] && w.Scalar(e["mode"], path + ".mode", &s)) {
          char* end = nullptr;
          unsigned long m = std::strtoul(s.c_str(), &end, 8);
          if (s.empty() || *end != '\0' || m > 0777) {
            w.Error(path + ".mode",
                    absl::StrCat("expected octal permission bits like \"0666\", got '", s, "'"));
          } else {
            port.mode = static_cast<mode_t>(m);
          }
        }
        if (e["resume"]) w.Bool(e["resume"], path + ".resume", &port.resume);
        for (const char* key : {"dump_dir", "dump_dir_in_app"}) {
          if (e[key] && w.Scalar(e[key], path + "." + key, &s)) {
            if (s.empty() || s[0] != '/') {
              w.Error(path + "." + key, absl::StrCat("must be an absolute path, got '", s, "'"));
            } else {
              (std::string(key) == "dump_dir" ? port.dump_dir : port.dump_dir_in_app) = s;
            }
          }
        }
        c.diagnostic_ports.push_back(port);
      }
    }
  }
  if (auto n = root["crash_dumps"]) ParseCrashDumps(w, n, &c.crash_dumps);
  ParseAutomation(root, w, &c.automation);
  if (absl::Status st = w.Result(); !st.ok()) return st;
  return c;
}

absl::StatusOr<DiagnosticPortConfig> ParseDiagnosticPort(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': a diagnostic port must be an absolute socket path"));
  }
  if (path.size() > 107) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': unix socket paths must be shorter than 108 bytes"));
  }
  if (path.find(';') != std::string::npos || path.find(',') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path,
                     "': ',' and ';' separate tags and ports in DOTNET_DiagnosticPorts, so the "
                     "runtime could not name this path"));
  }
  DiagnosticPortConfig p;
  p.path = path;
  return p;
}

absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path) {
  auto text = ReadFileToString(path, 1 << 20);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("cannot read config ", path, ": ", text.status().message()));
  }
  return ParseConfig(*text, path);
}

absl::Status ValidateConfig(const DaemonConfig& c) {
  if (c.listen.empty()) return absl::InvalidArgumentError("listen: at least one address is needed");
  for (const auto& a : c.listen) {
    if (a.kind == ListenAddress::Kind::kTcp && !c.insecure && !c.tls.enabled()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen: ", a.address,
          ": TCP requires TLS: configure tls.cert and tls.key (and tls.client_ca for client "
          "certificates), or use a unix socket; `insecure: true` accepts plaintext TCP on a "
          "trusted network only"));
    }
  }
  std::set<std::string> ports;
  for (const auto& p : c.diagnostic_ports) {
    if (!ports.insert(p.path).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("diagnostic_ports: ", p.path, " is listed twice"));
    }
    for (const auto& a : c.listen) {
      if (a.kind == ListenAddress::Kind::kUnix && a.address == p.path) {
        return absl::InvalidArgumentError(absl::StrCat(
            "diagnostic_ports: ", p.path, " is also the daemon's client socket (listen)"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace clrdiag::config
