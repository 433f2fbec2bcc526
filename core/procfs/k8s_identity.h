// Container and Kubernetes identity of a process, from what the node's kernel shows, with no
// API server, kubelet or CRI access:
//   - container id and pod UID from /proc/<pid>/cgroup (the names kubelet and the runtimes give
//     their cgroups: containerd, CRI-O, Docker, podman; systemd and cgroupfs drivers; cgroup v1,
//     v2 and hybrid);
//   - pod name from the target's HOSTNAME (the CRI runtimes set it to the pod's hostname, which
//     is the pod name unless spec.hostname is set; kubelet truncates it to 63 characters);
//   - namespace from the service-account namespace file mounted into the pod, read inside the
//     target's own root.
// All of these are chosen or influenced by the target: values are validated (Kubernetes name
// rules) and dropped when they do not fit, never trusted as paths.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/procfs/procfs.h"

namespace clrdiag::procfs {

// Where the kubelet mounts the service account into every pod (unless
// automountServiceAccountToken is false).
inline constexpr std::string_view kServiceAccountNamespaceFile =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

// What one cgroup path tells.
struct CgroupIdentity {
  // 64 lowercase hex digits; empty when the process is not in a container's cgroup.
  std::string container_id;
  // "containerd", "cri-o", "docker", "podman" from the scope's prefix; empty when the cgroup is
  // named by the bare id (cgroupfs driver), which does not say which runtime made it.
  std::string container_runtime;
  // The pod UID with dashes (the systemd driver's underscores turned back); empty when the path
  // has no kubepods pod component.
  std::string pod_uid;
  bool empty() const { return container_id.empty() && pod_uid.empty(); }
};

// Parses one cgroup path ("/kubepods.slice/.../cri-containerd-<id>.scope"). The deepest
// component naming a container wins, so nested cgroups (crun's "container" leaf, Docker in
// Docker, kind nodes) give the innermost container.
CgroupIdentity ParseCgroupPath(std::string_view path);

// Parses the text of /proc/<pid>/cgroup: one "id:controllers:path" line per hierarchy (v1),
// "0::path" (v2), or both (hybrid). Returns the identity of the line that tells the most
// (container id and pod UID, then container id alone, then pod UID alone); malformed lines are
// skipped. Never fails: a process outside any container gives an empty identity.
CgroupIdentity ParseCgroupFile(std::string_view text);

// Kubernetes name rules, used to validate what the target supplies.
bool IsDnsLabel(std::string_view s);      // RFC 1123 label: namespaces (≤ 63, [a-z0-9-])
bool IsDnsSubdomain(std::string_view s);  // RFC 1123 subdomain: pod names (≤ 253, dots too)

struct K8sIdentity {
  std::string container_id;
  std::string container_runtime;
  std::string pod_uid;
  std::string pod;         // pod name ("" outside a pod, or when HOSTNAME is not a valid name)
  std::string namespace_;  // pod namespace ("" outside a pod or without the mounted file)
  // A pod process: its cgroup is a kubepods pod's or it has the service-account mount.
  bool in_pod() const { return !pod_uid.empty() || !namespace_.empty(); }
};

// Reads the identity of `pid`. `environ` is the process's environ block (NUL-separated, as
// read from /proc/<pid>/environ), passed in because discovery has already read it. The pod
// name is only reported for a pod process (see in_pod()), since HOSTNAME is set in plain
// containers and shells too. Unreadable parts are left empty.
K8sIdentity ReadK8sIdentity(const ProcFs& fs, pid_t pid, std::string_view environ);

// Reads the file a process sees at the absolute path `path`, resolving every component
// (symlinks too, absolute ones included) inside the process's root, /proc/<pid>/root: a plain
// path through /proc/<pid>/root would follow an absolute symlink such as /var/run -> /run from
// the reader's root instead, reading the wrong file or a host file. Files over `max_bytes`
// are an error (ResourceExhausted).
absl::StatusOr<std::string> ReadFileInRoot(const ProcFs& fs, pid_t pid, std::string_view path,
                                           size_t max_bytes);

}  // namespace clrdiag::procfs
