// Dump collection through the target's own runtime: the runtime (createdump) writes the dump
// into a private directory inside the target's filesystem, which the daemon reaches through
// /proc/<pid>/root; the daemon then moves it into the catalog with the runtime files that
// offline analysis needs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/cancel.h"
#include "core/dump/dump_store.h"
#include "core/ipc/client.h"
#include "core/procfs/procfs.h"

namespace clrdiag::dump {

enum class CollectPhase { kRequesting, kWriting, kStoring, kRuntimeFiles };

struct CollectProgress {
  CollectPhase phase = CollectPhase::kRequesting;
  uint64_t bytes = 0;
  uint64_t total_bytes = 0;
  std::string message;
};

// Receives progress, at most ~4 times a second per phase. Calls to ProgressFn and DataFn never
// overlap (they come from one thread at a time).
using ProgressFn = std::function<void(const CollectProgress&)>;
// Receives the dump's bytes in order while the runtime writes them: (file, offset, data, size),
// where `file` is an fd of the dump being written (valid during the call; dup it to keep it),
// for consumers that copy in the kernel instead of from `data`.
using DataFn = std::function<void(int, uint64_t, const char*, size_t)>;

// A runtime that connected to one of the daemon's diagnostic ports (listen mode): commands go
// through `endpoint` (its pooled connections) instead of the runtime's own socket.
struct ReverseTarget {
  std::shared_ptr<ipc::Endpoint> endpoint;
  // true: CollectRequest::pid is the process's pid in the daemon's /proc (the same runtime,
  // by its cookie), and the dump is written through /proc/<pid>/root as usual. false: the
  // process is out of the daemon's sight (another pid namespace); the runtime writes the dump
  // into `shared_dir_in_app`, which the daemon reads as `shared_dir`, and the facts below
  // (from ProcessInfo over the connection) stand in for /proc's.
  bool pid_visible = false;
  std::string shared_dir;
  std::string shared_dir_in_app;
  std::string cookie_hex;  // one collection per runtime at a time
  std::string name;
  std::string command_line;
  std::string runtime_version;
  std::string runtime_identifier;
};

struct CollectRequest {
  pid_t pid = 0;  // host pid; with a hidden ReverseTarget, the runtime's advertised pid
  DumpKind kind = DumpKind::kFull;
  bool diag = false;
  bool crash_report = false;
  uid_t requested_by = 0;
  std::optional<ReverseTarget> reverse;
};

struct CollectorOptions {
  // Named limit: collections running at once across all targets.
  int max_concurrent_collections = 2;
  // How long to wait for the runtime's ProcessInfo before collecting without it.
  absl::Duration process_info_timeout = absl::Seconds(2);
  // Refuse Full and Heap dumps the store (or the target's temp directory) cannot hold, from an
  // estimate of their size (preflight.h), keeping `free_space_reserve_bytes` free in the store.
  bool preflight = true;
  uint64_t free_space_reserve_bytes = uint64_t{256} << 20;
};

// For DumpStore's StoreOptions::on_interrupted: removes the private temp directory that a
// collection interrupted by a crash of the daemon left in the target's filesystem (through
// /proc/<pid>/root while the same process lives, else directly when the target shared the
// daemon's root). `note` is what Collect saved in the staging directory. Returns a line for
// the log.
std::string RecoverInterruptedCollection(const procfs::ProcFs& fs, const std::string& id,
                                         const std::string& note);

class Collector {
 public:
  Collector(const procfs::ProcFs& fs, DumpStore* store, CollectorOptions options)
      : fs_(fs), store_(store), options_(options) {}

  // Collects one dump. Errors: NotFound (no such pid), FailedPrecondition (not a .NET process
  // / diagnostics disabled / runtime refused, with the runtime's own text), Unavailable
  // (process exited during collection), ResourceExhausted (busy target, global limit, the
  // preflight estimate does not fit, or the store ran out of space). On any error nothing is
  // left in the catalog or the target. After a dump is committed, the store's retention runs
  // (never removing the new dump).
  // `on_data` (may be empty) sees every byte of the dump as it is stored; the bytes are only
  // valid if Collect succeeds (its result carries their sha256).
  absl::StatusOr<DumpMeta> Collect(const CollectRequest& request, const ProgressFn& progress,
                                   const DataFn& on_data, const CancellationToken& cancel);

 private:
  // RAII slot: one collection per pid, and the global limit.
  class Slot;
  absl::Status Acquire(const std::string& key, pid_t pid);
  // Refuses a Full or Heap dump that would not fit (CollectorOptions::preflight).
  absl::Status Preflight(const CollectRequest& req, const std::string& tmp_dir, int tmp_fd,
                         bool same_fs);
  void Release(const std::string& key);

  const procfs::ProcFs& fs_;
  DumpStore* store_;
  CollectorOptions options_;
  std::mutex mu_;
  std::set<std::string> busy_;  // "pid:<host pid>" or "listen:<cookie>"
};

}  // namespace clrdiag::dump
