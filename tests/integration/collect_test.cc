// `clrdiag collect` of real .NET processes: every dump type, the catalog, -o, -n.
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "core/base/sha256.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class CollectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.log();
    app_ = StartFixture("HeapApp", {"2000"});
    ASSERT_TRUE(app_);
  }
  Daemon daemon_;
  std::unique_ptr<Process> app_;
};

TEST_F(CollectTest, EveryDumpTypeIsAValidCoreInTheCatalog) {
  std::map<std::string, uint64_t> sizes;
  for (std::string type : {"Full", "Heap", "Mini", "Triage"}) {
    int threads = ThreadCount(app_->pid());
    RunResult r =
        daemon_.Client({"collect", "-p", std::to_string(app_->pid()), "--type", type, "--json"});
    ASSERT_EQ(r.exit_code, 0) << type << "\n" << r.err;
    auto j = ParseJson(r.out);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["type"], type);
    EXPECT_EQ(j["pid"], app_->pid());
    EXPECT_EQ(j["process_name"], "HeapApp");
    EXPECT_EQ(j["command_line"], FixturesDir() + "/HeapApp/HeapApp 2000");
    EXPECT_EQ(j["runtime_version"].get<std::string>().substr(0, 3), "10.");
    EXPECT_EQ(j["requested_by_uid"], ::getuid());
    std::string path = j["path"];
    ASSERT_EQ(path.rfind(daemon_.dump_dir() + "/", 0), 0u) << path;
    EXPECT_EQ(FileSizeOf(path), j["size_bytes"].get<uint64_t>());
    auto digest = Sha256File(path);
    ASSERT_TRUE(digest.ok());
    EXPECT_EQ(*digest, j["sha256"]);
    EXPECT_EQ(ModeOf(path), 0600u);
    EXPECT_EQ(ModeOf(path.substr(0, path.rfind('/'))), 0700u);
    EXPECT_EQ(ModeOf(path.substr(0, path.rfind('/')) + "/meta.json"), 0600u);

    CoreFacts core = InspectCore(path);
    ASSERT_TRUE(core.ok) << type << ": " << core.error;
    EXPECT_EQ(core.type, elf::kEtCore);
    EXPECT_TRUE(core.has_nt_file);
    // The runtime starts and ends threads of its own (tiered compilation, thread pool) while
    // the dump is taken: the count lies between the ones seen before and after (seen as 11 of
    // 12 under the slower ASan build).
    const int threads_after = ThreadCount(app_->pid());
    EXPECT_GE(core.prstatus, std::min(threads, threads_after))
        << type << ": one NT_PRSTATUS per thread";
    EXPECT_LE(core.prstatus, std::max(threads, threads_after))
        << type << ": one NT_PRSTATUS per thread";
    sizes[type] = j["size_bytes"];

    // The runtime files analysis needs are stored once per libcoreclr build-id.
    std::string bid = j["coreclr_build_id"];
    ASSERT_EQ(bid.size(), 40u);
    EXPECT_TRUE(j["runtime_files_stored"].get<bool>());
    std::string rt = daemon_.dump_dir() + "/runtimes/" + bid;
    EXPECT_TRUE(FileExists(rt + "/libmscordaccore.so"));
    EXPECT_TRUE(FileExists(rt + "/libcoreclr.so"));
  }
  EXPECT_GT(sizes["Heap"], sizes["Mini"]);
  EXPECT_GT(sizes["Full"], sizes["Heap"]);

  RunResult list = daemon_.Client({"dumps", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto arr = ParseJson(list.out);
  ASSERT_EQ(arr.size(), 4u) << list.out;
  EXPECT_EQ(arr[0]["type"], "Triage");  // newest first
  // Nothing left behind in the target's temp directory.
  for (const auto& d : arr) {
    EXPECT_FALSE(FileExists("/tmp/clrdiag-" + d["id"].get<std::string>())) << d["id"];
  }
}

TEST_F(CollectTest, OutputIsWrittenOnTheClientSideAndMatchesTheCatalog) {
  TempDir out;
  std::string dest = out / "mydump";
  RunResult r =
      daemon_.Client({"collect", "-p", std::to_string(app_->pid()), "--type", "Mini", "-o", dest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Writing dump to " + dest);
  EXPECT_CONTAINS(r.out, "Complete");
  std::string id = DumpIdFrom(r.out);
  ASSERT_FALSE(id.empty()) << r.out;
  std::string stored = daemon_.dump_dir() + "/dumps/" + id + "/dump";
  EXPECT_CONTAINS(r.out, stored);
  ASSERT_TRUE(FileExists(dest));
  EXPECT_FALSE(FileExists(dest + ".partial"));
  EXPECT_EQ(*Sha256File(dest), *Sha256File(stored));
  EXPECT_TRUE(InspectCore(dest).ok);
}

TEST_F(CollectTest, OutputOnAnotherFilesystemAndOnAFullDisk) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts tmpfs file systems and needs root (CI is root)";
  TempDir big, small;
  ASSERT_EQ(::mount("tmpfs", big.path().c_str(), "tmpfs", 0, "size=512m"), 0);
  ASSERT_EQ(::mount("tmpfs", small.path().c_str(), "tmpfs", 0, "size=4m"), 0);
  struct Unmount {
    std::string a, b;
    ~Unmount() {
      ::umount2(a.c_str(), MNT_DETACH);
      ::umount2(b.c_str(), MNT_DETACH);
    }
  } unmount{big.path(), small.path()};
  // Another filesystem than the dump's: the copy crosses file systems.
  RunResult r = daemon_.Client(
      {"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "-o", big / "d.core"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = DumpIdFrom(r.out);
  EXPECT_EQ(*Sha256File(big / "d.core"),
            *Sha256File(daemon_.dump_dir() + "/dumps/" + id + "/dump"));
  // A disk too small for the copy: a clear error, no partial file, and the dump is still in the
  // catalog.
  RunResult full = daemon_.Client(
      {"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "-o", small / "d.core"});
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_CONTAINS(full.err, "is in the catalog, fetch it with `clrdiag download`");
  EXPECT_FALSE(FileExists(small / "d.core"));
  EXPECT_FALSE(FileExists(small / "d.core.partial"));
  EXPECT_EQ(ParseJson(daemon_.Client({"dumps", "--json"}).out).size(), 2u);
}

TEST(CollectOverTcpTest, OutputIsStreamedWhenTheClientIsNotOnThisHost) {
  // Over TCP there is no side socket to hand a file to: the bytes come in the stream and are
  // verified against the catalog's sha256.
  TempDir t;
  int port = 20000 + (::getpid() % 20000);
  std::string cfg = t / "tcp.yaml";
  std::ofstream(cfg) << "listen: [\"127.0.0.1:" << port << "\"]\ninsecure: true\n";
  Daemon::Options o;
  o.extra_args = {"--config", cfg, "--listen", "127.0.0.1:" + std::to_string(port)};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"2000"});
  ASSERT_TRUE(app);
  std::string dest = t / "over-tcp.core";
  RunResult r =
      RunCommand({BinDir() + "/clrdiag", "--server", "127.0.0.1:" + std::to_string(port), "collect",
                  "-p", std::to_string(app->pid()), "--type", "Heap", "-o", dest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = DumpIdFrom(r.out);
  ASSERT_FALSE(id.empty()) << r.out;
  EXPECT_EQ(*Sha256File(dest), *Sha256File(d.dump_dir() + "/dumps/" + id + "/dump"));
  EXPECT_FALSE(FileExists(dest + ".partial"));
}

TEST_F(CollectTest, ByNameAndDefaultTypeIsFull) {
  // A unique executable name, so other processes on the machine cannot make it ambiguous.
  TempDir dir;
  std::string exe = dir / "UniqueNameApp";
  ASSERT_EQ(RunCommand({"/bin/cp", "-a", FixturesDir() + "/SleepApp/SleepApp", exe}).exit_code, 0);
  for (const char* f : {"SleepApp.dll", "SleepApp.runtimeconfig.json", "SleepApp.deps.json"}) {
    RunCommand({"/bin/cp", "-a", FixturesDir() + "/SleepApp/" + f, dir.path()});
  }
  auto p = Process::Spawn({exe});
  ASSERT_TRUE(p && p->WaitForLine("READY", std::chrono::seconds(30)));
  RunResult r = daemon_.Client({"collect", "-n", "UniqueNameApp", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = ParseJson(r.out);
  EXPECT_EQ(j["pid"], p->pid());
  EXPECT_EQ(j["type"], "Full");
}

TEST_F(CollectTest, CrashReportIsKeptBesideTheDump) {
  RunResult r = daemon_.Client(
      {"collect", "-p", std::to_string(app_->pid()), "--type", "Mini", "--crashreport", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.contains("crash_report_path")) << r.out;
  auto report = ParseJson(ReadFile(j["crash_report_path"]));
  ASSERT_TRUE(report.is_object());
  EXPECT_TRUE(report.contains("payload"));
  EXPECT_EQ(ModeOf(j["crash_report_path"]), 0600u);
}

TEST_F(CollectTest, SecondCollectionOfTheSameProcessIsBusy) {
  // A Full dump of a process holding 300 MB takes long enough to overlap two requests.
  auto big = StartFixture("HeapApp", {"1000", "300"});
  ASSERT_TRUE(big);
  std::string pid = std::to_string(big->pid());
  TempDir t;
  SpawnOptions so;
  so.stdout_file = t / "first.out";
  so.stderr_file = t / "first.err";
  auto first = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", daemon_.server(), "collect", "-p", pid}, so);
  // Wait until the daemon is working on it.
  for (int i = 0;
       i < 100 && daemon_.log().find("collect: Full dump of pid " + pid) == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  RunResult second = daemon_.Client({"collect", "-p", pid});
  EXPECT_EQ(second.exit_code, 6) << second.out << second.err;
  EXPECT_CONTAINS(second.err, "busy");
  ASSERT_EQ(first->Wait(std::chrono::seconds(120)), 0) << ReadFile(t / "first.err");
}

}  // namespace
}  // namespace clrdiag::testing

namespace clrdiag::testing {
namespace {

TEST_F(CollectTest, ProgressGoesToStderrAsPlainLinesWhenNotATerminal) {
  TempDir out;
  RunResult r = daemon_.Client(
      {"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "-o", out / "d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.err,
                  "asking HeapApp (pid " + std::to_string(app_->pid()) + ") for a Heap dump");
  EXPECT_CONTAINS(r.err, "storing: ");
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  EXPECT_EQ(r.out.find("storing"), std::string::npos);  // stdout stays clean for scripts
}

TEST_F(CollectTest, ProgressIsRedrawnInPlaceOnATerminal) {
  TempDir out;
  // `script` gives the client a pseudo-terminal, as a person at a shell has.
  std::string cmd = BinDir() + "/clrdiag --server " + daemon_.server() + " collect -p " +
                    std::to_string(app_->pid()) + " --type Heap -o " + (out / "d");
  RunResult r = RunCommand({"/usr/bin/script", "-qfec", cmd, "/dev/null"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_CONTAINS(r.out, "\rasking HeapApp (pid ");
  EXPECT_CONTAINS(r.out, "\rstoring: ");
  EXPECT_CONTAINS(r.out, "Complete");
}

}  // namespace
}  // namespace clrdiag::testing
