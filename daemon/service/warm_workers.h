// Warm analysis workers (config `analysis.warm_workers`, `analysis.warm_worker_idle`,
// `analysis.warm_worker_max_rss_mib`): when a session ends cleanly, its clrdiag-worker (dump
// open, DAC loaded, heap graph mapped) may wait idle for a while, and the next session on the
// same dump file by a caller with the same rights takes it over instead of starting a new one
// (the worker resets its per-session state when the new session's open request comes; see
// daemon/worker/worker_main.cc). That saves the worker's exec, the dump's opening and the DAC's
// loading: about 40 % of a warm `gcroot` (bench/README.md).
//
// Bounds: at most `max_workers` idle workers (the oldest goes first), none whose resident
// memory is above `max_rss_mib`, each ended after `idle` without a taker, all of a dump ended
// when it leaves the catalog (DropDump, from the store's on_removing hook), all ended when the
// daemon stops (destructor). A worker is only ever reused for the exact key it was kept under
// (the dump file's identity and the caller's rights), never after a crash or a killed command
// (the session handler keeps only workers that answered its last command).
//
// A catalog dump's background graph build (graph_prebuilder.h) also leaves its worker here when
// the graph is built (KeepPrebuilt), so that the dump's FIRST session starts warm too. That
// worker has served no one: the first session of any caller authorized to analyze the dump
// takes it (PrebuiltKey: the dump file and the worker arguments every session on it gets, no
// caller, no DAC directories of a caller's), and gets the caller's rights with its open request
// (OpenDump.host_access); after that session it is kept under that caller's key like any other.
// It takes a free place, or the place of the oldest idle prebuilt worker; never that of a
// worker a session left (a user is working on that dump; a new dump may never be looked at).
#pragma once

#include <sys/stat.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "daemon/worker/worker_process.h"

namespace clrdiag::service {

class WarmWorkers {
 public:
  struct Options {
    int max_workers = 0;  // 0: off (every worker ends with its session)
    absl::Duration idle = absl::Seconds(60);
    uint64_t max_rss_mib = 1024;
  };
  explicit WarmWorkers(Options options);
  ~WarmWorkers();  // ends every idle worker
  WarmWorkers(const WarmWorkers&) = delete;
  WarmWorkers& operator=(const WarmWorkers&) = delete;

  bool enabled() const { return options_.max_workers > 0; }
  // The idle worker kept under `key`, or null.
  std::unique_ptr<worker::WorkerProcess> Take(const std::string& key);
  // Keeps `w` idle under `key` (`dump_id`: its catalog dump, empty for a file outside the
  // catalog). Ends it instead when the pool is off or the worker is too big; makes room by
  // ending the oldest idle worker.
  void Keep(const std::string& key, const std::string& dump_id,
            std::unique_ptr<worker::WorkerProcess> w);
  // Keeps `w`, the worker of dump `dump_id`'s finished graph build, under `key` (PrebuiltKey),
  // within the same bounds (see above for its place in a full pool).
  void KeepPrebuilt(const std::string& key, const std::string& dump_id,
                    std::unique_ptr<worker::WorkerProcess> w);
  // Ends the idle workers of catalog dump `id` (it is being removed).
  void DropDump(const std::string& id);
  size_t idle_count() const;

  // The arguments of every session worker on dump file `dump_name`, before those of the
  // caller's (--host-access) and --reusable; `graph_file` empty: none (not a catalog dump).
  static std::vector<std::string> SessionWorkerArgs(const std::string& store_root,
                                                    const std::string& dump_name,
                                                    int64_t data_limit_mib,
                                                    const std::string& graph_file);
  // The identity of a dump file, as the worker's graph and the keys use it.
  static std::string DumpIdentity(const struct stat& st);
  // The key of a worker kept after the graph build of the dump file `dump` with `args`
  // (SessionWorkerArgs): any caller's session without DAC directories of its own, whose worker
  // would get the same arguments, may take it.
  static std::string PrebuiltKey(const struct stat& dump, const std::vector<std::string>& args);

 private:
  struct Idle {
    std::string key, dump_id;
    std::unique_ptr<worker::WorkerProcess> proc;
    absl::Time since;
    bool prebuilt = false;  // left by the graph build, not yet taken by a session
  };
  void Add(const std::string& key, const std::string& dump_id,
           std::unique_ptr<worker::WorkerProcess> w, bool prebuilt);
  void Reaper();
  static void End(std::unique_ptr<worker::WorkerProcess> w, const char* why);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;  // oldest first
  bool stop_ = false;
  std::thread reaper_;
};

}  // namespace clrdiag::service
