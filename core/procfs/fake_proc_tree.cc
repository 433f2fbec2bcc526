#include "core/procfs/fake_proc_tree.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clrdiag::procfs::testing {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(absl::StrCat(what, ": ", std::strerror(errno)));
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) Fail(absl::StrCat("write ", path));
}

void SetMtime(const std::string& path, int64_t mtime) {
  timespec times[2] = {{mtime, 0}, {mtime, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    Fail(absl::StrCat("utimensat ", path));
  }
}

}  // namespace

FakeProcTree::FakeProcTree() {
  // Under /tmp rather than $TMPDIR: socket paths must stay below sun_path's 108 bytes.
  char tmpl[] = "/tmp/clrdiag-procfs-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Fail("mkdtemp");
  base_ = tmpl;
  proc_ = base_ + "/proc";
  fs::create_directories(proc_);
  // Entries a real /proc has besides pids.
  fs::create_directories(proc_ + "/sys");
  WriteFile(proc_ + "/uptime", "1.00 1.00\n");
  fs::create_symlink("42", proc_ + "/self");
}

FakeProcTree::~FakeProcTree() {
  std::error_code ec;
  fs::remove_all(base_, ec);
}

std::string FakeProcTree::StatusText(const FakeProcess& p) {
  std::vector<pid_t> nspids = p.nspids.empty() ? std::vector<pid_t>{p.pid} : p.nspids;
  std::string ns = absl::StrJoin(nspids, "\t");
  return absl::StrCat("Name:\t", p.comm, "\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t", p.pid,
                      "\nNgid:\t0\nPid:\t", p.pid, "\nPPid:\t1\nTracerPid:\t0\nUid:\t", p.uid, "\t",
                      p.uid, "\t", p.uid, "\t", p.uid, "\nGid:\t", p.uid, "\t", p.uid, "\t", p.uid,
                      "\t", p.uid, "\nFDSize:\t64\nGroups:\t\nNStgid:\t", ns, "\nNSpid:\t", ns,
                      "\nNSpgid:\t", ns, "\nNSsid:\t", ns, "\nVmPeak:\t  200000 kB\nVmRSS:\t    ",
                      p.rss_kb, " kB\nThreads:\t7\nSigQ:\t0/63704\n");
}

std::string FakeProcTree::StatText(pid_t pid, const std::string& comm, uint64_t start_time) {
  // Fields 3..21, then starttime (22), then the rest up to field 52.
  std::string text = absl::StrCat(pid, " (", comm, ") S 1 ", pid, " ", pid,
                                  " 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 7 0 ", start_time);
  for (int field = 23; field <= 52; ++field) absl::StrAppend(&text, " 0");
  return text + "\n";
}

void FakeProcTree::WriteProcFile(pid_t pid, const std::string& name, const std::string& content) {
  std::string dir = absl::StrCat(proc_, "/", pid);
  fs::create_directories(dir);
  std::string path = absl::StrCat(dir, "/", name);
  std::error_code ec;
  fs::remove(path, ec);
  WriteFile(path, content);
}

void FakeProcTree::AddProcess(const FakeProcess& p) {
  std::string dir = absl::StrCat(proc_, "/", p.pid);
  fs::create_directories(dir);
  WriteProcFile(p.pid, "status", p.status_text ? *p.status_text : StatusText(p));
  WriteProcFile(p.pid, "stat", StatText(p.pid, p.comm, p.start_time));
  WriteProcFile(p.pid, "cmdline",
                absl::StrCat(absl::StrJoin(p.cmdline, std::string(1, '\0')), std::string(1, '\0')));
  if (p.environ) {
    std::string env;
    for (const std::string& e : *p.environ) absl::StrAppend(&env, e, std::string(1, '\0'));
    WriteProcFile(p.pid, "environ", env);
  }
  if (p.exe) fs::create_symlink(*p.exe, dir + "/exe");
  RootDir(p.root, "/");
  fs::create_symlink(absl::StrCat(base_, "/roots/", p.root), dir + "/root");
}

std::string FakeProcTree::RootDir(const std::string& root, const std::string& path) {
  std::string dir = absl::StrCat(base_, "/roots/", root, path);
  fs::create_directories(dir);
  return dir;
}

std::string FakeProcTree::AddSocket(const std::string& root, const std::string& path,
                                    int64_t mtime) {
  fs::path p(path);
  std::string host = RootDir(root, p.parent_path().string()) + "/" + p.filename().string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (host.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    Fail(absl::StrCat("socket path ", host));
  }
  std::memcpy(addr.sun_path, host.c_str(), host.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  // Binding leaves a socket inode behind after close: what a killed runtime leaves too.
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::close(fd);
  if (rc != 0) Fail(absl::StrCat("bind ", host));
  SetMtime(host, mtime);
  return host;
}

std::string FakeProcTree::AddRegularFile(const std::string& root, const std::string& path) {
  fs::path p(path);
  std::string host = RootDir(root, p.parent_path().string()) + "/" + p.filename().string();
  WriteFile(host, "");
  SetMtime(host, 5000);
  return host;
}

bool RunUnprivileged(const std::string& tree_base, const std::function<bool()>& check) {
  if (::geteuid() != 0) return check();
  ::chmod(tree_base.c_str(), 0755);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::_exit(check() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace clrdiag::procfs::testing
