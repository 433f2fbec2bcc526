// Reading the deployment files under deploy/ for tests: Kubernetes manifests (yaml-cpp) and
// the systemd unit (key=value lines).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace clrdiag::testing {

// Every document of a multi-document YAML file; throws YAML::Exception on bad YAML.
std::vector<YAML::Node> LoadManifests(const std::string& path);

// The first document of `kind` (e.g. "DaemonSet"); a null node if none.
YAML::Node FindKind(const std::vector<YAML::Node>& docs, const std::string& kind);

// spec.template.spec of a Deployment or DaemonSet.
YAML::Node PodSpec(const YAML::Node& workload);

// The container (or init container) called `name`; a null node if none.
YAML::Node FindContainer(const YAML::Node& pod_spec, const std::string& name);

// The container whose image runs clrdiagd (image name "clrdiag"); a null node if none.
YAML::Node DaemonContainer(const YAML::Node& pod_spec);

// A sequence of scalars as a set; empty for a null node.
std::set<std::string> StringSet(const YAML::Node& seq);

// The volume called `name` in the pod spec; a null node if none.
YAML::Node FindVolume(const YAML::Node& pod_spec, const std::string& name);

// The mountPath of the container's mount of volume `name`; empty if not mounted.
std::string MountPathOf(const YAML::Node& container, const std::string& volume);

// The value following `flag` in the container's args; empty if absent.
std::string ArgValue(const YAML::Node& container, const std::string& flag);

// The uid a container runs as: its own securityContext.runAsUser, else the pod's; -1 if
// neither sets one.
long RunAsUser(const YAML::Node& pod_spec, const YAML::Node& container);

// Kubernetes memory quantity ("64Mi", "1Gi", "512M", plain bytes) in bytes; -1 if invalid.
long long MemoryBytes(const std::string& quantity);

// A systemd unit: section -> key -> values in file order (a key may repeat).
using UnitFile = std::map<std::string, std::map<std::string, std::vector<std::string>>>;
UnitFile LoadUnit(const std::string& path);
// The last value of key in section; empty if absent.
std::string UnitValue(const UnitFile& unit, const std::string& section, const std::string& key);
// All whitespace-separated words of every value of key.
std::set<std::string> UnitWords(const UnitFile& unit, const std::string& section,
                                const std::string& key);

}  // namespace clrdiag::testing
