// The deployment files under deploy/: the security-relevant facts of the Kubernetes manifests
// and the systemd unit, and that the configurations they carry pass clrdiagd --check-config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/deploy/manifest_util.h"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

std::string K8s(const std::string& name) { return SourceDir() + "/deploy/k8s/" + name; }
std::string UnitPath() { return SourceDir() + "/deploy/systemd/clrdiagd.service"; }

// What a collection needs (docs/deploy.md; capabilities_test.cc shows each one is needed).
const std::set<std::string> kNodeAgentCapabilities = {"SYS_PTRACE", "DAC_READ_SEARCH",
                                                      "DAC_OVERRIDE", "CHOWN", "FOWNER"};

// Flags the manifests use that land with other parts of issue 5 (metrics: --metrics-listen;
// listen mode: --diagnostic-port). A flag missing from `clrdiagd --help` must be listed here;
// once every flag exists, the whole command line is also run with --check-config.

// The clrdiagd.yaml of `map` written to a file in `dir`.
std::string WriteEmbeddedConfig(const YAML::Node& map, const TempDir& dir) {
  std::string path = dir / (map["metadata"]["name"].as<std::string>() + ".yaml");
  std::ofstream(path) << map["data"]["clrdiagd.yaml"].as<std::string>();
  return path;
}

// The ConfigMap a pod mounts at /etc/clrdiag, as clrdiagd's --config expects it.
YAML::Node ConfigOfPod(const std::vector<YAML::Node>& docs, const YAML::Node& pod,
                       const YAML::Node& container) {
  std::string config = ArgValue(container, "--config");
  for (const auto& m : container["volumeMounts"]) {
    std::string dir = m["mountPath"].as<std::string>();
    if (config.rfind(dir + "/", 0) != 0) continue;
    std::string cm =
        FindVolume(pod, m["name"].as<std::string>())["configMap"]["name"].as<std::string>("");
    for (const auto& d : docs) {
      if (d["kind"].as<std::string>() == "ConfigMap" &&
          d["metadata"]["name"].as<std::string>() == cm)
        return d;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Probes of the daemon container: present, on a declared port.
void ExpectProbes(const YAML::Node& c) {
  std::set<std::string> ports;
  for (const auto& p : c["ports"]) ports.insert(p["name"].as<std::string>(""));
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    SCOPED_TRACE(probe);
    ASSERT_TRUE(c[probe]) << "no " << probe;
    const YAML::Node& get = c[probe]["httpGet"];
    ASSERT_TRUE(get);
    EXPECT_TRUE(ports.count(get["port"].as<std::string>())) << get["port"].as<std::string>();
    EXPECT_EQ(get["path"].as<std::string>(),
              std::string(probe) == "readinessProbe" ? "/readyz" : "/healthz");
    // The probes reach the metrics listener the daemon is started with.
    EXPECT_FALSE(ArgValue(c, "--metrics-listen").empty());
  }
}

// requests and limits set; the memory limit holds at least the request and one analysis
// worker's data limit (else the cgroup OOM-kills the pod before RLIMIT_DATA stops the worker
// with a clean error).
void ExpectResources(const YAML::Node& c, const std::string& config_text) {
  const YAML::Node& r = c["resources"];
  ASSERT_TRUE(r["requests"]["cpu"]);
  ASSERT_TRUE(r["requests"]["memory"]);
  ASSERT_TRUE(r["limits"]["memory"]);
  long long req = MemoryBytes(r["requests"]["memory"].as<std::string>());
  long long lim = MemoryBytes(r["limits"]["memory"].as<std::string>());
  ASSERT_GT(req, 0);
  ASSERT_GT(lim, 0);
  EXPECT_GE(lim, req);
  YAML::Node cfg = YAML::Load(config_text);
  ASSERT_TRUE(cfg["analysis"]["worker_memory_mib"])
      << "set analysis.worker_memory_mib below the limit";
  EXPECT_LE(cfg["analysis"]["worker_memory_mib"].as<long long>() << 20, lim);
}

TEST(K8sManifestTest, EveryManifestParsesWithKindAndName) {
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(SourceDir() + "/deploy/k8s")) {
    if (e.path().extension() != ".yaml") continue;
    ++files;
    SCOPED_TRACE(e.path().string());
    std::vector<YAML::Node> docs;
    ASSERT_NO_THROW(docs = LoadManifests(e.path().string()));
    ASSERT_FALSE(docs.empty());
    for (const auto& d : docs) {
      EXPECT_TRUE(d["apiVersion"]);
      EXPECT_TRUE(d["kind"]);
      EXPECT_TRUE(d["metadata"]["name"]);
    }
  }
  EXPECT_GE(files, 3);
}

TEST(K8sManifestTest, DaemonSetIsANodeAgentWithOnlyTheCapabilitiesItNeeds) {
  auto docs = LoadManifests(K8s("daemonset.yaml"));
  YAML::Node ds = FindKind(docs, "DaemonSet");
  ASSERT_TRUE(ds);
  YAML::Node pod = PodSpec(ds);
  EXPECT_TRUE(pod["hostPID"].as<bool>(false));
  EXPECT_FALSE(pod["hostNetwork"].as<bool>(false));
  EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>(true));
  // Longer than the daemon's own shutdown grace for running collections (60 s).
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<int>(30), 60);
  YAML::Node c = DaemonContainer(pod);
  ASSERT_TRUE(c);
  const YAML::Node& sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>(true)) << "privileged must be set to false";
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>(false));
  EXPECT_EQ(StringSet(sc["capabilities"]["drop"]), std::set<std::string>{"ALL"});
  EXPECT_EQ(StringSet(sc["capabilities"]["add"]), kNodeAgentCapabilities);
  EXPECT_EQ(sc["runAsUser"].as<long>(-1), 0) << "added capabilities reach uid 0 only";

  // Store and socket on the host, where the config puts them.
  YAML::Node cm = ConfigOfPod(docs, pod, c);
  ASSERT_TRUE(cm) << "the --config file is not a mounted ConfigMap";
  YAML::Node cfg = YAML::Load(cm["data"]["clrdiagd.yaml"].as<std::string>());
  std::string dump_dir = cfg["dump_dir"].as<std::string>();
  std::string sock = cfg["listen"][0].as<std::string>();
  ASSERT_EQ(sock.rfind("unix:/", 0), 0u) << sock;
  std::string sock_dir = std::filesystem::path(sock.substr(5)).parent_path().string();
  bool store_on_host = false, socket_on_host = false;
  for (const auto& v : pod["volumes"]) {
    if (!v["hostPath"]) continue;
    std::string at = MountPathOf(c, v["name"].as<std::string>());
    if (at == dump_dir && v["hostPath"]["path"].as<std::string>() == "/var/lib/clrdiag")
      store_on_host = true;
    if (at == sock_dir && v["hostPath"]["path"].as<std::string>() == "/run/clrdiag")
      socket_on_host = true;
  }
  EXPECT_TRUE(store_on_host) << "dump_dir " << dump_dir << " is not hostPath /var/lib/clrdiag";
  EXPECT_TRUE(socket_on_host) << "socket dir " << sock_dir << " is not hostPath /run/clrdiag";
  ExpectProbes(c);
  ExpectResources(c, cm["data"]["clrdiagd.yaml"].as<std::string>());
}

