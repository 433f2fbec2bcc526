#include "core/procfs/discovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/procfs/procfs_internal.h"

namespace clrdiag::procfs {
namespace {

// The runtime's name is "dotnet-diagnostic-<pid>-<key>-socket" (dotnet-dsrouter's
// "dotnet-diagnostic-dsrouter-..." does not parse and is ignored).
constexpr std::string_view kSocketPrefix = "dotnet-diagnostic-";
constexpr std::string_view kSocketSuffix = "-socket";
constexpr std::string_view kDefaultTmpDir = "/tmp/";
constexpr std::string_view kDeletedSuffix = " (deleted)";

struct SocketName {
  pid_t ns_pid = 0;
  uint64_t key = 0;
  std::string name;
};

template <typename T>
bool ParseDecimal(std::string_view s, T* out) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::optional<SocketName> ParseSocketName(std::string_view name) {
  if (!name.starts_with(kSocketPrefix) || !name.ends_with(kSocketSuffix)) {
    return std::nullopt;
  }
  std::string_view middle =
      name.substr(kSocketPrefix.size(), name.size() - kSocketPrefix.size() - kSocketSuffix.size());
  // Exactly "<pid>-<key>": both decimal, so "12" never matches a socket of pid 123.
  size_t dash = middle.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  SocketName parsed;
  if (!ParseDecimal(middle.substr(0, dash), &parsed.ns_pid) || parsed.ns_pid <= 0 ||
      !ParseDecimal(middle.substr(dash + 1), &parsed.key)) {
    return std::nullopt;
  }
  parsed.name = std::string(name);
  return parsed;
}

// Socket-looking entries of each directory listed during one scan, keyed by the directory's
// (st_dev, st_ino): every process of one mount namespace with the same TMPDIR shares one
// listing, so a scan lists /tmp once rather than once per pid.
class SocketDirCache {
 public:
  // Opens `dir` into `*dirfd` and returns its entries named like a runtime socket.
  absl::StatusOr<const std::vector<SocketName>*> List(const std::string& dir, UniqueFd* dirfd) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", dir));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
    auto key = std::make_pair(st.st_dev, st.st_ino);
    auto it = listings_.find(key);
    if (it == listings_.end()) {
      ASSIGN_OR_RETURN(std::vector<SocketName> names, ReadNames(fd.get(), dir));
      it = listings_.emplace(key, std::move(names)).first;
    }
    *dirfd = std::move(fd);
    return &it->second;
  }

  // The pid namespace link of the scanning process (e.g. "pid:[4026531836]") when `fs` numbers
  // processes as that namespace does (its "self" is our own pid); empty otherwise (a fake tree,
  // or a procfs of another pid namespace). Looked up once per scan.
  const std::string& OwnPidNamespace(const ProcFs& fs) {
    if (!own_ns_checked_) {
      own_ns_checked_ = true;
      const std::string self = fs.root() + "/self";
      if (ReadLink(self) == std::to_string(::getpid())) own_ns_ = ReadLink(self + "/ns/pid");
    }
    return own_ns_;
  }

  static std::string ReadLink(const std::string& path) {
    char buf[128];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
    return n > 0 && static_cast<size_t>(n) < sizeof(buf) ? std::string(buf, n) : std::string();
  }

 private:
  static absl::StatusOr<std::vector<SocketName>> ReadNames(int fd, const std::string& dir) {
    int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus(errno, absl::StrCat("dup ", dir));
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
      int err = errno;
      ::close(dup_fd);
      return ErrnoStatus(err, absl::StrCat("opendir ", dir));
    }
    std::vector<SocketName> names;
    while (true) {
      errno = 0;
      const dirent* entry = ::readdir(d);
      if (entry == nullptr) break;
      // d_type is a free pre-filter; the socket check proper is an lstat of the few matches.
      if (entry->d_type != DT_UNKNOWN && entry->d_type != DT_SOCK) continue;
      if (std::optional<SocketName> name = ParseSocketName(entry->d_name)) {
        names.push_back(std::move(*name));
      }
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus(err, absl::StrCat("readdir ", dir));
    return names;
  }

