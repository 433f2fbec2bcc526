// The analysis engine behind a session: one open dump, its DAC, and the SOS command set.
// Runs in the worker process only (a DAC fault must never reach the daemon).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/base/cancel.h"

namespace clrdiag::sos {

// How far a long command has come (see CommandProgress in the proto).
struct ProgressInfo {
  std::string stage;  // "walking the heap"
  uint64_t done = 0;
  uint64_t total = 0;  // 0: unknown
  std::string unit = "bytes";
  uint64_t items = 0;
};

// Where command output goes; text arrives in pieces as it is produced.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Write(absl::string_view text) = 0;
  // Called often (cheap to call); sinks forward it at their own pace. Never output.
  virtual void Progress(const ProgressInfo& progress) {}
};

struct CommandResult {
  bool ok = true;
  std::string error;  // for !ok: what went wrong and what to do (usage for bad arguments)
  bool exit = false;  // exit, quit, q
};

struct EngineOptions {
  std::string dump_path;
  std::string display_path;           // how messages name the dump (default: dump_path)
  std::vector<std::string> dac_dirs;  // searched after the catalog and the host's runtimes
  std::string store_root;  // the dump store (its runtimes/<build-id>/ is searched), or empty
  // The session's owner may have it read the daemon host's files and reach the network with
  // the worker's rights (setsymbolserver's directories, caches and servers): a local admin.
  bool host_access = false;
  // The heap graph file of a catalog dump (kept beside it in the store), or empty: then a
  // store's cache/ keeps it.
  std::string graph_path;
};

struct RunOptions {
  // The command's JSON form instead of its text (see RunCommand.json in the proto).
  bool json = false;
};

class Engine {
 public:
  // Opens the dump and loads the matching DAC. Errors say what is wrong with the dump, or which
  // runtime (build-id, version) is needed and how to supply it.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  virtual ~Engine() = default;

  virtual std::string runtime_version() const = 0;
  virtual std::string dac_dir() const = 0;

  // Runs one command line. Unknown commands and bad arguments are reported in the result (the
  // session goes on).
  virtual CommandResult Run(const std::string& command_line, const RunOptions& options,
                            OutputSink& out, const CancellationToken& cancel) = 0;
  CommandResult Run(const std::string& command_line, OutputSink& out,
                    const CancellationToken& cancel) {
    return Run(command_line, RunOptions{}, out, cancel);
  }
  // Builds the heap graph of gcroot/pathto and saves it in its file (the daemon's background
  // build after a dump enters the catalog); does nothing if a valid file is there already.
  virtual absl::Status PrepareHeapGraph(OutputSink& out, const CancellationToken& cancel) = 0;
};

}  // namespace clrdiag::sos
