// Crash capture, way (1): the runtime writes its own dump when the process crashes
// (DOTNET_DbgEnableMiniDump=1, DOTNET_DbgMiniDumpName=<dir>/...), into a directory this daemon
// watches with inotify. Each finished dump file is moved into the catalog with its crash report
// (<dump>.crashreport.json, when DOTNET_EnableCrashReport=1), the process facts the core file
// holds (pid, name, arguments), what the daemon saw of that process while it ran (host pid,
// command line, Kubernetes identity), and the runtime files offline analysis needs. Runtime
// files: the process is usually gone by then, so the ingester also keeps, while processes run,
// the runtime files of every .NET process it sees (once per libcoreclr build-id).
//
// A file that is not a complete ELF core is left where it is (nothing is lost) and reported
// once; it is tried again when it changes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/dump/dump_store.h"
#include "core/procfs/discovery.h"
#include "core/procfs/procfs.h"

namespace clrdiag::dump {

struct CrashDirectory {
  std::string path;  // absolute; created (mode 01777) when missing
  // The dump type the apps writing here were told to write (DOTNET_DbgMiniDumpType: 1 Mini,
  // 2 Heap — the runtime's default —, 3 Triage, 4 Full); a core file does not say.
  DumpKind kind = DumpKind::kHeap;
};

struct CrashIngestOptions {
  std::vector<CrashDirectory> directories;
  // A file is ingested once it has been closed and left unchanged this long.
  absl::Duration settle = absl::Milliseconds(500);
  // How often the running .NET processes are looked at (their facts remembered, their runtime
  // files stored) so that a crash dump of one of them can be analyzed after it is gone.
  absl::Duration scan_interval = absl::Seconds(5);
  // After ingesting a dump: (meta). After failing on a file: (path, why).
  std::function<void(const DumpMeta&)> on_ingested;
  std::function<void(const std::string&, const absl::Status&)> on_error;
};

class CrashIngester {
 public:
  // Checks and creates the directories; starts nothing.
  static absl::StatusOr<std::unique_ptr<CrashIngester>> Create(const procfs::ProcFs& fs,
                                                               DumpStore* store,
                                                               CrashIngestOptions options);
  ~CrashIngester();
  CrashIngester(const CrashIngester&) = delete;
  CrashIngester& operator=(const CrashIngester&) = delete;

  // Starts the watching thread: files already in the directories are ingested first.
  absl::Status Start();
  void Stop();

  // Ingests one file now (the watcher calls this). Public for tests.
  absl::StatusOr<DumpMeta> IngestFile(const std::string& path, DumpKind kind);
  // Looks at the running .NET processes once (the watcher calls this every scan_interval).
  void ScanProcesses();

 private:
  CrashIngester(const procfs::ProcFs& fs, DumpStore* store, CrashIngestOptions options)
      : fs_(fs), store_(store), options_(std::move(options)) {}
  void Run();
  void ScheduleOrIngest(const std::string& path, DumpKind kind, bool now);

  const procfs::ProcFs& fs_;
  DumpStore* store_;
  CrashIngestOptions options_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd
  std::thread thread_;
  std::map<int, CrashDirectory> watches_;  // inotify wd -> directory
  // Files waiting to settle: path -> (kind, when to ingest).
  std::map<std::string, std::pair<DumpKind, absl::Time>> pending_;
  // Files that failed, with the mtime they failed at (tried again only when changed).
  std::map<std::string, int64_t> failed_;
  std::mutex facts_mu_;
  // Processes seen running, by (namespace pid, name truncated to 15 bytes as in a core).
  std::map<std::pair<pid_t, std::string>, procfs::ProcessFacts> seen_;
};

// The runtime version from a libcoreclr.so path when it lies in a shared framework directory
// (".../Microsoft.NETCore.App/<version>/libcoreclr.so"); "" otherwise.
std::string RuntimeVersionFromCoreclrPath(const std::string& path);

}  // namespace clrdiag::dump
