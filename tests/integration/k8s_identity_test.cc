// Kubernetes identity without a cluster: a real .NET process placed the way kubelet and
// containerd place a pod's container — in a kubepods cgroup named by the systemd driver (made
// here in the host's cgroup v2 hierarchy), with HOSTNAME set to the pod name and the
// service-account namespace file mounted in its own mount namespace — is reported by
// `clrdiag ps` with its container id, pod UID, pod name and namespace; a plain process is not.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

// Mount point of the cgroup v2 hierarchy (/sys/fs/cgroup on v2 hosts, /sys/fs/cgroup/unified
// on hybrid ones), or "" when there is none.
std::string CgroupV2Mount() {
  std::istringstream lines(ReadFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(lines, line)) {
    // "id parent dev root mountpoint options [optional...] - fstype source superoptions"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, mountpoint;
    fields >> id >> parent >> dev >> root >> mountpoint;
    return mountpoint;
  }
  return "";
}

std::string RandomHex(std::mt19937_64& rng, size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < digits; ++i) s += kHex[rng() % 16];
  return s;
}

// A chain of cgroup directories created for the test, removed (deepest first) on destruction.
class CgroupChain {
 public:
  CgroupChain(const std::string& base, const std::vector<std::string>& components) {
    std::string path = base;
    for (const std::string& c : components) {
      path += "/" + c;
      if (::mkdir(path.c_str(), 0755) != 0) {
        error_ = "mkdir " + path + ": " + std::strerror(errno);
        return;
      }
      dirs_.push_back(path);
    }
  }
  ~CgroupChain() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      // A killed member may take a moment to leave the cgroup.
      for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  const std::string& error() const { return error_; }
  std::string leaf() const { return dirs_.empty() ? "" : dirs_.back(); }

 private:
  std::vector<std::string> dirs_;
  std::string error_;
};

TEST(K8sIdentityTest, PodProcessShowsContainerPodAndNamespace) {
  ASSERT_EQ(::geteuid(), 0u) << "this test creates cgroups and mount namespaces (CI is root)";
  const std::string cg2 = CgroupV2Mount();
  ASSERT_FALSE(cg2.empty()) << "no cgroup2 mount in /proc/self/mountinfo";

  std::mt19937_64 rng(std::random_device{}());
  const std::string container_id = RandomHex(rng, 64);
  const std::string uid = RandomHex(rng, 8) + "-" + RandomHex(rng, 4) + "-4" + RandomHex(rng, 3) +
                          "-a" + RandomHex(rng, 3) + "-" + RandomHex(rng, 12);
  std::string uid_underscores = uid;
  std::replace(uid_underscores.begin(), uid_underscores.end(), '-', '_');
  const std::string pod = "shop-7d9c6b5f4-x2x7q";
  const std::string ns = "clrdiag-test";

  // The systemd driver's names, under a private top directory so that runs never collide.
  CgroupChain cgroups(
      cg2, {"clrdiag-test-" + std::to_string(::getpid()), "kubepods.slice",
            "kubepods-burstable.slice", "kubepods-burstable-pod" + uid_underscores + ".slice",
            "cri-containerd-" + container_id + ".scope"});
  ASSERT_EQ(cgroups.error(), "");

  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();

  // In its own mount namespace: a tmpfs on the directory /var/run leads to (/run on most
  // hosts, where /var/run is an absolute symlink: the daemon must resolve it inside the
  // process's root, not its own) holding the service account's namespace file; then the shell
  // joins the container's cgroup and becomes the app.
  const std::string script =
      "set -e; run=$(readlink -f /var/run); mount -t tmpfs tmpfs \"$run\"; "
      "mkdir -p \"$run/secrets/kubernetes.io/serviceaccount\"; "
      "printf '%s\\n' '" +
      ns + "' > \"$run/secrets/kubernetes.io/serviceaccount/namespace\"; echo $$ > '" +
      cgroups.leaf() + "/cgroup.procs'; exec '" + FixturesDir() + "/SleepApp/SleepApp' in-pod";
  SpawnOptions opts;
  opts.env["HOSTNAME"] = pod;
  auto app = Process::Spawn(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script}, opts);
  ASSERT_TRUE(app);
  ASSERT_TRUE(app->WaitForLine("READY", std::chrono::seconds(60)).has_value());
  EXPECT_CONTAINS(ReadFile("/proc/" + std::to_string(app->pid()) + "/cgroup"), container_id);

  // A plain process next to it: no identity.
  SpawnOptions plain_opts;
  plain_opts.env["HOSTNAME"] = "box";
  auto plain = StartFixture("SleepApp", {"plain"}, plain_opts);
  ASSERT_TRUE(plain);

  RunResult ps = d.Client({"ps", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  bool found_pod = false, found_plain = false;
  for (const auto& p : ParseJson(ps.out)) {
    if (p["pid"] == app->pid()) {
      found_pod = true;
      EXPECT_EQ(p["container_id"], container_id);
      EXPECT_EQ(p["container_runtime"], "containerd");
      EXPECT_EQ(p["pod_uid"], uid);
      EXPECT_EQ(p["pod"], pod);
      EXPECT_EQ(p["namespace"], ns);
    }
    if (p["pid"] == plain->pid()) {
      found_plain = true;
      EXPECT_EQ(p["container_id"], "");
      EXPECT_EQ(p["pod_uid"], "");
      EXPECT_EQ(p["pod"], "");  // HOSTNAME alone does not make a pod
      EXPECT_EQ(p["namespace"], "");
    }
  }
  EXPECT_TRUE(found_pod) << ps.out;
  EXPECT_TRUE(found_plain) << ps.out;

  // Text: dotnet-dump's columns first, the pod marker at the end of the row.
  RunResult text = d.Client({"ps"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::istringstream rows(text.out);
  std::string row;
  bool pod_row = false, plain_row = false;
  while (std::getline(rows, row)) {
    std::istringstream cols(row);
    std::string pid, name;
    cols >> pid >> name;
    if (pid == std::to_string(app->pid())) {
      pod_row = true;
      EXPECT_EQ(name, "SleepApp");
      EXPECT_TRUE(row.ends_with("  [pod " + ns + "/" + pod + "]")) << row;
    }
    if (pid == std::to_string(plain->pid())) {
      plain_row = true;
      EXPECT_EQ(row.find("[pod"), std::string::npos) << row;
      EXPECT_EQ(row.find("[container"), std::string::npos) << row;
    }
  }
  EXPECT_TRUE(pod_row && plain_row) << text.out;

  // End the apps (the pod's before its cgroups are removed) and remove the socket files they
  // leave behind in /tmp.
  for (Process* p : {app.get(), plain.get()}) {
    const pid_t pid = p->pid();
    p->Signal(SIGKILL);
    p->Wait(std::chrono::seconds(10));
    RemoveDiagnosticSockets("/tmp", pid);
  }
}

}  // namespace
}  // namespace clrdiag::testing
