#include "tests/deploy/manifest_util.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace clrdiag::testing {

std::vector<YAML::Node> LoadManifests(const std::string& path) {
  std::vector<YAML::Node> docs;
  for (const YAML::Node& d : YAML::LoadAllFromFile(path)) {
    if (d && !d.IsNull()) docs.push_back(d);
  }
  return docs;
}

YAML::Node FindKind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  for (const auto& d : docs) {
    if (d["kind"] && d["kind"].as<std::string>() == kind) return d;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node PodSpec(const YAML::Node& workload) { return workload["spec"]["template"]["spec"]; }

YAML::Node FindContainer(const YAML::Node& pod_spec, const std::string& name) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : pod_spec[list]) {
      if (c["name"].as<std::string>() == name) return c;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node DaemonContainer(const YAML::Node& pod_spec) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : pod_spec[list]) {
      std::string image = c["image"].as<std::string>("");
      std::string repo = image.substr(0, image.find(':'));
      if (repo == "clrdiag" || repo.ends_with("/clrdiag")) return c;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::set<std::string> StringSet(const YAML::Node& seq) {
  std::set<std::string> out;
  if (seq && seq.IsSequence()) {
    for (const auto& s : seq) out.insert(s.as<std::string>());
  }
  return out;
}

YAML::Node FindVolume(const YAML::Node& pod_spec, const std::string& name) {
  for (const auto& v : pod_spec["volumes"]) {
    if (v["name"].as<std::string>() == name) return v;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string MountPathOf(const YAML::Node& container, const std::string& volume) {
  for (const auto& m : container["volumeMounts"]) {
    if (m["name"].as<std::string>() == volume) return m["mountPath"].as<std::string>();
  }
  return "";
}

std::string ArgValue(const YAML::Node& container, const std::string& flag) {
  const YAML::Node& args = container["args"];
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i].as<std::string>() == flag) return args[i + 1].as<std::string>();
  }
  return "";
}

long RunAsUser(const YAML::Node& pod_spec, const YAML::Node& container) {
  if (container["securityContext"]["runAsUser"]) {
    return container["securityContext"]["runAsUser"].as<long>();
  }
  if (pod_spec["securityContext"]["runAsUser"]) {
    return pod_spec["securityContext"]["runAsUser"].as<long>();
  }
  return -1;
}

long long MemoryBytes(const std::string& q) {
  size_t digits = 0;
  while (digits < q.size() && std::isdigit(static_cast<unsigned char>(q[digits]))) ++digits;
  if (digits == 0) return -1;
  long long n = std::stoll(q.substr(0, digits));
  std::string unit = q.substr(digits);
  static const std::map<std::string, long long> kUnits = {
      {"", 1},     {"Ki", 1LL << 10}, {"Mi", 1LL << 20},   {"Gi", 1LL << 30},
      {"k", 1000}, {"M", 1000000},    {"G", 1000000000LL},
  };
  auto it = kUnits.find(unit);
  return it == kUnits.end() ? -1 : n * it->second;
}

UnitFile LoadUnit(const std::string& path) {
  UnitFile unit;
  std::ifstream in(path);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    unit[section][line.substr(0, eq)].push_back(line.substr(eq + 1));
  }
  return unit;
}

std::string UnitValue(const UnitFile& unit, const std::string& section, const std::string& key) {
  auto s = unit.find(section);
  if (s == unit.end()) return "";
  auto k = s->second.find(key);
  return k == s->second.end() || k->second.empty() ? "" : k->second.back();
}

std::set<std::string> UnitWords(const UnitFile& unit, const std::string& section,
                                const std::string& key) {
  std::set<std::string> out;
  auto s = unit.find(section);
  if (s == unit.end()) return out;
  auto k = s->second.find(key);
  if (k == s->second.end()) return out;
  for (const auto& v : k->second) {
    std::istringstream words(v);
    std::string w;
    while (words >> w) out.insert(w);
  }
  return out;
}

}  // namespace clrdiag::testing
