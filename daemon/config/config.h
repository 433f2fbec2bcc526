// The daemon's typed configuration, loaded strictly from YAML: an unknown key, a value of the
// wrong type or out of range is an error naming its key path; all errors are reported at once.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/automation/rules.h"

namespace clrdiag::config {

struct ListenAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string address;  // socket path for kUnix, "host:port" for kTcp
  std::string ToString() const;
};

// Limits of analysis sessions (config key `analysis`).
struct AnalysisLimits {
  int max_sessions = 8;                                // at once, all users
  int max_sessions_per_user = 4;                       // at once, per uid
  absl::Duration idle_timeout = absl::Minutes(30);     // no command for this long: closed
  absl::Duration command_timeout = absl::Minutes(10);  // one command longer: cancelled
  int max_command_output_mib = 256;                    // one command's output; the rest is cut off
  int worker_memory_mib = 8192;  // the worker's data (heap) limit, RLIMIT_DATA
  // Build gcroot's heap graph in the background (nice 19) when a dump enters the catalog.
  bool prebuild_heap_graph = true;
  // Kept workers: when a session ends, its worker (dump open, DAC loaded, heap graph mapped)
  // may wait this long for the next session on the same dump by the same caller; at most
  // warm_workers of them (0: none kept), none above warm_worker_max_rss_mib resident.
  int warm_workers = 2;
  absl::Duration warm_worker_idle = absl::Seconds(60);
  int warm_worker_max_rss_mib = 1024;
};

// The metrics port (config key `metrics`): Prometheus /metrics, /healthz, /readyz over HTTP.
struct MetricsConfig {
  std::string listen;  // "IPV4:PORT"; empty: off
};

// The dump store's safety: retention (config key `retention`) and the free-space preflight
// (config key `store`). Each retention limit 0 = unlimited.
struct StoreSafety {
  absl::Duration max_age = absl::ZeroDuration();  // retention.max_age: "7d", "36h", 0
  uint64_t max_total_mib = 0;                     // retention.max_total_mib
  uint64_t max_count = 0;                         // retention.max_count
  // retention.check_interval: how often max_age is applied while no collection happens.
  absl::Duration check_interval = absl::Minutes(10);
  bool preflight = true;                  // store.preflight
  uint64_t free_space_reserve_mib = 256;  // store.free_space_reserve_mib
};

// TLS for TCP listeners (config key `tls`). Paths to PEM files.
struct TlsConfig {
  std::string cert;       // the server's certificate chain
  std::string key;        // its private key
  std::string client_ca;  // when set: client certificates are requested and verified (mTLS)
  bool enabled() const { return !cert.empty(); }
};

// One remote identity (config key `auth.identities[]`): a client certificate (matched by its
// subject CN or a SAN) and/or a bearer token (its SHA-256, hex), with a role.
struct IdentityConfig {
  std::string name;
  std::string role;          // viewer, collector, analyst, admin
  std::string cert;          // subject CN or SAN of the client certificate; empty: none
  std::string token_sha256;  // 64 lower-case hex digits; empty: none
};

// Who may do what (config key `auth`).
struct AuthConfig {
  // Members of this group (primary or supplementary) on the unix socket may do everything,
  // like root. "default": `clrdiag-admin` if that group exists, else none.
  std::string admin_group = "default";
  std::vector<IdentityConfig> identities;
};

// The audit log (config key `audit`).
struct AuditConfig {
  std::string path;  // resolved: empty in the file ("default") means <dump_dir>/audit.jsonl
};

// One listen-mode diagnostic port (config `diagnostic_ports[]`, flag --diagnostic-port):
// runtimes started with DOTNET_DiagnosticPorts=<path> connect to it.
struct DiagnosticPortConfig {
  std::string path;    // the unix socket the daemon listens on (absolute, < 108 bytes)
  mode_t mode = 0666;  // permission bits of the socket: the app's user must connect
  bool resume = true;  // send ResumeRuntime to runtimes waiting at start-up
  // For runtimes out of the daemon's /proc (another pid namespace): a directory both see, as
  // the daemon sees it and as the app sees it. Empty: the socket's directory, same path.
  std::string dump_dir;
  std::string dump_dir_in_app;
};

// Crash capture from the runtime's own crash dumps (config key `crash_dumps`; see
// core/dump/crash_ingest.h and docs/crash-capture.md).
struct CrashDumpDirConfig {
  std::string path;           // absolute
  std::string type = "Heap";  // what the apps were told to write (DOTNET_DbgMiniDumpType)
};
struct CrashDumpsConfig {
  std::vector<CrashDumpDirConfig> directories;  // empty: off
  absl::Duration settle = absl::Milliseconds(500);
  absl::Duration scan_interval = absl::Seconds(5);
};

struct DaemonConfig {
  std::vector<ListenAddress> listen;  // resolved: "unix:default" is replaced by the real path
  bool insecure = false;              // plaintext TCP allowed (config key `insecure`)
  TlsConfig tls;
  AuthConfig auth;
  AuditConfig audit;
  mode_t socket_mode = 0660;
  // "default": `clrdiag` if that group exists, else the daemon's primary group; empty: the
  // daemon's primary group.
  std::string socket_group = "default";
  std::string dump_dir;  // resolved absolute path
  std::string log_level = "info";
  int max_concurrent_collections = 2;
  absl::Duration process_info_timeout = absl::Milliseconds(500);
  AnalysisLimits analysis;
  MetricsConfig metrics;
  StoreSafety store;
  std::vector<DiagnosticPortConfig> diagnostic_ports;  // listen mode; empty: off
  CrashDumpsConfig crash_dumps;
  // Collection rules, egress targets and the engine's settings (keys `collection_rules`,
  // `egress`, `automation`); no rules: the automation engine does not run.
  automation::AutomationConfig automation;
};

// Defaults for the calling user (see config/clrdiagd.yaml).
DaemonConfig DefaultConfig();

// Parses YAML text over DefaultConfig(). `source` names the file in messages.
absl::StatusOr<DaemonConfig> ParseConfig(const std::string& yaml_text, const std::string& source);
absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// "unix:PATH", "unix:default", or "host:port"; InvalidArgument otherwise.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// "default" → `default_group` if that group exists on this host, else "" (none).
std::string ResolveGroupSetting(const std::string& value, const char* default_group);

// The metrics port's address: "IPV4:PORT" or "localhost:PORT" (as 127.0.0.1), normalized;
// InvalidArgument otherwise (also for IPv6: the HTTP library is built without it). Port 0 picks
// a free port.
absl::StatusOr<std::string> ParseMetricsAddress(const std::string& text);

// A diagnostic port path with default options; InvalidArgument for a relative or too long
// path, or one with ',' or ';' (which DOTNET_DiagnosticPorts cannot carry).
absl::StatusOr<DiagnosticPortConfig> ParseDiagnosticPort(const std::string& path);

// Checks that only make sense on the whole (e.g. TCP without TLS).
absl::Status ValidateConfig(const DaemonConfig& config);

}  // namespace clrdiag::config
