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
#include "core/procfs/discovery.h"

namespace clrdiag::inventory {

struct DotnetProcess {
  procfs::ProcessFacts facts;
  std::string user;  // name of facts.uid, or "" if unknown
  std::optional<ipc::ProcessInfo> runtime;
  std::string runtime_error;  // why `runtime` is missing
};

class Inventory {
 public:
  Inventory(const procfs::ProcFs& fs, absl::Duration query_timeout)
      : fs_(fs), timeout_(query_timeout) {}

  // Every .NET process, sorted by name then pid (dotnet-dump's order).
  std::vector<DotnetProcess> List();

  // Processes whose name equals `name`; NotFound if none (the message says so).
  absl::StatusOr<std::vector<DotnetProcess>> FindByName(const std::string& name);

 private:
  void Enrich(std::vector<DotnetProcess>& procs);

  const procfs::ProcFs& fs_;
  absl::Duration timeout_;
  std::mutex mu_;
  // (pid, start time) → answer. Pruned to live processes on every List().
  std::map<std::pair<pid_t, uint64_t>, ipc::ProcessInfo> cache_;
};

}  // namespace clrdiag::inventory