TEST(K8sManifestTest, SidecarSharesThePidNamespaceAsTheAppsUserWithoutCapabilities) {
  auto docs = LoadManifests(K8s("sidecar.yaml"));
  YAML::Node dep = FindKind(docs, "Deployment");
  ASSERT_TRUE(dep);
  YAML::Node pod = PodSpec(dep);
  EXPECT_TRUE(pod["shareProcessNamespace"].as<bool>(false));
  EXPECT_FALSE(pod["hostPID"].as<bool>(false));
  YAML::Node c = DaemonContainer(pod);
  YAML::Node app = FindContainer(pod, "app");
  ASSERT_TRUE(c);
  ASSERT_TRUE(app);
  // Same uid: the kernel then allows /proc/<pid>/root without CAP_SYS_PTRACE.
  EXPECT_GT(RunAsUser(pod, c), 0);
  EXPECT_EQ(RunAsUser(pod, c), RunAsUser(pod, app));
  const YAML::Node& sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>(true));
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
  EXPECT_EQ(StringSet(sc["capabilities"]["drop"]), std::set<std::string>{"ALL"});
  EXPECT_TRUE(StringSet(sc["capabilities"]["add"]).empty());
  YAML::Node cm = ConfigOfPod(docs, pod, c);
  ASSERT_TRUE(cm);
  YAML::Node cfg = YAML::Load(cm["data"]["clrdiagd.yaml"].as<std::string>());
  bool store_mounted = false;
  for (const auto& v : pod["volumes"]) {
    if (MountPathOf(c, v["name"].as<std::string>()) == cfg["dump_dir"].as<std::string>())
      store_mounted = true;
  }
  EXPECT_TRUE(store_mounted) << "the store is not a volume (read-only root filesystem)";
  ExpectProbes(c);
  ExpectResources(c, cm["data"]["clrdiagd.yaml"].as<std::string>());
}

