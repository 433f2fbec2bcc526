// gcroot's heap graph kept per catalog dump (issue 6), with the real daemon, client, worker and
// a HeapApp fixture: the daemon builds the graph in the background when a dump enters the
// catalog (the first gcroot then maps the file: it does not walk the heap again), `rm`
// removes it with the dump, retention counts it, and a damaged graph file is refused and
// built again, with the same answer.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

class HeapGraphStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = StartFixture("HeapApp", {"100", "1", "--zoo", "--chain", "200"});
    ASSERT_TRUE(app_);
  }
  void StartDaemon(const std::string& yaml) {
    std::ofstream(dir_ / "clrdiagd.yaml") << yaml;
    Daemon::Options o;
    o.dump_dir = dir_ / "store";
    o.extra_args = {"--config", dir_ / "clrdiagd.yaml"};
    daemon_ = std::make_unique<Daemon>(o);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  std::string Collect() {
    RunResult r =
        daemon_->Client({"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out).value("id", "");
  }
  std::string GraphOf(const std::string& id) const {
    return daemon_->dump_dir() + "/dumps/" + id + "/heapgraph";
  }
  // Waits for the daemon's background build of `id`'s graph to end (its log line).
  bool WaitForBuild(const std::string& id, std::chrono::milliseconds timeout = 120s) {
    const std::string line = "heap graph of dump " + id + " built";
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(100ms)) {
      if (daemon_->log().find(line) != std::string::npos) return true;
    }
    return false;
  }
  RunResult Analyze(const std::string& id, const std::vector<std::string>& commands) {
    std::vector<std::string> args = {"analyze", id};
    for (const auto& c : commands) args.insert(args.end(), {"-c", c});
    args.insert(args.end(), {"-c", "exit"});
    return daemon_->Client(args);
  }
  std::string ChainEnd(const std::string& id) {
    RunResult r = Analyze(id, {"dumpheap -type Fixture.ChainEnd -short"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.find_first_not_of("0123456789abcdef") == std::string::npos) {
        return line;
      }
    }
    return "";
  }
  static ino_t InodeOf(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  TempDir dir_{"clrdiag-heapgraph-test"};
  std::unique_ptr<Process> app_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(HeapGraphStoreTest, BuiltInTheBackgroundAfterCollectAndUsedByGcroot) {
  StartDaemon("");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBuild(id)) << daemon_->log();
  const std::string graph = GraphOf(id);
  ASSERT_TRUE(FileExists(graph));
  EXPECT_EQ(ModeOf(graph), 0600u);
  const ino_t built = InodeOf(graph);
  const std::string end = ChainEnd(id);
  ASSERT_FALSE(end.empty());
  RunResult r = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Found 1 unique roots");
  // The session mapped the daemon's file: a heap pass would have replaced it (a new inode).
  EXPECT_EQ(InodeOf(graph), built);
  // Only the background build: no second one was queued for the same dump.
  const std::string log = daemon_->log();
  const std::string line = "heap graph of dump " + id + " built";
  EXPECT_EQ(log.find(line), log.rfind(line));
}

// Other tools open the catalog's dump while its graph is built: .NET tools such as the
// reference dotnet-dump take a shared flock on the files they open (an exclusive lock held on
// the dump by the build made dotnet-dump refuse it: "being used by another process").
TEST_F(HeapGraphStoreTest, TheDumpStaysOpenToOtherToolsWhileItsGraphIsBuilt) {
  StartDaemon("");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const std::string dump = daemon_->dump_dir() + "/dumps/" + id + "/dump";
  const std::string line = "heap graph of dump " + id + " built";
  int checks = 0;
  for (auto end = std::chrono::steady_clock::now() + 120s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(5ms)) {
    const bool built = daemon_->log().find(line) != std::string::npos;
    int fd = ::open(dump.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << dump;
    EXPECT_EQ(::flock(fd, LOCK_SH | LOCK_NB), 0) << "the dump is locked, check " << checks;
    ::close(fd);
    ++checks;
    if (built) break;
  }
  EXPECT_NE(daemon_->log().find(line), std::string::npos) << daemon_->log();
  EXPECT_GT(checks, 1);
}

// analysis.prebuild_heap_graph: false: no background build; the first gcroot builds and
// keeps the graph.
TEST_F(HeapGraphStoreTest, PrebuildOffLeavesTheGraphToTheFirstGcroot) {
  StartDaemon("analysis:\n  prebuild_heap_graph: false\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const std::string end = ChainEnd(id);
  ASSERT_FALSE(end.empty());
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(FileExists(GraphOf(id)));
  EXPECT_EQ(daemon_->log().find("heap graph of dump " + id + " built"), std::string::npos);
  RunResult r = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Found 1 unique roots");
  EXPECT_TRUE(FileExists(GraphOf(id)));
}

TEST_F(HeapGraphStoreTest, RmRemovesTheGraphWithTheDump) {
  StartDaemon("");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBuild(id)) << daemon_->log();
  ASSERT_GT(FileSizeOf(GraphOf(id)), 0u);
  RunResult rm = daemon_->Client({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_CONTAINS(rm.out, "Removed " + id);
  EXPECT_FALSE(FileExists(GraphOf(id)));
  EXPECT_FALSE(FileExists(daemon_->dump_dir() + "/dumps/" + id));
}

TEST_F(HeapGraphStoreTest, RmDuringTheBackgroundBuildStopsIt) {
  StartDaemon("");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  // Right away: the build is queued or running; either way the dump and its graph go.
  RunResult rm = daemon_->Client({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(FileExists(daemon_->dump_dir() + "/dumps/" + id));
  EXPECT_FALSE(FileExists(GraphOf(id)));
  // The daemon is fine and builds the next one.
  const std::string next = Collect();
  ASSERT_FALSE(next.empty());
  EXPECT_TRUE(WaitForBuild(next)) << daemon_->log();
}

TEST_F(HeapGraphStoreTest, RetentionCountsTheGraphAndRemovesIt) {
  StartDaemon("");
  const std::string first = Collect();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(WaitForBuild(first)) << daemon_->log();
  const uint64_t dump_bytes = FileSizeOf(daemon_->dump_dir() + "/dumps/" + first + "/dump");
  ASSERT_GT(FileSizeOf(GraphOf(first)), 0u);
  ASSERT_EQ(daemon_->Stop(), 0);
  // Make the first graph 3 MiB (retention looks at sizes only), and allow two dumps and at
  // most 2 MiB more: the second collection then pushes the first dump out only because its
  // graph is counted (its own graph is built after that enforcement).
  ASSERT_EQ(::truncate(GraphOf(first).c_str(), 3 << 20), 0);
  const uint64_t mib = ((2 * dump_bytes + (1 << 20) - 1) >> 20) + 1;
  const std::string yaml = "retention: {max_total_mib: " + std::to_string(mib) + "}\n";
  StartDaemon(yaml);
  EXPECT_TRUE(FileExists(GraphOf(first)));  // one dump and its graph fit
  const std::string second = Collect();
  ASSERT_FALSE(second.empty());
  EXPECT_FALSE(FileExists(daemon_->dump_dir() + "/dumps/" + first));
  EXPECT_FALSE(FileExists(GraphOf(first)));
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + first);
  EXPECT_TRUE(WaitForBuild(second)) << daemon_->log();
  EXPECT_TRUE(FileExists(GraphOf(second)));
}

TEST_F(HeapGraphStoreTest, DamagedGraphIsRefusedAndBuiltAgain) {
  StartDaemon("");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBuild(id)) << daemon_->log();
  const std::string end = ChainEnd(id);
  ASSERT_FALSE(end.empty());
  RunResult good = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(good.exit_code, 0) << good.err;
  const std::string graph = GraphOf(id);
  const uint64_t size = FileSizeOf(graph);
  ASSERT_GT(size, 256u);
  // Overwrite the last 40 % (references, in the file's order: the objects' reference lists
  // come last) with 0xff, in place: indices past the last object, which Load does not read
  // but the search does.
  {
    const int fd = ::open(graph.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const size_t from = static_cast<size_t>(size * 6 / 10);
    const std::string junk(static_cast<size_t>(size) - 1 - from, '\xff');
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), static_cast<off_t>(from)),
              static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  const ino_t damaged = InodeOf(graph);
  RunResult again = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, good.out);
  // Refused and replaced by a new file, which the next session uses as it is.
  const ino_t rebuilt = InodeOf(graph);
  EXPECT_NE(rebuilt, damaged);
  RunResult third = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(third.out, good.out);
  EXPECT_EQ(InodeOf(graph), rebuilt);
  // A truncated file likewise.
  ASSERT_EQ(::truncate(graph.c_str(), static_cast<off_t>(size / 2)), 0);
  RunResult fourth = Analyze(id, {"gcroot " + end});
  ASSERT_EQ(fourth.exit_code, 0) << fourth.err;
  EXPECT_EQ(fourth.out, good.out);
  EXPECT_EQ(FileSizeOf(graph), size);
}

}  // namespace
}  // namespace clrdiag::testing
