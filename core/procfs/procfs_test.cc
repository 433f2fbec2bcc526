#include "core/procfs/procfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "core/procfs/fake_proc_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clrdiag::procfs {
namespace {

using ::clrdiag::procfs::testing::FakeProcess;
using ::clrdiag::procfs::testing::FakeProcTree;
using ::clrdiag::procfs::testing::RunUnprivileged;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Nul(std::initializer_list<std::string> parts) {
  std::string out;
  for (const std::string& p : parts) out += p + '\0';
  return out;
}

// --- ParseStatus -----------------------------------------------------------------------------

TEST(ParseStatus, RealisticStatusWithOneNspid) {
  FakeProcess p{.pid = 321, .comm = "myapp", .uid = 1001, .rss_kb = 51234};
  absl::StatusOr<ProcStatus> s = ParseStatus(FakeProcTree::StatusText(p));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "myapp");
  EXPECT_EQ(s->ppid, 1);
  EXPECT_EQ(s->uid, 1001u);
  EXPECT_EQ(s->euid, 1001u);
  EXPECT_EQ(s->gid, 1001u);
  EXPECT_THAT(s->nspids, ElementsAre(321));
  EXPECT_EQ(s->vm_rss_kb, 51234u);
  EXPECT_EQ(s->InnermostPid(321), 321);
}

