#include "core/procfs/discovery.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/procfs/fake_proc_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clrdiag::procfs {
namespace {

using ::clrdiag::procfs::testing::FakeProcTree;
using ::clrdiag::procfs::testing::RunUnprivileged;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr pid_t kSelf = 1;

std::string SocketName(pid_t pid, uint64_t key) {
  return absl::StrCat("dotnet-diagnostic-", pid, "-", key, "-socket");
}

class DiscoveryTest : public ::testing::Test {
 protected:
  std::vector<pid_t> ScannedPids() {
    std::vector<pid_t> pids;
    for (const ProcessFacts& f : ScanDotnetProcesses(fs_, kSelf)) pids.push_back(f.pid);
    return pids;
  }
  // A process with its runtime socket in /tmp of the shared host root.
  void AddDotnet(pid_t pid, uint64_t start_time = 4242) {
    tree_.AddProcess({.pid = pid, .start_time = start_time});
    tree_.AddSocket("host", "/tmp/" + SocketName(pid, start_time));
  }

  FakeProcTree tree_;
  ProcFs fs_{tree_.proc()};
};

TEST_F(DiscoveryTest, FindsProcessWithSocketAndFillsFacts) {
  tree_.AddProcess({.pid = 100,
                    .comm = "MyService",
                    .uid = 1001,
                    .start_time = 5555,
                    .rss_kb = 300,
                    .cmdline = {"/opt/svc/MyService", "--port", "80"},
                    .exe = "/opt/svc/MyService"});
  tree_.AddSocket("host", "/tmp/" + SocketName(100, 5555));
  tree_.AddProcess({.pid = 101});  // not .NET

  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, kSelf);
  ASSERT_EQ(found.size(), 1u);
  const ProcessFacts& f = found[0];
  EXPECT_EQ(f.pid, 100);
  EXPECT_EQ(f.ns_pid, 100);
  EXPECT_EQ(f.name, "MyService");
  EXPECT_EQ(f.exe, "/opt/svc/MyService");
  EXPECT_THAT(f.cmdline, ElementsAre("/opt/svc/MyService", "--port", "80"));
  EXPECT_EQ(f.uid, 1001u);
  EXPECT_EQ(f.start_time, 5555u);
  EXPECT_EQ(f.rss_bytes, 300u * 1024);
  EXPECT_EQ(f.socket.host_pid, 100);
  EXPECT_EQ(f.socket.ns_pid, 100);
  EXPECT_EQ(f.socket.tmpdir, "/tmp/");
  EXPECT_EQ(f.socket.key, 5555u);
  EXPECT_EQ(f.socket.path, tree_.proc() + "/100/root/tmp/" + SocketName(100, 5555));
  struct stat st {};
  ASSERT_EQ(::stat(f.socket.path.c_str(), &st), 0) << "socket path must be reachable";
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(DiscoveryTest, ResultsAreAscendingByPid) {
  for (pid_t pid : {900, 30, 450}) AddDotnet(pid);
  EXPECT_THAT(ScannedPids(), ElementsAre(30, 450, 900));
}

TEST_F(DiscoveryTest, NameComesFromExeBasename) {
  // "dotnet app.dll" shows as "dotnet", like dotnet-dump ps.
  tree_.AddProcess({.pid = 10, .comm = "app", .exe = "/usr/share/dotnet/dotnet"});
  tree_.AddSocket("host", "/tmp/" + SocketName(10, 4242));
  // A replaced binary reads "<path> (deleted)".
  tree_.AddProcess({.pid = 11, .comm = "worker", .exe = "/srv/Worker (deleted)"});
  tree_.AddSocket("host", "/tmp/" + SocketName(11, 4242));
  // exe unreadable: the comm from status.
  tree_.AddProcess({.pid = 12, .comm = "VeryLongAppName", .exe = std::nullopt});
  tree_.AddSocket("host", "/tmp/" + SocketName(12, 4242));

  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, kSelf);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].name, "dotnet");
  EXPECT_EQ(found[1].name, "Worker");
  EXPECT_EQ(found[1].exe, "/srv/Worker (deleted)");
  EXPECT_EQ(found[2].name, "VeryLongAppName");
  EXPECT_EQ(found[2].exe, "");
}

