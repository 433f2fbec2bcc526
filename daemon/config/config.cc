#include "daemon/config/config.h"

#include <yaml-cpp/yaml.h>

#include <set>

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
  // Reports keys of `node` not in `known`.
  void CheckKeys(const YAML::Node& node, const std::string& path,
                 const std::set<std::string>& known) {
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>("");
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

}  // namespace

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
              {"listen", "insecure_tcp", "socket", "dump_dir", "log_level", "limits", "analysis"});
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
  if (auto n = root["insecure_tcp"]) w.Bool(n, "insecure_tcp", &c.insecure_tcp);
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
  if (absl::Status st = w.Result(); !st.ok()) return st;
  return c;
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
    if (a.kind == ListenAddress::Kind::kTcp && !c.insecure_tcp) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen: ", a.address,
          ": TCP requires TLS, which this build does not configure yet; use a unix socket, or "
          "set insecure_tcp: true to accept plaintext TCP on a trusted network"));
    }
  }
  return absl::OkStatus();
}

}  // namespace clrdiag::config