TEST(ParseStatus, NestedNamespaceInnermostPidIsLast) {
  absl::StatusOr<ProcStatus> s =
      ParseStatus("Name:\tdotnet\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t680\t50\t1\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->nspids, ElementsAre(680, 50, 1));
  EXPECT_EQ(s->InnermostPid(680), 1);
}

TEST(ParseStatus, OptionalFieldsMissing) {
  // Old kernels have no NSpid; kernel threads have no VmRSS.
  absl::StatusOr<ProcStatus> s = ParseStatus("Name:\tkworker/0:1\nUid:\t0\t5\nGid:\t7\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "kworker/0:1");
  EXPECT_EQ(s->uid, 0u);
  EXPECT_EQ(s->euid, 5u);
  EXPECT_EQ(s->gid, 7u);
  EXPECT_THAT(s->nspids, IsEmpty());
  EXPECT_EQ(s->vm_rss_kb, 0u);
  EXPECT_EQ(s->ppid, 0);
  EXPECT_EQ(s->InnermostPid(99), 99);
}

TEST(ParseStatus, NameKeepsSpacesAndColons) {
  absl::StatusOr<ProcStatus> s = ParseStatus("Name:\tmy app: v2\nUid:\t1\nGid:\t1\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "my app: v2");
}

TEST(ParseStatus, RequiredFieldsMissingAreErrors) {
  // A missing Uid must never default to root.
  EXPECT_FALSE(ParseStatus("Name:\tx\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Uid:\t1\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("").ok());
  EXPECT_EQ(ParseStatus("Name:\tx\nGid:\t1\n").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseStatus, GarbageIsAnErrorNotACrash) {
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\tabc\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t-1\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t99999999999999999999\nGid:\t1\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t1\nGid:\t1\nNSpid:\t1\tx\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t1\nGid:\t1\nNSpid:\t-4\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t1\nGid:\t1\nPPid:\tone\n").ok());
  EXPECT_FALSE(ParseStatus("Name:\tx\nUid:\t1\nGid:\t1\nVmRSS:\tlots kB\n").ok());
  EXPECT_FALSE(ParseStatus(std::string("\0\0\0:\n\xff\xfe", 7)).ok());
  // Lines without a colon and unknown keys are ignored.
  EXPECT_TRUE(ParseStatus("junk line\nName:\tx\nUid:\t1\nGid:\t1\nWeird:\t???\n").ok());
}

// --- ParseStartTime --------------------------------------------------------------------------

TEST(ParseStartTime, PlainComm) {
  absl::StatusOr<uint64_t> t = ParseStartTime(FakeProcTree::StatText(7, "dotnet", 123456789));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 123456789u);
}

TEST(ParseStartTime, CommWithSpacesAndParens) {
  // Fields are counted after the last ')', so a comm like "a) 1 2 (b" cannot shift them.
  absl::StatusOr<uint64_t> t = ParseStartTime(FakeProcTree::StatText(7, "a) 1 2 (b) ", 99));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 99u);
}

TEST(ParseStartTime, StarttimeIsLastFieldWithoutNewline) {
  absl::StatusOr<uint64_t> t =
      ParseStartTime("1 (x) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 77");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, 77u);
}

TEST(ParseStartTime, Malformed) {
  EXPECT_FALSE(ParseStartTime("").ok());
  EXPECT_FALSE(ParseStartTime("1 (x S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 77").ok());
  EXPECT_FALSE(ParseStartTime("1 (x) S 0 1 1").ok());
  EXPECT_FALSE(ParseStartTime("1 (x) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 -77").ok());
  EXPECT_FALSE(ParseStartTime("1 (x) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 7x").ok());
  EXPECT_EQ(ParseStartTime("1 (x)").status().code(), absl::StatusCode::kInvalidArgument);
}

// --- ParseMaps -------------------------------------------------------------------------------

TEST(ParseMaps, TypicalLines) {
  absl::StatusOr<std::vector<MapEntry>> maps = ParseMaps(
      "55d4a2a00000-55d4a2a21000 r--p 00000000 fd:01 1835069                    "
      "/usr/share/dotnet/dotnet\n"
      "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
      "55d4a3000000-55d4a3100000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f1000000000-7f1000001000 r-xp 0001a000 08:02 42   /tmp/My App/lib x.so (deleted)\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n");
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_EQ(maps->size(), 5u);
  const MapEntry& exe = (*maps)[0];
  EXPECT_EQ(exe.start, 0x55d4a2a00000u);
  EXPECT_EQ(exe.end, 0x55d4a2a21000u);
  EXPECT_EQ(exe.perms, "r--p");
  EXPECT_EQ(exe.offset, 0u);
  EXPECT_EQ(exe.inode, 1835069u);
  EXPECT_EQ(exe.path, "/usr/share/dotnet/dotnet");
  EXPECT_EQ((*maps)[1].path, "");
  EXPECT_EQ((*maps)[2].path, "[heap]");
  EXPECT_EQ((*maps)[3].path, "/tmp/My App/lib x.so (deleted)");
  EXPECT_EQ((*maps)[3].offset, 0x1a000u);
  EXPECT_EQ((*maps)[3].perms, "r-xp");
  EXPECT_EQ((*maps)[4].end, 0xffffffffff601000u);
}

TEST(ParseMaps, EmptyInputIsNoEntries) {
  absl::StatusOr<std::vector<MapEntry>> maps = ParseMaps("");
  ASSERT_TRUE(maps.ok());
  EXPECT_THAT(*maps, IsEmpty());
}

TEST(ParseMaps, MalformedLinesAreErrors) {
  for (const char* bad : {
           "garbage\n",
           "1000 r--p 00000000 00:00 0\n",             // no '-' in the range
           "1000-zz r--p 00000000 00:00 0\n",          // bad end
           "2000-1000 r--p 00000000 00:00 0\n",        // end before start
           "1000-2000 r--p 00000000 00:00\n",          // no inode
           "1000-2000 r-p 00000000 00:00 0\n",         // short perms
           "1000-2000 r--p 0000g000 00:00 0\n",        // bad offset
           "1000-2000 r--p 00000000 0000 0\n",         // bad dev
           "1000-2000 r--p 00000000 00:00 -1\n",       // negative inode
           "11111111111111111-2000 r--p 0 00:00 0\n",  // overflow
       }) {
    absl::StatusOr<std::vector<MapEntry>> maps = ParseMaps(bad);
    EXPECT_EQ(maps.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::StatusOr<std::vector<MapEntry>> maps =
      ParseMaps("1000-2000 r--p 00000000 00:00 0\nbad line\n");
  ASSERT_FALSE(maps.ok());
  EXPECT_TRUE(absl::StrContains(maps.status().message(), "line 2")) << maps.status();
}

// --- SplitNul --------------------------------------------------------------------------------

TEST(SplitNul, Splits) {
  EXPECT_THAT(SplitNul(""), IsEmpty());
  EXPECT_THAT(SplitNul(Nul({"dotnet", "app.dll"})), ElementsAre("dotnet", "app.dll"));
  EXPECT_THAT(SplitNul("no-terminator"), ElementsAre("no-terminator"));
  EXPECT_THAT(SplitNul(Nul({"a", "", "b"})), ElementsAre("a", "", "b"));
  EXPECT_THAT(SplitNul(std::string(1, '\0')), ElementsAre(""));
}

// --- ProcFs on a fake tree -------------------------------------------------------------------

class ProcFsFakeTest : public ::testing::Test {
 protected:
  FakeProcTree tree_;
  ProcFs fs_{tree_.proc()};
};

TEST_F(ProcFsFakeTest, ListPidsIsNumericAndAscending) {
  tree_.AddProcess({.pid = 300});
  tree_.AddProcess({.pid = 12});
  tree_.AddProcess({.pid = 1});
  tree_.WriteProcFile(0, "junk", "");  // "0" is not a pid
  tree_.RootDir("host", "/");
  absl::StatusOr<std::vector<pid_t>> pids = fs_.ListPids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(1, 12, 300));
}

TEST_F(ProcFsFakeTest, ListPidsOfMissingRootFails) {
  ProcFs missing(tree_.proc() + "/nope");
  EXPECT_EQ(missing.ListPids().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ProcFsFakeTest, RootIsNormalized) {
  ProcFs slashed(tree_.proc() + "//");
  EXPECT_EQ(slashed.PidDir(5), tree_.proc() + "/5");
  EXPECT_EQ(slashed.RootPath(5), tree_.proc() + "/5/root");
}

TEST_F(ProcFsFakeTest, ReadsEveryFile) {
  tree_.AddProcess({.pid = 77,
                    .comm = "dotnet",
                    .uid = 1234,
                    .nspids = {77, 5},
                    .start_time = 98765,
                    .cmdline = {"dotnet", "app.dll", "--flag"},
                    .environ = std::vector<std::string>{"A=1", "TMPDIR=/var/tmp", "B=x=y"},
                    .exe = "/usr/share/dotnet/dotnet"});
  tree_.WriteProcFile(77, "maps", "1000-2000 r-xp 00000000 fd:01 5 /usr/share/dotnet/dotnet\n");

  absl::StatusOr<ProcStatus> status = fs_.ReadStatus(77);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->name, "dotnet");
  EXPECT_EQ(status->uid, 1234u);
  EXPECT_EQ(status->InnermostPid(77), 5);

  EXPECT_THAT(*fs_.ReadCmdline(77), ElementsAre("dotnet", "app.dll", "--flag"));
  EXPECT_THAT(*fs_.ReadEnviron(77), ElementsAre("A=1", "TMPDIR=/var/tmp", "B=x=y"));
  EXPECT_EQ(*fs_.ReadEnvVar(77, "TMPDIR"), "/var/tmp");
  EXPECT_EQ(*fs_.ReadEnvVar(77, "B"), "x=y");
  EXPECT_EQ(fs_.ReadEnvVar(77, "TMP").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadEnvVar(77, "A=1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*fs_.ReadExe(77), "/usr/share/dotnet/dotnet");
  EXPECT_EQ(*fs_.ReadStartTime(77), 98765u);
  absl::StatusOr<std::vector<MapEntry>> maps = fs_.ReadMaps(77);
  ASSERT_TRUE(maps.ok()) << maps.status();
  ASSERT_EQ(maps->size(), 1u);
  EXPECT_EQ((*maps)[0].path, "/usr/share/dotnet/dotnet");
}

TEST_F(ProcFsFakeTest, LongFilesAreReadWhole) {
  std::string value(100000, 'v');
  tree_.AddProcess({.pid = 8, .environ = std::vector<std::string>{"BIG=" + value, "LAST=1"}});
  EXPECT_EQ(*fs_.ReadEnvVar(8, "BIG"), value);
  EXPECT_EQ(*fs_.ReadEnvVar(8, "LAST"), "1");
}

TEST_F(ProcFsFakeTest, VanishedProcessIsNotFound) {
  EXPECT_EQ(fs_.ReadStatus(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadCmdline(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadEnviron(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadEnvVar(4242, "X").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadExe(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadStartTime(4242).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadMaps(4242).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ProcFsFakeTest, EmptyStatusOfExitingProcessIsNotFound) {
  tree_.AddProcess({.pid = 9, .status_text = ""});
  tree_.WriteProcFile(9, "stat", "");
  EXPECT_EQ(fs_.ReadStatus(9).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.ReadStartTime(9).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ProcFsFakeTest, MalformedContentIsInvalidArgumentNamingTheFile) {
  tree_.AddProcess({.pid = 10, .status_text = "Name:\tx\nUid:\tbogus\nGid:\t0\n"});
  tree_.WriteProcFile(10, "stat", "10 (x) S 1");
  absl::StatusOr<ProcStatus> status = fs_.ReadStatus(10);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.status().message(), "/10/status")) << status.status();
  EXPECT_EQ(fs_.ReadStartTime(10).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProcFsFakeTest, UnreadableFileIsPermissionDenied) {
  tree_.AddProcess({.pid = 11});
  ASSERT_EQ(::chmod((tree_.proc() + "/11/environ").c_str(), 0), 0);
  EXPECT_TRUE(RunUnprivileged(tree_.base(), [&] {
    return fs_.ReadEnviron(11).status().code() == absl::StatusCode::kPermissionDenied &&
           fs_.ReadCmdline(11).ok();
  }));
}

// --- ProcFs on the real /proc ----------------------------------------------------------------

TEST(ProcFsReal, SelfLooksSane) {
  ProcFs fs;
  const pid_t self = ::getpid();

  absl::StatusOr<ProcStatus> status = fs.ReadStatus(self);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->name.empty());
  EXPECT_EQ(status->name, "procfs_test");
  EXPECT_EQ(status->uid, ::getuid());
  EXPECT_EQ(status->euid, ::geteuid());
  EXPECT_EQ(status->gid, ::getgid());
  EXPECT_EQ(status->ppid, ::getppid());
  EXPECT_GT(status->vm_rss_kb, 0u);
  EXPECT_EQ(status->InnermostPid(self), self);

  absl::StatusOr<std::vector<std::string>> cmdline = fs.ReadCmdline(self);
  ASSERT_TRUE(cmdline.ok()) << cmdline.status();
  ASSERT_FALSE(cmdline->empty());
  EXPECT_TRUE(absl::StrContains((*cmdline)[0], "procfs_test")) << (*cmdline)[0];

  absl::StatusOr<uint64_t> start = fs.ReadStartTime(self);
  ASSERT_TRUE(start.ok()) << start.status();
  double uptime_s = 0;
  std::ifstream("/proc/uptime") >> uptime_s;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  EXPECT_GT(*start, 0u);
  EXPECT_LE(static_cast<double>(*start), (uptime_s + 1) * ticks);

  absl::StatusOr<std::string> exe = fs.ReadExe(self);
  ASSERT_TRUE(exe.ok()) << exe.status();
  EXPECT_TRUE(absl::StrContains(*exe, "procfs_test")) << *exe;

  absl::StatusOr<std::vector<MapEntry>> maps = fs.ReadMaps(self);
  ASSERT_TRUE(maps.ok()) << maps.status();
  bool maps_exe = false;
  for (const MapEntry& m : *maps) maps_exe |= m.path == *exe;
  EXPECT_TRUE(maps_exe);

  absl::StatusOr<std::vector<pid_t>> pids = fs.ListPids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_TRUE(std::binary_search(pids->begin(), pids->end(), self));
}

}  // namespace
}  // namespace clrdiag::procfs
