// libFuzzer target for the Kubernetes identity parsers: /proc/<pid>/cgroup names are chosen by
// whoever creates cgroups (a container runtime, or a process with cgroup delegation), HOSTNAME
// and the namespace file by the target, and egress prefixes expand those values into paths.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/egress_prefix.h"
#include "core/procfs/k8s_identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clrdiag::procfs;
  const std::string text(reinterpret_cast<const char*>(data), size);

  CgroupIdentity id = ParseCgroupFile(text);
  if (!id.container_id.empty() && id.container_id.size() != 64) __builtin_trap();
  if (!id.pod_uid.empty() && id.pod_uid.size() != 32 && id.pod_uid.size() != 36) __builtin_trap();
  if (id.pod_uid.find('_') != std::string::npos) __builtin_trap();
  (void)ParseCgroupPath(text);

  const bool label = IsDnsLabel(text);
  if (label && !IsDnsSubdomain(text)) __builtin_trap();

  // The input as both a prefix template and as every value.
  clrdiag::EgressPrefixValues values{.pod = text,
                                     .namespace_ = text,
                                     .container = text,
                                     .name = text,
                                     .pid = static_cast<pid_t>(size),
                                     .type = text};
  const absl::Status valid = clrdiag::ValidateEgressPrefix(text);
  absl::StatusOr<std::string> expanded =
      clrdiag::ExpandEgressPrefix("{pod}/{namespace}/{container}/{name}/{type}", values);
  if (!expanded.ok()) __builtin_trap();
  // Each value is exactly one path level: five non-empty components, none "." or "..".
  int components = 0;
  for (std::string_view rest = *expanded;; ++components) {
    const size_t slash = rest.find('/');
    const std::string_view c = rest.substr(0, slash);
    if (c.empty() || c == "." || c == ".." || c.find('\0') != std::string_view::npos) {
      __builtin_trap();
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (components != 4) __builtin_trap();
  if (valid.ok() != clrdiag::ExpandEgressPrefix(text, values).ok()) __builtin_trap();
  return 0;
}
