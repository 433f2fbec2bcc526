#include "core/procfs/k8s_identity.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/procfs/discovery.h"
#include "core/procfs/fake_proc_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clrdiag::procfs {
namespace {

using ::clrdiag::procfs::testing::FakeProcTree;

const std::string kIdA = "fcb2ec7dc81f1d02ee143c0883107d0e8cf107097dbad861b55793d252687180";
const std::string kIdB = "e8509fd7656cc80f70450660c2e3904c07a9cebffd80a13fc77d47e1b9f4a1b0";
const std::string kIdC = "d82b93031b3a169cac41dc34f4e063c0381c18a969f3f18562f860af8b010f2c";
const std::string kIdD = "1f44b3795e8eaa5d0dd19ccee3b6a4ffabfb6a4691423cff8cae087d85c02535";
const std::string kIdE = "8cc5a819502e524cfe441996b80c39e72702ef26eeafe28f0758cd430b75a17a";
const std::string kIdF = "3cc14fedefa0225a2f054f7c3c33b65a46e84fece8212c9a1bee91f8b1ea369b";
const std::string kIdG = "23d6009a4d8feaeb43ce281c9a7d4caae7878789e185039084110f9d2aaaebc3";
const std::string kIdH = "403a3be5f328baac1763863290dc274106b3c73808ac1b393f150013bdcc1623";
const std::string kUid1 = "1605bd2e-6a85-463e-b544-d80837257522";
const std::string kUid2 = "df415933-1ed4-4b77-b9bd-23680b9de8b7";
const std::string kUid3 = "662cf30d-47d8-4739-a233-0ce9ab0f7cc0";
const std::string kUid4 = "ca9ec554-1c97-42d4-b6a6-479fdfda1b12";
const std::string kStaticUid = "d4b9649bc14dec11834d994eb8aa7809";

std::string ReadData(const std::string& name) {
  std::ifstream in(absl::StrCat(CLRDIAG_TEST_DATA_DIR, "/cgroup/", name));
  EXPECT_TRUE(in) << "missing test data file " << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Sample {
  const char* file;
  std::string_view container_id;
  std::string_view runtime;
  std::string_view pod_uid;
};

// One recorded file per runtime, driver and cgroup version (tests/data/cgroup/README.md).
const Sample kSamples[] = {
    {"containerd-systemd-v2", kIdA, "containerd", kUid1},
    {"containerd-systemd-v1", kIdB, "containerd", kUid2},
    {"containerd-cgroupfs-hybrid", kIdC, "", kUid3},
    {"containerd-cgroupfs-v2-guaranteed", kIdD, "", kUid4},
    {"crio-systemd-v2-guaranteed", kIdE, "cri-o", kUid1},
    {"crio-systemd-v2-crun-nested", kIdF, "cri-o", kUid2},
    {"crio-cgroupfs-v1", kIdG, "cri-o", kUid3},
    // conmon is CRI-O's monitor, not the container: only the pod is known.
    {"crio-conmon-v2", "", "", kUid2},
    {"cri-dockerd-systemd-v1", kIdH, "docker", kUid4},
    {"docker-cgroupfs-v1", kIdA, "docker", ""},
    {"docker-systemd-v2", kIdB, "docker", ""},
    // Nested: the innermost container (the pod's, inside the kind node's container).
    {"kind-node-systemd-v2", kIdD, "containerd", kUid1},
    {"kind-node-cgroupfs-v2", kIdF, "", kUid2},
    {"static-pod-containerd-v2", kIdG, "containerd", kStaticUid},
    {"private-cgroupns-v2", kIdH, "containerd", kUid3},
    {"podman-v2", kIdA, "podman", ""},
    {"host-session-v2", "", "", ""},
    {"pod-level-only-v2", "", "", kUid4},
    {"this-machine-hybrid", "", "", ""},
};

TEST(CgroupIdentityTest, RecordedFilesOfEachRuntimeAndDriver) {
  for (const Sample& s : kSamples) {
    SCOPED_TRACE(s.file);
    CgroupIdentity id = ParseCgroupFile(ReadData(s.file));
    EXPECT_EQ(id.container_id, s.container_id);
    EXPECT_EQ(id.container_runtime, s.runtime);
    EXPECT_EQ(id.pod_uid, s.pod_uid);
  }
}

TEST(CgroupIdentityTest, EveryV1LineParsesAlike) {
  // A v1 file repeats the path per hierarchy; any single line gives the same answer.
  std::istringstream lines(ReadData("crio-cgroupfs-v1"));
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    if (line.starts_with("3:rdma:")) continue;  // the one hierarchy left at the root
    SCOPED_TRACE(line);
    CgroupIdentity id = ParseCgroupFile(line);
    EXPECT_EQ(id.container_id, kIdG);
    EXPECT_EQ(id.pod_uid, kUid3);
    ++parsed;
  }
  EXPECT_EQ(parsed, 11);
}

TEST(CgroupIdentityTest, PrefersTheLineThatTellsMost) {
  // Hybrid host where only the v2 line is in the pod (v1 hierarchies left at the root), and
  // one v1 hierarchy carrying a pod-level cgroup only.
  std::string text = absl::StrCat("4:memory:/kubepods/burstable/pod", kUid1, "\n",
                                  "1:name=systemd:/\n", "0::/kubepods/pod", kUid2, "/", kIdC, "\n");
  CgroupIdentity id = ParseCgroupFile(text);
  EXPECT_EQ(id.container_id, kIdC);
  EXPECT_EQ(id.pod_uid, kUid2);
}

TEST(CgroupIdentityTest, GarbageAndTruncatedInputGiveNothing) {
  const std::string full = absl::StrCat("0::/kubepods/besteffort/pod", kUid1, "/", kIdA);
  for (std::string text : {
           std::string(),
           std::string("\n\n\n"),
           std::string("no colons at all"),
           std::string("0:only-one-colon /kubepods/pod") + std::string(kUid1),
           std::string("\0\0\0:\0:\0", 8),
           // The id cut short (a truncated read), one digit too many, upper case.
           absl::StrCat("0::/docker/", kIdA.substr(0, 63)),
           absl::StrCat("0::/docker/", kIdA, "0"),
           absl::StrCat("0::/system.slice/docker-", absl::AsciiStrToUpper(kIdA), ".scope"),
           // An unknown scope prefix and a prefix with nothing after it.
           absl::StrCat("0::/system.slice/lxc-", kIdA, ".scope"),
           std::string("0::/system.slice/cri-containerd-.scope"),
           // "pod<uid>" outside any kubepods cgroup is not a pod.
           absl::StrCat("0::/pod", kUid1),
           // Bad UIDs: truncated, dashes misplaced, not hex.
           absl::StrCat("0::/kubepods/pod", kUid1.substr(0, 35)),
           std::string("0::/kubepods/pod1605bd2e6-a85-463e-b544-d80837257522"),
           std::string("0::/kubepods/podzz05bd2e-6a85-463e-b544-d80837257522"),
           std::string("0::/kubepods.slice/kubepods-pod.slice"),
       }) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(ParseCgroupFile(text).empty());
  }
  // A file cut inside its last line keeps what the complete lines said.
  std::string two_lines = absl::StrCat(full, "\n", "0::/kubepods/pod", kUid2.substr(0, 10));
  CgroupIdentity id = ParseCgroupFile(two_lines);
  EXPECT_EQ(id.container_id, kIdA);
  EXPECT_EQ(id.pod_uid, kUid1);
  // No trailing newline, CRLF-free, a colon inside the path.
  id = ParseCgroupFile(absl::StrCat("0::/weird:dir/kubepods/pod", kUid3, "/", kIdB));
  EXPECT_EQ(id.container_id, kIdB);
  EXPECT_EQ(id.pod_uid, kUid3);
}

