// The daemon's start-up and teardown, as named steps.
#pragma once

#include <string>
#include <vector>

namespace clrdiag {

struct DaemonFlags {
  std::string config_path;          // empty: /etc/clrdiag/clrdiagd.yaml if present, else defaults
  std::vector<std::string> listen;  // overrides the config's list when non-empty
  std::string dump_dir;             // overrides the config when non-empty
  std::string log_level;            // overrides the config when non-empty
  // Listen-mode diagnostic ports; replace the config's `diagnostic_ports` when non-empty.
  std::vector<std::string> diagnostic_ports;
  bool check_config = false;
  std::string metrics_listen;  // overrides the config's metrics.listen when non-empty
};

// `clrdiagd --hash-token`: reads a bearer token from stdin, prints its SHA-256 (hex) for
// auth.identities[].token_sha256. Returns the exit code.
int RunHashToken();

// Runs until SIGTERM/SIGINT; returns the process exit code.
int RunDaemon(const DaemonFlags& flags);

}  // namespace clrdiag