TEST_F(DiscoveryTest, TmpdirFromTargetEnvironment) {
  tree_.AddProcess({.pid = 20, .environ = std::vector<std::string>{"TMPDIR=/var/tmp/"}});
  tree_.AddSocket("host", "/var/tmp/" + SocketName(20, 4242));
  // No trailing slash: the runtime appends one.
  tree_.AddProcess({.pid = 21, .environ = std::vector<std::string>{"X=1", "TMPDIR=/scratch"}});
  tree_.AddSocket("host", "/scratch/" + SocketName(21, 4242));
  // Empty TMPDIR means /tmp/.
  tree_.AddProcess({.pid = 22, .environ = std::vector<std::string>{"TMPDIR="}});
  tree_.AddSocket("host", "/tmp/" + SocketName(22, 4242));
  // Empty environment (env -i): /tmp/.
  tree_.AddProcess({.pid = 23, .environ = std::vector<std::string>{}});
  tree_.AddSocket("host", "/tmp/" + SocketName(23, 4242));
  // TMPDIR elsewhere: a socket in /tmp is not this runtime's.
  tree_.AddProcess({.pid = 24, .environ = std::vector<std::string>{"TMPDIR=/elsewhere"}});
  tree_.AddSocket("host", "/tmp/" + SocketName(24, 4242));
  // Only a suffix matches: not TMPDIR.
  tree_.AddProcess({.pid = 25, .environ = std::vector<std::string>{"MYTMPDIR=/var/tmp"}});
  tree_.AddSocket("host", "/tmp/" + SocketName(25, 4242));

  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, kSelf);
  ASSERT_EQ(found.size(), 5u);
  EXPECT_EQ(found[0].socket.tmpdir, "/var/tmp/");
  EXPECT_EQ(found[0].socket.path, tree_.proc() + "/20/root/var/tmp/" + SocketName(20, 4242));
  EXPECT_EQ(found[1].socket.tmpdir, "/scratch/");
  EXPECT_EQ(found[1].socket.path, tree_.proc() + "/21/root/scratch/" + SocketName(21, 4242));
  EXPECT_EQ(found[2].socket.tmpdir, "/tmp/");
  EXPECT_EQ(found[3].socket.tmpdir, "/tmp/");
  EXPECT_EQ(found[4].pid, 25);
  EXPECT_EQ(found[4].socket.tmpdir, "/tmp/");
}

TEST_F(DiscoveryTest, NestedPidNamespaceUsesInnerPid) {
  // Two containers, each with its own /tmp and a runtime that is pid 1 inside.
  tree_.AddProcess({.pid = 5000, .nspids = {5000, 1}, .start_time = 70, .root = "ctr1"});
  tree_.AddSocket("ctr1", "/tmp/" + SocketName(1, 70));
  tree_.AddProcess({.pid = 6000, .nspids = {6000, 40, 1}, .start_time = 80, .root = "ctr2"});
  tree_.AddSocket("ctr2", "/tmp/" + SocketName(1, 80));
  // A host-named socket for the host pid is not the container's.
  tree_.AddSocket("host", "/tmp/" + SocketName(5000, 70));

  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, kSelf);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].pid, 5000);
  EXPECT_EQ(found[0].ns_pid, 1);
  EXPECT_EQ(found[0].socket.ns_pid, 1);
  EXPECT_EQ(found[0].socket.path, tree_.proc() + "/5000/root/tmp/" + SocketName(1, 70));
  EXPECT_EQ(found[1].pid, 6000);
  EXPECT_EQ(found[1].ns_pid, 1);
  EXPECT_EQ(found[1].socket.path, tree_.proc() + "/6000/root/tmp/" + SocketName(1, 80));
}

TEST_F(DiscoveryTest, StaleSocketOfDeadPidIsNotListed) {
  tree_.AddSocket("host", "/tmp/" + SocketName(999, 1));
  AddDotnet(50);
  EXPECT_THAT(ScannedPids(), ElementsAre(50));
  EXPECT_EQ(FindDiagnosticSocket(fs_, 999).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiscoveryTest, KeyMatchingStartTimeWinsOverNewerStaleSocket) {
  tree_.AddProcess({.pid = 60, .start_time = 7000});
  tree_.AddSocket("host", "/tmp/" + SocketName(60, 7000), /*mtime=*/100);
  // Left by an earlier, killed process that had the same pid; newer mtime.
  tree_.AddSocket("host", "/tmp/" + SocketName(60, 6000), /*mtime=*/900);
  absl::StatusOr<DiagnosticSocket> socket = FindDiagnosticSocket(fs_, 60);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->key, 7000u);
}

TEST_F(DiscoveryTest, WithoutKeyMatchNewestSocketWins) {
  tree_.AddProcess({.pid = 61, .start_time = 1});
  tree_.AddSocket("host", "/tmp/" + SocketName(61, 300), /*mtime=*/900);
  tree_.AddSocket("host", "/tmp/" + SocketName(61, 200), /*mtime=*/100);
  tree_.AddSocket("host", "/tmp/" + SocketName(61, 100), /*mtime=*/500);
  absl::StatusOr<DiagnosticSocket> socket = FindDiagnosticSocket(fs_, 61);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->key, 300u);
}