TEST(CgroupIdentityTest, ContainerWithoutPod) {
  CgroupIdentity id = ParseCgroupPath(absl::StrCat("/system.slice/containerd.service/", kIdE));
  EXPECT_EQ(id.container_id, kIdE);
  EXPECT_EQ(id.container_runtime, "");
  EXPECT_EQ(id.pod_uid, "");
}

TEST(K8sNamesTest, DnsLabelAndSubdomain) {
  EXPECT_TRUE(IsDnsLabel("default"));
  EXPECT_TRUE(IsDnsLabel("kube-system"));
  EXPECT_TRUE(IsDnsLabel(std::string(63, 'a')));
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
  EXPECT_FALSE(IsDnsLabel(""));
  EXPECT_FALSE(IsDnsLabel("-a"));
  EXPECT_FALSE(IsDnsLabel("a-"));
  EXPECT_FALSE(IsDnsLabel("Default"));
  EXPECT_FALSE(IsDnsLabel("a_b"));
  EXPECT_FALSE(IsDnsLabel("root:x:0:0"));
  EXPECT_TRUE(IsDnsSubdomain("shop-7d9c6b5f4-x2x7q"));
  EXPECT_TRUE(IsDnsSubdomain("web-0.web.svc"));
  EXPECT_FALSE(IsDnsSubdomain("a..b"));
  EXPECT_FALSE(IsDnsSubdomain("a."));
  EXPECT_FALSE(IsDnsSubdomain("../etc"));
  EXPECT_FALSE(IsDnsSubdomain("a/b"));
  EXPECT_FALSE(IsDnsSubdomain(std::string(254, 'a')));
}

