// Read-only view of a procfs tree. The root is injectable so tests run on a fake tree.
// Every accessor returns NotFound when the process is gone, PermissionDenied when it cannot
// be read; nothing here throws or aborts on malformed content.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::procfs {

// The fields of /proc/<pid>/status we use.
struct ProcStatus {
  std::string name;           // "Name:" (comm, at most 15 chars)
  pid_t ppid = 0;             // "PPid:"
  uid_t uid = 0;              // real uid, first value of "Uid:"
  uid_t euid = 0;             // effective uid, second value of "Uid:"
  gid_t gid = 0;              // real gid, first value of "Gid:"
  std::vector<pid_t> nspids;  // "NSpid:" outermost first; empty on kernels without it
  uint64_t vm_rss_kb = 0;     // "VmRSS:" (0 for kernel threads)
  // The pid as the process sees itself (last NSpid value), or the host pid without NSpid.
  pid_t InnermostPid(pid_t host_pid) const;
};

// One line of /proc/<pid>/maps.
struct MapEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string perms;  // "r-xp"
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string path;  // may be empty, "[heap]", or a file path (possibly " (deleted)")
};

class ProcFs {
 public:
  explicit ProcFs(std::string root = "/proc");

  const std::string& root() const { return root_; }

  // Numeric entries of the root, ascending.
  absl::StatusOr<std::vector<pid_t>> ListPids() const;

  absl::StatusOr<ProcStatus> ReadStatus(pid_t pid) const;
  // argv, split on NUL.
  absl::StatusOr<std::vector<std::string>> ReadCmdline(pid_t pid) const;
  // "NAME=value" entries, split on NUL.
  absl::StatusOr<std::vector<std::string>> ReadEnviron(pid_t pid) const;
  // Value of one variable of the environ file; NotFound if absent.
  absl::StatusOr<std::string> ReadEnvVar(pid_t pid, const std::string& name) const;
  // readlink of /proc/<pid>/exe.
  absl::StatusOr<std::string> ReadExe(pid_t pid) const;
  // Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat, parsed after the last ')'.
  absl::StatusOr<uint64_t> ReadStartTime(pid_t pid) const;
  absl::StatusOr<std::vector<MapEntry>> ReadMaps(pid_t pid) const;

  // "<root>/<pid>" and "<root>/<pid>/root": the latter reaches the process's own mount
  // namespace, so a path the process sees as P is readable here as RootPath(pid) + P.
  std::string PidDir(pid_t pid) const;
  std::string RootPath(pid_t pid) const;

 private:
  std::string root_;
};

// Pure parsers, exposed for tests and fuzzing.
absl::StatusOr<ProcStatus> ParseStatus(const std::string& text);
absl::StatusOr<uint64_t> ParseStartTime(const std::string& stat_text);
absl::StatusOr<std::vector<MapEntry>> ParseMaps(const std::string& text);
std::vector<std::string> SplitNul(const std::string& data);

}  // namespace clrdiag::procfs
