// The daemon's typed configuration, loaded strictly from YAML: an unknown key, a value of the
// wrong type or out of range is an error naming its key path; all errors are reported at once.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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

struct DaemonConfig {
  std::vector<ListenAddress> listen;  // resolved: "unix:default" is replaced by the real path
  bool insecure_tcp = false;
  mode_t socket_mode = 0660;
  std::string socket_group;  // empty: the daemon's primary group
  std::string dump_dir;      // resolved absolute path
  std::string log_level = "info";
  int max_concurrent_collections = 2;
  absl::Duration process_info_timeout = absl::Milliseconds(500);
  AnalysisLimits analysis;
  std::vector<DiagnosticPortConfig> diagnostic_ports;  // listen mode; empty: off
};

// Defaults for the calling user (see config/clrdiagd.yaml).
DaemonConfig DefaultConfig();

// Parses YAML text over DefaultConfig(). `source` names the file in messages.
absl::StatusOr<DaemonConfig> ParseConfig(const std::string& yaml_text, const std::string& source);
absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// "unix:PATH", "unix:default", or "host:port"; InvalidArgument otherwise.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// A diagnostic port path with default options; InvalidArgument for a relative or too long
// path, or one with ',' or ';' (which DOTNET_DiagnosticPorts cannot carry).
absl::StatusOr<DiagnosticPortConfig> ParseDiagnosticPort(const std::string& path);

// Checks that only make sense on the whole (e.g. TCP without TLS).
absl::Status ValidateConfig(const DaemonConfig& config);

}  // namespace clrdiag::config