class K8sIdentityTest : public ::testing::Test {
 protected:
  // A process whose root is `root`, with HOSTNAME (if non-empty) and a cgroup file.
  void AddProcess(pid_t pid, const std::string& root, const std::string& hostname,
                  const std::string& cgroup) {
    std::vector<std::string> env = {"PATH=/usr/bin"};
    if (!hostname.empty()) env.push_back("HOSTNAME=" + hostname);
    tree_.AddProcess({.pid = pid, .environ = env, .root = root});
    tree_.WriteProcFile(pid, "cgroup", cgroup);
  }
  void WriteInRoot(const std::string& root, const std::string& path, const std::string& text) {
    std::filesystem::path p(path);
    std::ofstream(tree_.RootDir(root, p.parent_path().string()) + "/" + p.filename().string())
        << text;
  }
  K8sIdentity Read(pid_t pid) {
    std::string environ = ReadEnviron(pid);
    return ReadK8sIdentity(fs_, pid, environ);
  }
  std::string ReadEnviron(pid_t pid) {
    std::ifstream in(absl::StrCat(tree_.proc(), "/", pid, "/environ"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  FakeProcTree tree_;
  ProcFs fs_{tree_.proc()};
};

TEST_F(K8sIdentityTest, PodProcessGetsEveryField) {
  AddProcess(10, "pod", "shop-7d9c6b5f4-x2x7q", ReadData("containerd-systemd-v2"));
  // /var/run -> /run, as in most images: the file is under /run inside the target's root.
  WriteInRoot("pod", "/run/secrets/kubernetes.io/serviceaccount/namespace", "shop");
  std::filesystem::create_symlink("/run", tree_.RootDir("pod", "/var") + "/run");
  K8sIdentity k = Read(10);
  EXPECT_EQ(k.container_id, kIdA);
  EXPECT_EQ(k.container_runtime, "containerd");
  EXPECT_EQ(k.pod_uid, kUid1);
  EXPECT_EQ(k.pod, "shop-7d9c6b5f4-x2x7q");
  EXPECT_EQ(k.namespace_, "shop");
  EXPECT_TRUE(k.in_pod());
}

TEST_F(K8sIdentityTest, PlainHostProcessWithHostnameIsNotAPod) {
  AddProcess(11, "host", "buildbox", ReadData("host-session-v2"));
  K8sIdentity k = Read(11);
  EXPECT_FALSE(k.in_pod());
  EXPECT_EQ(k.pod, "");
  EXPECT_EQ(k.namespace_, "");
  EXPECT_EQ(k.container_id, "");
}

TEST_F(K8sIdentityTest, DockerContainerHasIdButNoPod) {
  AddProcess(12, "box", "fcb2ec7dc81f", ReadData("docker-cgroupfs-v1"));
  K8sIdentity k = Read(12);
  EXPECT_EQ(k.container_id, kIdA);
  EXPECT_EQ(k.container_runtime, "docker");
  EXPECT_EQ(k.pod, "");
  EXPECT_FALSE(k.in_pod());
}

TEST_F(K8sIdentityTest, NamespaceFileAloneMarksAPod) {
  // A daemon in a private cgroup namespace sees "0::/": the mounted service account still
  // tells a pod. The file's trailing newline is not part of the name.
  AddProcess(13, "pod2", "api-0", "0::/\n");
  WriteInRoot("pod2", "/var/run/secrets/kubernetes.io/serviceaccount/namespace", "payments\n");
  K8sIdentity k = Read(13);
  EXPECT_EQ(k.namespace_, "payments");
  EXPECT_EQ(k.pod, "api-0");
  EXPECT_EQ(k.pod_uid, "");
}

TEST_F(K8sIdentityTest, HostnameFileWhenEnvironmentHasNone) {
  AddProcess(14, "pod3", "", ReadData("crio-cgroupfs-v1"));
  WriteInRoot("pod3", "/etc/hostname", "worker-5\n");
  EXPECT_EQ(Read(14).pod, "worker-5");
}

TEST_F(K8sIdentityTest, InvalidValuesFromTheTargetAreDropped) {
  AddProcess(15, "pod4", "Not_A/Name", ReadData("crio-systemd-v2-guaranteed"));
  WriteInRoot("pod4", "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
              "root:x:0:0:root:/root:/bin/bash\n");
  K8sIdentity k = Read(15);
  EXPECT_EQ(k.pod_uid, kUid1);
  EXPECT_EQ(k.pod, "");
  EXPECT_EQ(k.namespace_, "");
}

TEST_F(K8sIdentityTest, MissingCgroupFileLeavesContainerEmpty) {
  tree_.AddProcess({.pid = 16});
  K8sIdentity k = Read(16);
  EXPECT_EQ(k.container_id, "");
  EXPECT_FALSE(k.in_pod());
}

TEST_F(K8sIdentityTest, ReadFileInRootStaysInsideTheRoot) {
  tree_.AddProcess({.pid = 20, .root = "evil"});
  // A file the reader has outside the target's root, and symlinks inside the root aiming at
  // it by an absolute path and by climbing with "..".
  std::string outside = tree_.base() + "/outside-secret";
  std::ofstream(outside) << "host-secret";
  std::string dir = tree_.RootDir("evil", "/var/run/secrets/kubernetes.io/serviceaccount");
  std::filesystem::create_symlink(outside, dir + "/namespace");
  std::filesystem::create_symlink("../../../../../../../../outside-secret", dir + "/climb");
  WriteInRoot("evil", "/outside-secret", "inside");

  absl::StatusOr<std::string> abs = ReadFileInRoot(fs_, 20, kServiceAccountNamespaceFile, 100);
  // The absolute target resolves inside the root, where no such path exists.
  EXPECT_TRUE(absl::IsNotFound(abs.status())) << abs.status();
  absl::StatusOr<std::string> climb =
      ReadFileInRoot(fs_, 20, "/var/run/secrets/kubernetes.io/serviceaccount/climb", 100);
  ASSERT_TRUE(climb.ok()) << climb.status();
  EXPECT_EQ(*climb, "inside");  // ".." stops at the target's root
}

TEST_F(K8sIdentityTest, ReadFileInRootRejectsFifosAndLargeFiles) {
  tree_.AddProcess({.pid = 21, .root = "odd"});
  std::string fifo = tree_.RootDir("odd", "/x") + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::string> r = ReadFileInRoot(fs_, 21, "/x/fifo", 100);  // must not block
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  WriteInRoot("odd", "/x/big", std::string(101, 'a'));
  r = ReadFileInRoot(fs_, 21, "/x/big", 100);
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  WriteInRoot("odd", "/x/fits", std::string(100, 'a'));
  r = ReadFileInRoot(fs_, 21, "/x/fits", 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size(), 100u);
  EXPECT_TRUE(absl::IsNotFound(ReadFileInRoot(fs_, 21, "/x/none", 100).status()));
}

TEST_F(K8sIdentityTest, DiscoveryReportsTheIdentity) {
  AddProcess(30, "pod", "shop-0", ReadData("crio-systemd-v2-crun-nested"));
  WriteInRoot("pod", "/var/run/secrets/kubernetes.io/serviceaccount/namespace", "shop");
  tree_.AddSocket("pod", "/tmp/dotnet-diagnostic-30-4242-socket");
  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, 1);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].k8s.container_id, kIdF);
  EXPECT_EQ(found[0].k8s.container_runtime, "cri-o");
  EXPECT_EQ(found[0].k8s.pod_uid, kUid2);
  EXPECT_EQ(found[0].k8s.pod, "shop-0");
  EXPECT_EQ(found[0].k8s.namespace_, "shop");
}

}  // namespace
}  // namespace clrdiag::procfs