TEST(K8sManifestTest, ListenSidecarConnectsTheRuntimeThroughASharedVolume) {
  auto docs = LoadManifests(K8s("listen-sidecar.yaml"));
  YAML::Node dep = FindKind(docs, "Deployment");
  ASSERT_TRUE(dep);
  YAML::Node pod = PodSpec(dep);
  EXPECT_FALSE(pod["shareProcessNamespace"].as<bool>(false));
  EXPECT_FALSE(pod["hostPID"].as<bool>(false));
  YAML::Node c = DaemonContainer(pod);
  YAML::Node app = FindContainer(pod, "app");
  ASSERT_TRUE(c);
  ASSERT_TRUE(app);
  std::string port = ArgValue(c, "--diagnostic-port");
  ASSERT_FALSE(port.empty()) << "the daemon is not started with --diagnostic-port";
  std::string env;
  for (const auto& e : app["env"]) {
    if (e["name"].as<std::string>() == "DOTNET_DiagnosticPorts") env = e["value"].as<std::string>();
  }
  ASSERT_FALSE(env.empty()) << "the app has no DOTNET_DiagnosticPorts";
  EXPECT_EQ(env.substr(0, env.find(',')), port);
  // One volume, mounted in both at the directory of the socket (and of the dumps).
  std::string dir = std::filesystem::path(port).parent_path().string();
  bool shared = false;
  for (const auto& v : pod["volumes"]) {
    std::string name = v["name"].as<std::string>();
    if (v["emptyDir"] && MountPathOf(c, name) == dir && MountPathOf(app, name) == dir)
      shared = true;
  }
  EXPECT_TRUE(shared) << "no emptyDir mounted at " << dir << " in both containers";
  EXPECT_EQ(RunAsUser(pod, c), RunAsUser(pod, app));
  const YAML::Node& sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>(true));
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
  EXPECT_TRUE(StringSet(sc["capabilities"]["add"]).empty());
  YAML::Node cm = ConfigOfPod(docs, pod, c);
  ASSERT_TRUE(cm);
  ExpectProbes(c);
  ExpectResources(c, cm["data"]["clrdiagd.yaml"].as<std::string>());
}