TEST_F(DiscoveryTest, PidPrefixDoesNotMatchLongerPid) {
  tree_.AddProcess({.pid = 12});
  tree_.AddProcess({.pid = 1234});
  AddDotnet(123);
  EXPECT_THAT(ScannedPids(), ElementsAre(123));
  EXPECT_EQ(FindDiagnosticSocket(fs_, 12).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiscoveryTest, RegularFileNamedLikeSocketIsIgnored) {
  tree_.AddProcess({.pid = 70});
  tree_.AddRegularFile("host", "/tmp/" + SocketName(70, 4242));
  EXPECT_THAT(ScannedPids(), IsEmpty());
  // A real socket beside a newer regular file is still found.
  tree_.AddProcess({.pid = 71, .start_time = 1});
  tree_.AddRegularFile("host", "/tmp/" + SocketName(71, 9));
  tree_.AddSocket("host", "/tmp/" + SocketName(71, 8), /*mtime=*/10);
  absl::StatusOr<DiagnosticSocket> socket = FindDiagnosticSocket(fs_, 71);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->key, 8u);
}

TEST_F(DiscoveryTest, DsrouterAndMalformedNamesAreIgnored) {
  tree_.AddProcess({.pid = 80});
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-dsrouter-80-4242-socket");
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-80-socket");
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-80--socket");
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-80-42x-socket");
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-+80-4242-socket");
  tree_.AddSocket("host", "/tmp/dotnet-diagnostic-80-4242-socket.bak");
  tree_.AddSocket("host", "/tmp/xdotnet-diagnostic-80-4242-socket");
  EXPECT_THAT(ScannedPids(), IsEmpty());
}

TEST_F(DiscoveryTest, UnreadableOrMissingEnvironIsSkipped) {
  AddDotnet(90);
  // environ that fails to read (EISDIR): skipped whatever our privileges.
  AddDotnet(91);
  std::filesystem::remove(tree_.proc() + "/91/environ");
  std::filesystem::create_directory(tree_.proc() + "/91/environ");
  // No environ file at all, as if the process exited mid-scan.
  tree_.AddProcess({.pid = 92, .environ = std::nullopt});
  tree_.AddSocket("host", "/tmp/" + SocketName(92, 4242));
  EXPECT_THAT(ScannedPids(), ElementsAre(90));
}

TEST_F(DiscoveryTest, PermissionDeniedEnvironIsSkipped) {
  AddDotnet(93);
  AddDotnet(94);
  ASSERT_EQ(::chmod((tree_.proc() + "/93/environ").c_str(), 0), 0);
  // 94 stays readable, so an empty result cannot come from the tree being unreachable.
  EXPECT_TRUE(RunUnprivileged(tree_.base(), [&] {
    std::vector<pid_t> pids = ScannedPids();
    return pids.size() == 1 && pids[0] == 94 &&
           InspectProcess(fs_, 93).status().code() == absl::StatusCode::kPermissionDenied;
  }));
}

TEST_F(DiscoveryTest, MalformedOrVanishedStatusIsSkipped) {
  AddDotnet(95);
  tree_.WriteProcFile(95, "status", "\xff\xfe garbage");
  AddDotnet(96);
  std::filesystem::remove(tree_.proc() + "/96/status");
  AddDotnet(97);
  tree_.WriteProcFile(97, "stat", "garbage");  // start time unknown: newest socket still used
  EXPECT_THAT(ScannedPids(), ElementsAre(97));
}

TEST_F(DiscoveryTest, SelfIsExcluded) {
  AddDotnet(kSelf);
  AddDotnet(2);
  EXPECT_THAT(ScannedPids(), ElementsAre(2));
}

TEST_F(DiscoveryTest, ProcessesSharingTmpEachGetTheirOwnSocket) {
  // One listing of /tmp serves every process of the mount namespace.
  for (pid_t pid = 200; pid < 210; ++pid) {
    tree_.AddProcess({.pid = pid, .start_time = static_cast<uint64_t>(pid) * 10});
    if (pid % 2 == 0) tree_.AddSocket("host", "/tmp/" + SocketName(pid, pid * 10));
  }
  std::vector<ProcessFacts> found = ScanDotnetProcesses(fs_, kSelf);
  ASSERT_EQ(found.size(), 5u);
  for (const ProcessFacts& f : found) {
    EXPECT_EQ(f.pid % 2, 0);
    EXPECT_EQ(f.socket.key, static_cast<uint64_t>(f.pid) * 10);
    EXPECT_EQ(f.socket.path,
              absl::StrCat(tree_.proc(), "/", f.pid, "/root/tmp/", SocketName(f.pid, f.pid * 10)));
  }
}

