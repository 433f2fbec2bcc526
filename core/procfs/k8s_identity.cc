#include "core/procfs/k8s_identity.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/procfs/procfs_internal.h"

namespace clrdiag::procfs {
namespace {

constexpr size_t kContainerIdLength = 64;
// The namespace file holds one DNS label; anything much larger is not one.
constexpr size_t kMaxNamespaceFileBytes = 256;
constexpr size_t kMaxHostnameFileBytes = 256;

// Scope prefixes of the runtimes' systemd units (and of CRI-O's cgroupfs leaves), with the
// runtime each names. The conmon scopes hold the monitor, not the container.
struct ScopePrefix {
  std::string_view prefix;
  std::string_view runtime;
};
constexpr ScopePrefix kScopePrefixes[] = {
    {"cri-containerd-", "containerd"},
    {"crio-conmon-", ""},
    {"crio-", "cri-o"},
    {"docker-", "docker"},
    {"libpod-conmon-", ""},
    {"libpod-", "podman"},
};

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsContainerId(std::string_view s) { return s.size() == kContainerIdLength && IsLowerHex(s); }

// A pod UID as kubelet writes it: a UUID (API pods), or 32 hex digits (static pods: an MD5 of
// the manifest).
bool IsPodUid(std::string_view s) {
  if (s.size() == 32) return IsLowerHex(s);
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here != (s[i] == '-')) return false;
    if (!dash_here && !IsLowerHex(s.substr(i, 1))) return false;
  }
  return true;
}

bool StripSuffix(std::string_view& s, std::string_view suffix) {
  if (!s.ends_with(suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

struct ContainerMatch {
  std::string_view id;
  std::string_view runtime;
};

// "<64hex>", "<prefix>-<64hex>" or "<prefix>-<64hex>.scope".
std::optional<ContainerMatch> MatchContainer(std::string_view component) {
  StripSuffix(component, ".scope");
  if (IsContainerId(component)) return ContainerMatch{component, ""};
  for (const ScopePrefix& p : kScopePrefixes) {
    if (!component.starts_with(p.prefix)) continue;
    std::string_view id = component.substr(p.prefix.size());
    if (p.runtime.empty() || !IsContainerId(id)) return std::nullopt;
    return ContainerMatch{id, p.runtime};
  }
  return std::nullopt;
}

// "kubepods", "kubepods.slice", "kubepods-burstable.slice", and the same under a prefixed
// cgroup root (kind's "kubelet-kubepods.slice").
bool IsKubepods(std::string_view component) {
  return component.find("kubepods") != std::string_view::npos;
}

// cgroupfs driver: "pod<uid>" below a kubepods component; systemd driver:
// "[<root>-]kubepods[-<qos>]-pod<uid with '_' for '-'>.slice".
std::optional<std::string> MatchPod(std::string_view component, bool below_kubepods) {
  std::string uid;
  if (below_kubepods && component.starts_with("pod")) {
    uid = std::string(component.substr(3));
  } else if (StripSuffix(component, ".slice")) {
    size_t at = component.rfind("-pod");
    if (at == std::string_view::npos ||
        component.substr(0, at).find("kubepods") == std::string_view::npos) {
      return std::nullopt;
    }
    uid = std::string(component.substr(at + 4));
    std::replace(uid.begin(), uid.end(), '_', '-');
  } else {
    return std::nullopt;
  }
  if (!IsPodUid(uid)) return std::nullopt;
  return uid;
}

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

CgroupIdentity ParseCgroupPath(std::string_view path) {
  CgroupIdentity id;
  bool below_kubepods = false;
  std::string_view parent;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view component = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (component.empty() || component == "." || component == "..") continue;
    if (std::optional<ContainerMatch> c = MatchContainer(component)) {
      id.container_id = std::string(c->id);
      // Docker with the cgroupfs driver: "/docker/<id>".
      id.container_runtime = c->runtime.empty() && parent == "docker" ? "docker" : c->runtime;
    } else if (std::optional<std::string> uid = MatchPod(component, below_kubepods)) {
      id.pod_uid = *std::move(uid);
    }
    if (IsKubepods(component)) below_kubepods = true;
    parent = component;
  }
  return id;
}

CgroupIdentity ParseCgroupFile(std::string_view text) {
  CgroupIdentity best;
  int best_score = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    // "hierarchy-id:controller-list:path"; the path may itself hold ':'.
    size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    CgroupIdentity id = ParseCgroupPath(line.substr(second + 1));
    int score = (id.container_id.empty() ? 0 : 2) + (id.pod_uid.empty() ? 0 : 1);
    if (score > best_score) {
      best = std::move(id);
      best_score = score;
    }
  }
  return best;
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    size_t dot = s.find('.');
    if (!IsDnsLabel(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s = s.substr(dot + 1);
  }
}

absl::StatusOr<std::string> ReadFileInRoot(const ProcFs& fs, pid_t pid, std::string_view path,
                                           size_t max_bytes) {
  const std::string root_path = fs.RootPath(pid);
  UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, absl::StrCat("open ", root_path));
  while (path.starts_with('/')) path.remove_prefix(1);
  const std::string relative(path);
  // The target may have put a FIFO there: never block opening it.
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(
      static_cast<int>(::syscall(SYS_openat2, root.get(), relative.c_str(), &how, sizeof(how))));
  const std::string shown = absl::StrCat(root_path, "/", relative);
  if (!fd && errno == ENOSYS) {
    return absl::UnimplementedError(absl::StrCat(
        "cannot read ", shown, " inside the process's root: openat2 needs Linux 5.6 or later"));
  }
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", shown));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", shown));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(shown, " is not a regular file"));
  }
  std::string data(max_bytes + 1, '\0');
  size_t used = 0;
  while (used < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + used, data.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("read ", shown));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(shown, ": larger than ", max_bytes, " bytes"));
  }
  data.resize(used);
  return data;
}

K8sIdentity ReadK8sIdentity(const ProcFs& fs, pid_t pid, std::string_view environ) {
  K8sIdentity k8s;
  if (absl::StatusOr<std::string> cgroup = ReadProcFile(absl::StrCat(fs.PidDir(pid), "/cgroup"));
      cgroup.ok()) {
    CgroupIdentity id = ParseCgroupFile(*cgroup);
    k8s.container_id = std::move(id.container_id);
    k8s.container_runtime = std::move(id.container_runtime);
    k8s.pod_uid = std::move(id.pod_uid);
  }
  if (absl::StatusOr<std::string> ns =
          ReadFileInRoot(fs, pid, kServiceAccountNamespaceFile, kMaxNamespaceFileBytes);
      ns.ok() && IsDnsLabel(TrimTrailingSpace(*ns))) {
    k8s.namespace_ = std::string(TrimTrailingSpace(*ns));
  }
  if (!k8s.in_pod()) return k8s;
  // The runtimes set HOSTNAME; a process started with a cleaned environment still has the
  // pod's /etc/hostname (which the runtime writes from the same name).
  std::optional<std::string_view> hostname = FindEnvVar(environ, "HOSTNAME");
  std::string from_file;
  if (!hostname) {
    if (absl::StatusOr<std::string> f =
            ReadFileInRoot(fs, pid, "/etc/hostname", kMaxHostnameFileBytes);
        f.ok()) {
      from_file = *std::move(f);
      hostname = TrimTrailingSpace(from_file);
    }
  }
  if (hostname && IsDnsSubdomain(*hostname)) k8s.pod = std::string(*hostname);
  return k8s;
}

}  // namespace clrdiag::procfs