  std::map<std::pair<dev_t, ino_t>, std::vector<SocketName>> listings_;
  bool own_ns_checked_ = false;
  std::string own_ns_;
};

std::string NoSocketMessage(pid_t pid, const std::string& name, const std::string& tmpdir) {
  return absl::StrCat("process ", pid, name.empty() ? "" : absl::StrCat(" (", name, ")"),
                      " has no .NET diagnostic socket in ", tmpdir,
                      " (not a .NET process, or started with DOTNET_EnableDiagnostics=0)");
}

// The target's TMPDIR as the runtime computes it: unset or empty means /tmp/, and a '/' is
// appended when missing.
std::string TargetTmpDir(std::string_view environ) {
  std::optional<std::string_view> value = FindEnvVar(environ, "TMPDIR");
  std::string tmpdir(value && !value->empty() ? *value : kDefaultTmpDir);
  if (tmpdir.back() != '/') tmpdir += '/';
  return tmpdir;
}

// Where we can reach the target's TMPDIR: through its root (its mount namespace), or for a
// relative TMPDIR through its working directory.
std::string HostDir(const ProcFs& fs, pid_t pid, const std::string& tmpdir) {
  if (tmpdir.front() == '/') return fs.RootPath(pid) + tmpdir;
  return absl::StrCat(fs.PidDir(pid), "/cwd/", tmpdir);
}

// What locating a socket learned on the way, reused to build ProcessFacts.
struct Target {
  pid_t pid = 0;
  std::optional<ProcStatus> status = std::nullopt;  // read lazily unless the caller already has it
  std::string tmpdir = {};
  std::string environ = {};  // kept for the pod identity (HOSTNAME)
  uint64_t start_time = 0;
};

absl::StatusOr<DiagnosticSocket> Locate(const ProcFs& fs, SocketDirCache& cache, Target& t) {
  ASSIGN_OR_RETURN(t.environ, ReadProcFile(absl::StrCat(fs.PidDir(t.pid), "/environ")));
  t.tmpdir = TargetTmpDir(t.environ);
  std::string dir = HostDir(fs, t.pid, t.tmpdir);
  UniqueFd dirfd;
  absl::StatusOr<const std::vector<SocketName>*> listing = cache.List(dir, &dirfd);
  if (!listing.ok() && !absl::IsNotFound(listing.status())) return listing.status();
  // Most processes stop here: no runtime socket at all in their TMPDIR, status never read.
  if (!listing.ok() || (*listing)->empty()) {
    return absl::NotFoundError(NoSocketMessage(t.pid, "", t.tmpdir));
  }
  // Most processes share our pid namespace, where a runtime names its socket with the pid we
  // see. One readlink says so, and a pid no socket in the listing names is not a runtime here:
  // much cheaper than reading its status (which the daemon's automation would otherwise do for
  // every process on the host every poll).
  if (!t.status) {
    const std::string& own_ns = cache.OwnPidNamespace(fs);
    if (!own_ns.empty() &&
        SocketDirCache::ReadLink(absl::StrCat(fs.PidDir(t.pid), "/ns/pid")) == own_ns &&
        std::none_of((*listing)->begin(), (*listing)->end(),
                     [&](const SocketName& n) { return n.ns_pid == t.pid; })) {
      return absl::NotFoundError(NoSocketMessage(t.pid, "", t.tmpdir));
    }
    ASSIGN_OR_RETURN(t.status, fs.ReadStatus(t.pid));
  }
  const pid_t ns_pid = t.status->InnermostPid(t.pid);

  struct Found {
    const SocketName* name;
    timespec mtime;
  };
  std::vector<Found> found;
  for (const SocketName& name : **listing) {
    if (name.ns_pid != ns_pid) continue;
    struct stat st {};
    if (::fstatat(dirfd.get(), name.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISSOCK(st.st_mode)) continue;
    found.push_back({&name, st.st_mtim});
  }
  if (found.empty()) return absl::NotFoundError(NoSocketMessage(t.pid, "", t.tmpdir));

  // The runtime's key is its start time, which tells its socket from a stale one left by a
  // killed process that had the same pid; without a match the newest file wins, as in
  // dotnet-dump.
  t.start_time = fs.ReadStartTime(t.pid).value_or(0);
  auto newer = [](const Found& a, const Found& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
    if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec < b.mtime.tv_nsec;
    return a.name->key < b.name->key;
  };
  auto best = std::find_if(found.begin(), found.end(), [&](const Found& f) {
    return t.start_time != 0 && f.name->key == t.start_time;
  });
  if (best == found.end()) best = std::max_element(found.begin(), found.end(), newer);

  DiagnosticSocket socket;
  socket.host_pid = t.pid;
  socket.ns_pid = ns_pid;
  socket.tmpdir = t.tmpdir;
  socket.path = dir + best->name->name;
  socket.key = best->name->key;
  return socket;
}

std::string DisplayName(std::string_view exe, const std::string& comm) {
  if (exe.ends_with(kDeletedSuffix)) exe.remove_suffix(kDeletedSuffix.size());
  size_t slash = exe.rfind('/');
  std::string_view base = slash == std::string_view::npos ? exe : exe.substr(slash + 1);
  return base.empty() ? comm : std::string(base);
}

ProcessFacts BuildFacts(const ProcFs& fs, const Target& t, DiagnosticSocket socket) {
  ProcessFacts facts;
  facts.pid = t.pid;
  facts.ns_pid = socket.ns_pid;
  facts.exe = fs.ReadExe(t.pid).value_or("");
  facts.name = DisplayName(facts.exe, t.status->name);
  facts.cmdline = fs.ReadCmdline(t.pid).value_or(std::vector<std::string>{});
  facts.uid = t.status->uid;
  facts.start_time = t.start_time;
  facts.rss_bytes = t.status->vm_rss_kb * 1024;
  facts.k8s = ReadK8sIdentity(fs, t.pid, t.environ);
  facts.socket = std::move(socket);
  return facts;
}

}  // namespace

absl::StatusOr<DiagnosticSocket> FindDiagnosticSocket(const ProcFs& fs, pid_t pid) {
  SocketDirCache cache;
  Target target{.pid = pid};
  return Locate(fs, cache, target);
}

std::vector<ProcessFacts> ScanDotnetProcesses(const ProcFs& fs, pid_t self) {
  std::vector<ProcessFacts> result;
  absl::StatusOr<std::vector<pid_t>> pids = fs.ListPids();
  if (!pids.ok()) return result;
  SocketDirCache cache;
  for (pid_t pid : *pids) {
    if (pid == self) continue;
    Target target{.pid = pid};
    absl::StatusOr<DiagnosticSocket> socket = Locate(fs, cache, target);
    if (!socket.ok()) continue;  // not .NET, gone, or unreadable: all skipped alike
    result.push_back(BuildFacts(fs, target, *std::move(socket)));
  }
  return result;
}

absl::StatusOr<ProcessFacts> InspectProcess(const ProcFs& fs, pid_t pid) {
  Target target{.pid = pid};
  absl::StatusOr<ProcStatus> status = fs.ReadStatus(pid);
  if (absl::IsNotFound(status.status())) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is not running"));
  }
  if (!status.ok()) {
    return absl::Status(status.status().code(), absl::StrCat("cannot inspect process ", pid, ": ",
                                                             status.status().message()));
  }
  target.status = *std::move(status);
  SocketDirCache cache;
  absl::StatusOr<DiagnosticSocket> socket = Locate(fs, cache, target);
  if (absl::IsNotFound(socket.status()) && !target.tmpdir.empty()) {
    std::string name = DisplayName(fs.ReadExe(pid).value_or(""), target.status->name);
    return absl::FailedPreconditionError(NoSocketMessage(pid, name, target.tmpdir));
  }
  if (absl::IsNotFound(socket.status())) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is not running"));
  }
  if (absl::IsPermissionDenied(socket.status())) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot look for the diagnostic socket of process ", pid, ": ",
                     socket.status().message(), " (run as the process's user or as root)"));
  }
  if (!socket.ok()) return socket.status();
  return BuildFacts(fs, target, *std::move(socket));
}

}  // namespace clrdiag::procfs
