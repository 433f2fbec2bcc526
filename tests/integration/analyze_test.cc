// `clrdiag analyze`: sessions in a worker process next to the dump, and their failure modes.
#include <signal.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class AnalyzeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.log();
    app_ = StartFixture("HeapApp", {"2000"});
    ASSERT_TRUE(app_);
    RunResult r =
        daemon_.Client({"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = ParseJson(r.out);
    id_ = j["id"];
    path_ = j["path"];
  }
  Daemon daemon_;
  std::unique_ptr<Process> app_;
  std::string id_, path_;
};

TEST_F(AnalyzeTest, RunsCommandsByIdAndByPath) {
  for (const std::string& what : {id_, path_}) {
    RunResult r = daemon_.Client({"analyze", what, "-c", "dumpheap -stat", "-c", "exit"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Loading core dump: " + what + " ...\n", 0), 0u) << r.out;
    EXPECT_TRUE(
        std::regex_search(r.out, std::regex(R"(\n[0-9a-f]+ +2,000 +64,000 Fixture\.Customer\n)")))
        << r.out;
    EXPECT_CONTAINS(r.out, "\nTotal ");
  }
}

TEST_F(AnalyzeTest, CommandsComeFromStdinWhenNotATerminalAndExitEndsTheSession) {
  TempDir t;
  std::ofstream(t / "cmds") << "eeversion\nclrthreads\nexit\ndumpheap -stat\n";
  std::string cmd =
      BinDir() + "/clrdiag --server " + daemon_.server() + " analyze " + id_ + " < " + (t / "cmds");
  RunResult r = RunCommand({"/bin/sh", "-c", cmd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Workstation mode");
  EXPECT_CONTAINS(r.out, "ThreadCount:");
  EXPECT_EQ(r.out.find("Statistics:"), std::string::npos) << "ran past exit";
}

TEST_F(AnalyzeTest, UnknownCommandAndBadArgumentsDoNotEndTheSession) {
  RunResult r = daemon_.Client({"analyze", id_, "-c", "frobnicate", "-c", "dumpheap -min", "-c",
                                "dumpheap -mt 0", "-c", "dumpheap -stat", "-c", "exit"});
  EXPECT_EQ(r.exit_code, 1);  // some command failed
  EXPECT_CONTAINS(r.err, "Unrecognized SOS command 'frobnicate'");
  EXPECT_CONTAINS(r.err, "-min needs a size");
  EXPECT_CONTAINS(r.err, "Usage: dumpheap");
  EXPECT_CONTAINS(r.err, "Invalid MethodTable: 0");
  EXPECT_CONTAINS(r.out, "Total ");  // the session went on
}

TEST_F(AnalyzeTest, HelpListsTheCommands) {
  RunResult r = daemon_.Client({"analyze", id_, "-c", "help", "-c", "help dumpheap", "-c", "q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "dumpheap, DumpHeap <memoryrange>");
  EXPECT_CONTAINS(r.out, "exit, quit, q");
  EXPECT_CONTAINS(r.out, "-stat   only the statistics");
}

TEST_F(AnalyzeTest, NotADumpAndTruncatedDump) {
  TempDir t;
  std::ofstream(t / "notes.txt") << "hello, I am not a core dump\n";
  RunResult a = daemon_.Client({"analyze", t / "notes.txt", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 7) << a.err;
  EXPECT_CONTAINS(a.err, "cannot open " + (t / "notes.txt") + " as a dump");

  std::string dump = ReadFile(path_);
  std::ofstream(t / "cut.core", std::ios::binary) << dump.substr(0, 4096);
  RunResult b = daemon_.Client({"analyze", t / "cut.core", "-c", "exit"});
  EXPECT_NE(b.exit_code, 0);
  EXPECT_CONTAINS(b.err, "as a dump");

  RunResult c = daemon_.Client({"analyze", t / "missing.core", "-c", "exit"});
  EXPECT_EQ(c.exit_code, 4) << c.err;
  EXPECT_EQ(daemon_.Client({"ps"}).exit_code, 0);
}

TEST_F(AnalyzeTest, DumpOfANonDotnetProcess) {
  TempDir t;
  auto sleeper = Process::Spawn({"/bin/sleep", "300"});
  ASSERT_TRUE(sleeper);
  RunResult g = RunCommand({"/usr/bin/gcore", "-o", t / "sleep", std::to_string(sleeper->pid())});
  std::string core = t / ("sleep." + std::to_string(sleeper->pid()));
  ASSERT_TRUE(FileExists(core)) << g.out << g.err;
  RunResult r = daemon_.Client({"analyze", core, "-c", "exit"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "holds no .NET runtime");
}

TEST_F(AnalyzeTest, MissingDacNamesTheBuildIdAndSetclrpath) {
  // A copy of the dump whose runtime has a build-id no DAC on this host matches.
  auto meta = ParseJson(daemon_.Client({"dumps", "--json"}).out)[0];
  std::string bid = meta["coreclr_build_id"];
  std::string raw;
  for (size_t i = 0; i < bid.size(); i += 2)
    raw.push_back(static_cast<char>(std::stoi(bid.substr(i, 2), nullptr, 16)));
  std::string dump = ReadFile(path_);
  size_t at = dump.find(raw);
  ASSERT_NE(at, std::string::npos) << "build-id bytes not in the dump";
  for (size_t pos = at; pos != std::string::npos; pos = dump.find(raw, pos + 1)) {
    dump[pos] = static_cast<char>(dump[pos] ^ 0x5a);
  }
  TempDir t;
  std::ofstream(t / "other.core", std::ios::binary) << dump;
  RunResult r = daemon_.Client({"analyze", t / "other.core", "-c", "exit"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "setclrpath");
  EXPECT_CONTAINS(r.err, "build-id");
}

TEST_F(AnalyzeTest, WorkerCrashIsReportedAndTheDaemonKeepsServing) {
  // A heap of a million objects: listing it keeps the worker busy while we crash it.
  auto big = StartFixture("HeapApp", {"1000", "--objects", "500000"});
  ASSERT_TRUE(big);
  RunResult c =
      daemon_.Client({"collect", "-p", std::to_string(big->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string big_id = ParseJson(c.out)["id"];
  TempDir t;
  SpawnOptions so;
  so.stdout_file = t / "out";
  so.stderr_file = t / "err";
  auto client =
      Process::Spawn({BinDir() + "/clrdiag", "--server", daemon_.server(), "analyze", big_id, "-c",
                      "dumpheap", "-c", "dumpheap", "-c", "dumpheap", "-c", "exit"},
                     so);
  std::regex worker_re(R"(worker pid (\d+))");
  std::smatch m;
  pid_t worker = 0;
  for (int i = 0; i < 500 && !worker; ++i) {
    std::string log = daemon_.log();
    if (std::regex_search(log, m, worker_re)) worker = std::stoi(m[1]);
    if (!worker) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(worker, 0) << daemon_.log();
  // Once the first command's output is flowing, crash the worker.
  for (int i = 0; i < 1000 && FileSizeOf(t / "out") < 100000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(worker, SIGSEGV);
  auto rc = client->Wait(std::chrono::seconds(60));
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
  std::string err = ReadFile(t / "err");
#if defined(__SANITIZE_ADDRESS__)
  // ASan's SEGV handler reports the signal and exits with status 1 instead of dying by it.
  EXPECT_CONTAINS(err, "the analysis worker exited with status 1 while running 'dumpheap'");
#else
  EXPECT_CONTAINS(err, "the analysis worker was killed by SIGSEGV while running 'dumpheap'");
#endif
  EXPECT_CONTAINS(err, "the daemon is fine");
  // The daemon is unharmed and a new session works.
  EXPECT_EQ(daemon_.Client({"ps"}).exit_code, 0);
  RunResult again = daemon_.Client({"analyze", id_, "-c", "eeversion", "-c", "exit"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST_F(AnalyzeTest, UnknownIdAndRelativePath) {
  RunResult a = daemon_.Client({"analyze", "20200101-000000-1-full-0000", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 4) << a.err;
  RunResult b = daemon_.Client({"analyze", "some/relative.core", "-c", "exit"});
  EXPECT_EQ(b.exit_code, 2) << b.err;
  EXPECT_CONTAINS(b.err, "neither a dump id nor an absolute path");
}

}  // namespace
}  // namespace clrdiag::testing
