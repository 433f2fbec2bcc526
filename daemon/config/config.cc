#include "daemon/config/config.h"

#include <arpa/inet.h>
#include <grp.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
               "diagnostic_ports", "crash_dumps"});
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
                   "max_command_output_mib", "worker_memory_mib"});
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
