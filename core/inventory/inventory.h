// The .NET processes on this host: procfs facts plus what each runtime says of itself
// (ProcessInfo3 → 2 → 1), queried in parallel with a short deadline and cached per process
// instance (pid + start time) since those facts never change during a process's life.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/ipc/codec.h"
#include "core/listen/listen_server.h"
#include "core/procfs/discovery.h"

namespace clrdiag::inventory {

struct DotnetProcess {
  procfs::ProcessFacts facts;
  std::string user;  // name of facts.uid, or "" if unknown
  std::optional<ipc::ProcessInfo> runtime;
  std::string runtime_error;  // why `runtime` is missing
  // Set when the runtime is connected to one of the daemon's diagnostic ports (listen mode).
  std::optional<listen::RuntimeSnapshot> listen;
  // Known only through a listen port: the process is not in the daemon's /proc (another pid
  // namespace). facts.pid/ns_pid are then the advertised pid, and name, exe and cmdline come
  // from the runtime's ProcessInfo (cmdline split on spaces).
  bool listen_only = false;
};

class Inventory {
 public:
  Inventory(const procfs::ProcFs& fs, absl::Duration query_timeout)
      : fs_(fs), timeout_(query_timeout) {}

  // Runtimes connected to these diagnostic ports are listed too (may be null; not owned).
  void SetListenServer(listen::ListenServer* server) { listen_ = server; }

  // Every .NET process, sorted by name then pid (dotnet-dump's order). A runtime that is both
  // in /proc and connected to a listen port (the same runtime cookie) is listed once, with
  // `listen` set.
  std::vector<DotnetProcess> List();

  // Processes whose name equals `name`; NotFound if none (the message says so).
  absl::StatusOr<std::vector<DotnetProcess>> FindByName(const std::string& name);

 private:
  void Enrich(std::vector<DotnetProcess>& procs);
  void AddListenRuntimes(std::vector<DotnetProcess>& procs);

  const procfs::ProcFs& fs_;
  absl::Duration timeout_;
  listen::ListenServer* listen_ = nullptr;
  std::mutex mu_;
  // (pid, start time) → answer. Pruned to live processes on every List().
  std::map<std::pair<pid_t, uint64_t>, ipc::ProcessInfo> cache_;
};

}  // namespace clrdiag::inventory