TEST_F(DiscoveryTest, RelativeTmpdirIsResolvedAgainstWorkingDirectory) {
  tree_.AddProcess({.pid = 300, .environ = std::vector<std::string>{"TMPDIR=run"}});
  std::string cwd = tree_.RootDir("host", "/srv/app");
  std::filesystem::create_symlink(cwd, tree_.proc() + "/300/cwd");
  tree_.AddSocket("host", "/srv/app/run/" + SocketName(300, 4242));
  absl::StatusOr<DiagnosticSocket> socket = FindDiagnosticSocket(fs_, 300);
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_EQ(socket->tmpdir, "run/");
  EXPECT_EQ(socket->path, tree_.proc() + "/300/cwd/run/" + SocketName(300, 4242));
}

TEST_F(DiscoveryTest, FindDiagnosticSocketExplainsMissingSocket) {
  tree_.AddProcess({.pid = 400, .environ = std::vector<std::string>{"TMPDIR=/nonexistent"}});
  absl::StatusOr<DiagnosticSocket> socket = FindDiagnosticSocket(fs_, 400);
  EXPECT_EQ(socket.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(socket.status().message()),
              ::testing::HasSubstr("DOTNET_EnableDiagnostics=0"));
}

TEST_F(DiscoveryTest, InspectProcessFindsSocket) {
  tree_.AddProcess({.pid = 4242,
                    .nspids = {4242, 7},
                    .start_time = 31,
                    .cmdline = {"dotnet", "app.dll"},
                    .exe = "/usr/share/dotnet/dotnet",
                    .root = "ctr"});
  tree_.AddSocket("ctr", "/tmp/" + SocketName(7, 31));
  absl::StatusOr<ProcessFacts> facts = InspectProcess(fs_, 4242);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->pid, 4242);
  EXPECT_EQ(facts->ns_pid, 7);
  EXPECT_EQ(facts->name, "dotnet");
  EXPECT_THAT(facts->cmdline, ElementsAre("dotnet", "app.dll"));
  EXPECT_EQ(facts->start_time, 31u);
  EXPECT_EQ(facts->socket.path, tree_.proc() + "/4242/root/tmp/" + SocketName(7, 31));
}

TEST_F(DiscoveryTest, InspectProcessWithoutSocketIsFailedPrecondition) {
  tree_.AddProcess({.pid = 4242, .exe = "/opt/myapp"});
  absl::StatusOr<ProcessFacts> facts = InspectProcess(fs_, 4242);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(facts.status().message(),
            "process 4242 (myapp) has no .NET diagnostic socket in /tmp/ (not a .NET process, or "
            "started with DOTNET_EnableDiagnostics=0)");

  tree_.AddProcess(
      {.pid = 4243, .environ = std::vector<std::string>{"TMPDIR=/var/tmp"}, .exe = "/opt/other"});
  tree_.AddSocket("host", "/tmp/" + SocketName(4243, 4242));  // wrong directory
  facts = InspectProcess(fs_, 4243);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(facts.status().message()), ::testing::HasSubstr("in /var/tmp/"));
}

TEST_F(DiscoveryTest, InspectMissingProcessIsNotFound) {
  absl::StatusOr<ProcessFacts> facts = InspectProcess(fs_, 4242);
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(facts.status().message(), "process 4242 is not running");
}

TEST_F(DiscoveryTest, MissingProcRootYieldsNothing) {
  ProcFs missing(tree_.proc() + "/nope");
  EXPECT_THAT(ScanDotnetProcesses(missing, kSelf), IsEmpty());
}

// The real /proc: a scan must not fail or list us, and we are not a .NET process.
TEST(DiscoveryReal, ScanAndInspectSelf) {
  ProcFs fs;
  for (const ProcessFacts& f : ScanDotnetProcesses(fs, ::getpid())) {
    EXPECT_NE(f.pid, ::getpid());
    EXPECT_FALSE(f.socket.path.empty());
  }
  absl::StatusOr<ProcessFacts> self = InspectProcess(fs, ::getpid());
  EXPECT_EQ(self.status().code(), absl::StatusCode::kFailedPrecondition) << self.status();
}

}  // namespace
}  // namespace clrdiag::procfs
