// Bad input to `clrdiag collect`: each case has a clear message, a non-zero exit code, and
// leaves nothing behind.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class CollectErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.Start()) << daemon_.log(); }
  void ExpectCatalogEmpty() {
    RunResult r = daemon_.Client({"dumps", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ParseJson(r.out).size(), 0u) << r.out;
    EXPECT_TRUE(FindFiles(daemon_.dump_dir(), ".partial").empty());
  }
  Daemon daemon_;
};

TEST_F(CollectErrorsTest, UnknownPid) {
  RunResult r = daemon_.Client({"collect", "-p", "999999"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_CONTAINS(r.err, "process 999999 is not running");
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, NotADotnetProcess) {
  auto p = Process::Spawn({"/bin/sleep", "300"});
  ASSERT_TRUE(p);
  RunResult r = daemon_.Client({"collect", "-p", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "has no .NET diagnostic socket");
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, DiagnosticsDisabled) {
  SpawnOptions so;
  so.env["DOTNET_EnableDiagnostics"] = "0";
  auto app = StartFixture("SleepApp", {}, so);
  ASSERT_TRUE(app);
  RunResult r = daemon_.Client({"collect", "-p", std::to_string(app->pid())});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "DOTNET_EnableDiagnostics=0");
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"collect"}, "Must specify either --process-id or --name"},
      {{"collect", "-p", "1", "-n", "x"}, "excludes"},
      {{"collect", "-p", "abc"}, "-p"},
      {{"collect", "-p", "-3"}, "not a valid process ID"},
      {{"collect", "-p", "1", "--type", "Huge"},
       "invalid --type 'Huge': use Full, Heap, Mini or Triage"},
      {{"collect", "-p", "1", "-o", "/nonexistent-dir/x.dmp"},
       "directory /nonexistent-dir does not exist"},
      {{"frobnicate"}, "[ERROR]"},
  };
  for (const auto& c : cases) {
    RunResult r = daemon_.Client(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args.back() << "\n" << r.err;
    EXPECT_CONTAINS(r.err, c.message);
  }
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, NameMatchingNoneOrSeveral) {
  RunResult none = daemon_.Client({"collect", "-n", "NoSuchDotnetApp"});
  EXPECT_EQ(none.exit_code, 4) << none.err;
  EXPECT_CONTAINS(none.err, "there is no .NET process named 'NoSuchDotnetApp'");

  TempDir dir;
  std::string exe = dir / "TwinApp";
  ASSERT_EQ(RunCommand({"/bin/cp", "-a", FixturesDir() + "/SleepApp/SleepApp", exe}).exit_code, 0);
  for (const char* f : {"SleepApp.dll", "SleepApp.runtimeconfig.json", "SleepApp.deps.json"}) {
    RunCommand({"/bin/cp", "-a", FixturesDir() + "/SleepApp/" + f, dir.path()});
  }
  auto a = Process::Spawn({exe, "one"});
  auto b = Process::Spawn({exe, "two"});
  ASSERT_TRUE(a && a->WaitForLine("READY", std::chrono::seconds(30)));
  ASSERT_TRUE(b && b->WaitForLine("READY", std::chrono::seconds(30)));
  RunResult r = daemon_.Client({"collect", "-n", "TwinApp"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "there are 2 .NET processes named 'TwinApp'");
  EXPECT_CONTAINS(r.err, std::to_string(a->pid()));
  EXPECT_CONTAINS(r.err, std::to_string(b->pid()));
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, OutputInUnwritableDirectory) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a read-only tmpfs and needs root (CI is root)";
  TempDir dir;
  ASSERT_EQ(::mount("tmpfs", dir.path().c_str(), "tmpfs", MS_RDONLY, "size=1m"), 0);
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  RunResult r = daemon_.Client({"collect", "-p", std::to_string(app->pid()), "-o", dir / "x"});
  ::umount(dir.path().c_str());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_CONTAINS(r.err, "is not writable");
  ExpectCatalogEmpty();
}

TEST_F(CollectErrorsTest, TargetExitsDuringCollection) {
  auto app = StartFixture("HeapApp", {"1000", "400"});
  ASSERT_TRUE(app);
  std::string pid = std::to_string(app->pid());
  TempDir t;
  SpawnOptions so;
  so.stdout_file = t / "out";
  so.stderr_file = t / "err";
  auto client = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", daemon_.server(), "collect", "-p", pid}, so);
  // Kill the target once the runtime has started writing the dump.
  bool writing = false;
  for (int i = 0; i < 500 && !writing; ++i) {
    for (const auto& f : FindFiles("/tmp", "")) {
      if (f.find("/tmp/clrdiag-") == 0 && f.find("-" + pid + "-full-") != std::string::npos &&
          FileSizeOf(f + "/dump") > 0) {
        writing = true;
      }
    }
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(writing) << "the dump never started";
  app->Signal(SIGKILL);
  auto rc = client->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
  EXPECT_CONTAINS(ReadFile(t / "err"), "exited during collection");
  ExpectCatalogEmpty();
  // Its private temp directory is gone too.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (const auto& f : FindFiles("/tmp", "")) {
    EXPECT_FALSE(f.find("/tmp/clrdiag-") == 0 && f.find("-" + pid + "-full-") != std::string::npos)
        << f;
  }
  // The daemon keeps serving.
  EXPECT_EQ(daemon_.Client({"ps"}).exit_code, 0);
}

TEST(CollectDiskFullTest, StoreRunsOutOfSpace) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a small tmpfs and needs root (CI is root)";
  TempDir store;
  ASSERT_EQ(::mount("tmpfs", store.path().c_str(), "tmpfs", 0, "size=64m,mode=0700"), 0);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{store.path()};
  Daemon::Options o;
  o.dump_dir = store / "catalog";
  // Past the free-space preflight (store_test.cc tests it), to the store filling up for real.
  TempDir conf;
  { std::ofstream(conf / "clrdiagd.yaml") << "store: {preflight: false}\n"; }
  o.extra_args = {"--config", conf / "clrdiagd.yaml"};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"1000"});
  ASSERT_TRUE(app);
  RunResult r = d.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Full"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_CONTAINS(r.err, "ran out of space");
  EXPECT_CONTAINS(r.err, "nothing was kept");
  RunResult list = d.Client({"dumps", "--json"});
  EXPECT_EQ(ParseJson(list.out).size(), 0u) << list.out;
  EXPECT_TRUE(FindFiles(o.dump_dir, ".partial").empty());
  EXPECT_TRUE(FindFiles(o.dump_dir + "/dumps", "").empty());
  // A smaller dump still fits afterwards: the space was given back.
  RunResult mini = d.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini"});
  EXPECT_EQ(mini.exit_code, 0) << mini.err;
}

TEST(DaemonUnreachableTest, MessageNamesTheSocket) {
  TempDir t;
  std::string sock = t / "nobody-home.sock";
  RunResult r = RunCommand({BinDir() + "/clrdiag", "--server", "unix:" + sock, "ps"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_CONTAINS(r.err, sock);
  EXPECT_CONTAINS(r.err, "Is the daemon running?");
  SpawnOptions so;
  so.env["CLRDIAG_SERVER"] = sock;
  RunResult e = RunCommand({BinDir() + "/clrdiag", "dumps"}, so);
  EXPECT_EQ(e.exit_code, 3) << e.err;
  EXPECT_CONTAINS(e.err, sock);
}

}  // namespace
}  // namespace clrdiag::testing
