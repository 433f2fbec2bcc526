// Finds the diagnostic socket a .NET runtime publishes, the way the runtime names it:
// "<TMPDIR>/dotnet-diagnostic-<nspid>-<starttime>-socket", where TMPDIR is the target's own
// (from its environ, default /tmp) and nspid its pid in its own pid namespace. The directory
// is reached through /proc/<pid>/root so processes in other mount namespaces are found too.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/procfs/k8s_identity.h"
#include "core/procfs/procfs.h"

namespace clrdiag::procfs {

struct DiagnosticSocket {
  pid_t host_pid = 0;  // pid in our pid namespace
  pid_t ns_pid = 0;    // pid in the target's namespace (the one in the socket name)
  std::string tmpdir;  // the target's TMPDIR as it sees it, always ending in '/'
  std::string path;    // host-reachable path: <root>/<pid>/root/<tmpdir>/<name>
  uint64_t key = 0;    // the disambiguation key from the name
};

// Returns the socket of `pid`, or NotFound with a message that says why (no socket, maybe
// DOTNET_EnableDiagnostics=0). When several files match, prefers the one whose key equals the
// process start time, then the newest. A socket file whose owner process is gone is never
// returned because only live pids are considered.
absl::StatusOr<DiagnosticSocket> FindDiagnosticSocket(const ProcFs& fs, pid_t pid);

// What procfs tells about a candidate process.
struct ProcessFacts {
  pid_t pid = 0;
  pid_t ns_pid = 0;
  std::string name;                  // from the exe basename, else comm
  std::string exe;                   // /proc/<pid>/exe target ("" if unreadable)
  std::vector<std::string> cmdline;  // argv
  uid_t uid = 0;
  uint64_t start_time = 0;
  uint64_t rss_bytes = 0;
  DiagnosticSocket socket;
  K8sIdentity k8s;  // container and pod identity; empty fields outside containers and pods
};

// Every live process with a diagnostic socket, ascending by pid. `self` is excluded.
// Processes that vanish or cannot be read during the scan are skipped silently.
std::vector<ProcessFacts> ScanDotnetProcesses(const ProcFs& fs, pid_t self);

// Facts for one pid; NotFound if it does not exist, FailedPrecondition if it has no socket
// (the message names the likely cause and what to do).
absl::StatusOr<ProcessFacts> InspectProcess(const ProcFs& fs, pid_t pid);

}  // namespace clrdiag::procfs