TEST(K8sManifestTest, EmbeddedConfigsPassCheckConfig) {
  TempDir t;
  int checked = 0;
  for (const char* file : {"daemonset.yaml", "sidecar.yaml", "listen-sidecar.yaml"}) {
    for (const auto& d : LoadManifests(K8s(file))) {
      if (d["kind"].as<std::string>() != "ConfigMap" || !d["data"]["clrdiagd.yaml"]) continue;
      SCOPED_TRACE(file);
      std::string path = WriteEmbeddedConfig(d, t);
      RunResult r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", path});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_CONTAINS(r.out, "configuration OK");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
}

TEST(K8sManifestTest, DaemonCommandLinesUseRealFlags) {
  RunResult help = RunCommand({BinDir() + "/clrdiagd", "--help"});
  ASSERT_EQ(help.exit_code, 0);
  TempDir t;
  for (const char* file : {"daemonset.yaml", "sidecar.yaml", "listen-sidecar.yaml"}) {
    SCOPED_TRACE(file);
    auto docs = LoadManifests(K8s(file));
    YAML::Node workload = FindKind(docs, "DaemonSet");
    if (!workload) workload = FindKind(docs, "Deployment");
    ASSERT_TRUE(workload);
    YAML::Node pod = PodSpec(workload);
    YAML::Node c = DaemonContainer(pod);
    ASSERT_TRUE(c);
    std::vector<std::string> argv = {BinDir() + "/clrdiagd"};
    for (const auto& a : c["args"]) {
      std::string arg = a.as<std::string>();
      if (arg.rfind("--", 0) == 0) {
        EXPECT_TRUE(std::regex_search(help.out, std::regex(arg + "\\b")))
            << arg << " is not a clrdiagd flag";
      }
      argv.push_back(arg);
    }
    // The whole command line, with the ConfigMap as --config.
    YAML::Node cm = ConfigOfPod(docs, pod, c);
    ASSERT_TRUE(cm);
    std::string cfg = WriteEmbeddedConfig(cm, t);
    for (size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--config") argv[i + 1] = cfg;
    }
    argv.push_back("--check-config");
    RunResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

TEST(SystemdUnitTest, HardeningKeys) {
  UnitFile u = LoadUnit(UnitPath());
  EXPECT_EQ(UnitValue(u, "Service", "Type"), "notify");
  EXPECT_EQ(UnitValue(u, "Service", "NoNewPrivileges"), "yes");
  EXPECT_EQ(UnitValue(u, "Service", "ProtectSystem"), "strict");
  EXPECT_EQ(UnitValue(u, "Service", "PrivateTmp"), "yes");
  EXPECT_EQ(UnitValue(u, "Service", "PrivateDevices"), "yes");
  EXPECT_EQ(UnitValue(u, "Service", "ProtectHome"), "read-only");
  EXPECT_EQ(UnitValue(u, "Service", "UMask"), "0077");
  EXPECT_EQ(UnitValue(u, "Service", "RuntimeDirectory"), "clrdiag");
  EXPECT_EQ(UnitValue(u, "Service", "StateDirectory"), "clrdiag");
  EXPECT_EQ(UnitValue(u, "Service", "StateDirectoryMode"), "0700");
  for (const char* key : {"ProtectKernelModules", "ProtectKernelTunables", "ProtectControlGroups",
                          "RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality"}) {
    EXPECT_EQ(UnitValue(u, "Service", key), "yes") << key;
  }
  std::set<std::string> caps = UnitWords(u, "Service", "CapabilityBoundingSet");
  std::set<std::string> want;
  for (const auto& c : kNodeAgentCapabilities) want.insert("CAP_" + c);
  EXPECT_EQ(caps, want) << "the unit and the DaemonSet must grant the same capabilities";
  EXPECT_TRUE(UnitWords(u, "Service", "AmbientCapabilities").empty());
  EXPECT_EQ(UnitWords(u, "Service", "RestrictAddressFamilies"),
            (std::set<std::string>{"AF_UNIX", "AF_INET", "AF_INET6"}));
  EXPECT_EQ(UnitWords(u, "Service", "ReadWritePaths"),
            (std::set<std::string>{"/var/lib/clrdiag", "/run/clrdiag"}));
  // Settings that would hide the processes the daemon exists to see.
  EXPECT_NE(UnitValue(u, "Service", "ProtectProc"), "invisible");
  EXPECT_NE(UnitValue(u, "Service", "ProcSubset"), "pid");
  EXPECT_EQ(UnitValue(u, "Service", "PrivateNetwork"), "");
  EXPECT_EQ(UnitValue(u, "Service", "User"), "") << "runs as root with the bounding set above";
}

TEST(SystemdUnitTest, ShippedConfigUsesOnlyTheUnitsWritablePaths) {
  // As root, `unix:default` and `dump_dir: default` resolve to the paths the unit makes
  // writable.
  ASSERT_EQ(::geteuid(), 0u) << "run as root (CI does)";
  UnitFile u = LoadUnit(UnitPath());
  std::string exec = UnitValue(u, "Service", "ExecStart");
  EXPECT_CONTAINS(exec, "--config /etc/clrdiag/clrdiagd.yaml");
  EXPECT_CONTAINS(UnitValue(u, "Service", "ExecStartPre"), "--check-config");
  RunResult r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config",
                            SourceDir() + "/config/clrdiagd.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "listen unix:/run/clrdiag/clrdiagd.sock");
  EXPECT_CONTAINS(r.out, "dump_dir /var/lib/clrdiag");
}

TEST(SystemdUnitTest, SystemdAnalyzeVerifyIsClean) {
  // The unit as installed, with ExecStart pointing at the built daemon (verify checks that the
  // binary exists). Unknown keys and bad values are reported on stderr.
  TempDir t;
  std::ifstream in(UnitPath());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text = std::regex_replace(text, std::regex("/usr/local/bin/clrdiagd"), BinDir() + "/clrdiagd");
  std::ofstream(t / "clrdiagd.service") << text;
  RunResult r =
      RunCommand({"/usr/bin/systemd-analyze", "verify", "--man=no", t / "clrdiagd.service"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace clrdiag::testing
