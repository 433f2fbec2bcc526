// A running clrdiag-worker: spawned with pipes on its stdin/stdout, no other inherited fds.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"

namespace clrdiag::worker {

class WorkerProcess {
 public:
  struct Options {
    int fd3 = -1;  // handed to the worker as its fd 3 (the dump), -1: none
  };
  // Starts `exe` with `args`. Its stderr goes to the daemon's stderr (log). The worker inherits
  // no other fd; it sets its own limits and drops privileges once started (worker_main.cc).
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Start(const std::string& exe,
                                                              const std::vector<std::string>& args,
                                                              const Options& options);
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Start(const std::string& exe,
                                                              const std::vector<std::string>& args) {
    return Start(exe, args, Options{});
  }
  ~WorkerProcess();  // kills (SIGKILL) and reaps if still running

  pid_t pid() const { return pid_; }
  int to_worker() const { return to_.get(); }
  int from_worker() const { return from_.get(); }
  void CloseInput() { to_.Reset(); }
  // Waits for exit; returns a description like "exited with status 1" or "killed by SIGSEGV",
  // and whether it ended normally with status 0.
  std::string Wait(bool* clean);
  void Kill();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  UniqueFd to_, from_;
};

// Path of clrdiag-worker next to the running executable.
std::string WorkerExecutablePath();

}  // namespace clrdiag::worker
