// Test-only: a fake /proc tree in a temporary directory, with fake process roots holding
// real (bound, then closed) Unix socket files. Removed again on destruction.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace clrdiag::procfs::testing {

struct FakeProcess {
  pid_t pid = 0;
  std::string comm = "app";
  uid_t uid = 1000;
  std::vector<pid_t> nspids = {};  // empty: "NSpid: <pid>"
  uint64_t start_time = 4242;
  uint64_t rss_kb = 2048;
  std::vector<std::string> cmdline = {"/usr/bin/app"};
  // Entries of the environ file; nullopt: no environ file at all.
  std::optional<std::vector<std::string>> environ = std::vector<std::string>{"PATH=/usr/bin"};
  // Target of the exe symlink; nullopt: no exe link (as for kernel threads).
  std::optional<std::string> exe = "/usr/bin/app";
  // Name of the fake root ("host" is shared by default, like one mount namespace).
  std::string root = "host";
  // Replaces the generated status file when set.
  std::optional<std::string> status_text = std::nullopt;
};

// Runs `check` as an unprivileged user (uid/gid 65534) in a forked child when the test runs
// as root, since root reads mode-000 files; runs it directly otherwise. Returns its result.
// The tree is made traversable (0755) so only the file modes under test decide.
bool RunUnprivileged(const std::string& tree_base, const std::function<bool()>& check);

class FakeProcTree {
 public:
  FakeProcTree();
  ~FakeProcTree();
  FakeProcTree(const FakeProcTree&) = delete;
  FakeProcTree& operator=(const FakeProcTree&) = delete;

  // The directory to pass to ProcFs.
  const std::string& proc() const { return proc_; }
  const std::string& base() const { return base_; }

  // Creates /proc/<pid>/{status,stat,cmdline,environ,exe,root}.
  void AddProcess(const FakeProcess& p);
  // Writes (or replaces) one file of /proc/<pid>/.
  void WriteProcFile(pid_t pid, const std::string& name, const std::string& content);
  // The host path of `path` (absolute, as processes with root `root` see it); created.
  std::string RootDir(const std::string& root, const std::string& path);
  // Creates a socket inode at `path` inside root `root`, with mtime `mtime` (seconds).
  // Returns the socket's host path.
  std::string AddSocket(const std::string& root, const std::string& path, int64_t mtime = 1000);
  // A regular file, for "named like a socket but is not one".
  std::string AddRegularFile(const std::string& root, const std::string& path);

  static std::string StatusText(const FakeProcess& p);
  static std::string StatText(pid_t pid, const std::string& comm, uint64_t start_time);

 private:
  std::string base_;
  std::string proc_;
};

}  // namespace clrdiag::procfs::testing
