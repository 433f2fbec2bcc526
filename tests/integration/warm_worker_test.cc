// Kept analysis workers (analysis.warm_workers, issue 6's gcroot time) and the background graph
// build of dumps already in the store at start-up, with the real daemon, client, worker and a
// HeapApp fixture:
// - a second session on the same dump by the same caller runs in the first one's worker (the
//   daemon's log names the worker's pid for each session) and answers exactly as the first did,
//   from a fresh session state: `setthread` of session 1 does not carry over, and gcroot's
//   once-per-session "Caching GC roots" notice is shown again;
// - with warm_workers: 0 every session has its own worker;
// - `rm` of the dump ends its kept worker; so does analysis.warm_worker_idle;
// - a dump in the store without a valid heap graph when the daemon starts is queued for the
//   background build; one with a valid graph is not.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

class WarmWorkerTest : public ::testing::Test {
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
  // The worker pid of each session so far, in order (the daemon logs one line per session).
  std::vector<pid_t> SessionWorkers() const {
    std::vector<pid_t> pids;
    const std::string log = daemon_->log();
    static const std::regex kLine(R"(analyze: session s\d+ on .* \(worker pid (\d+))");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine);
         it != std::sregex_iterator(); ++it) {
      pids.push_back(static_cast<pid_t>(std::stol((*it)[1].str())));
    }
    return pids;
  }
  // True once `pid` is gone (the daemon reaps its workers) within `timeout`.
  static bool WaitGone(pid_t pid, std::chrono::milliseconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(50ms)) {
      if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    }
    return false;
  }
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(100ms)) {
      if (daemon_->log().find(text) != std::string::npos) return true;
    }
    return false;
  }
  static bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

  TempDir dir_{"clrdiag-warm-test"};
  std::unique_ptr<Process> app_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(WarmWorkerTest, SecondSessionReusesTheWorkerWithAFreshState) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 60s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const std::string end = ChainEnd(id);  // session 1: its worker is kept
  ASSERT_FALSE(end.empty());
  // Session 2 selects another thread; session 3 runs the same commands and must see what
  // session 2 saw: the first `threads` with the first thread current, and gcroot's notice.
  const std::vector<std::string> commands = {"threads", "setthread 1", "threads", "gcroot " + end};
  RunResult first = Analyze(id, commands);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  RunResult second = Analyze(id, commands);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(first.out, second.out);
  EXPECT_CONTAINS(second.out, "Caching GC roots");
  EXPECT_CONTAINS(second.out, "Found 1 unique roots");
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 3u) << daemon_->log();
  EXPECT_EQ(workers[0], workers[1]);
  EXPECT_EQ(workers[1], workers[2]);
  EXPECT_CONTAINS(daemon_->log(), "kept from an earlier session");
  EXPECT_TRUE(Alive(workers[2]));
  // The daemon's shutdown ends the kept worker.
  ASSERT_EQ(daemon_->Stop(), 0);
  EXPECT_TRUE(WaitGone(workers[2], 10s));
}

// A client that ends its session without `exit` (end of input, as a script piping commands)
// gets its output and exit status 0, with and without --json; the daemon ends the session in the
// worker itself and keeps it: the next session reuses it. (The daemon's own `exit` used to be
// relayed to the client, which took it for the session ending under it: status 1.)
TEST_F(WarmWorkerTest, EndOfInputEndsTheSessionCleanlyAndKeepsTheWorker) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 60s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  for (bool json : {false, true, false}) {
    SCOPED_TRACE(json ? "--json" : "text");
    std::vector<std::string> args = {"analyze", id, "-c", "eeversion"};
    if (json) args.push_back("--json");
    RunResult r = daemon_->Client(args);  // stdin: /dev/null, no exit
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_CONTAINS(r.out, json ? "\"version_string\"" : "@Commit");
  }
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 3u) << daemon_->log();
  EXPECT_EQ(workers[0], workers[1]);
  EXPECT_EQ(workers[1], workers[2]);
}

// The state a session leaves must not reach the next: the `threads` listing of a session that
// begins in a kept worker is the one of a fresh worker (warm_workers: 0), after setthread.
TEST_F(WarmWorkerTest, SetthreadDoesNotLeakIntoTheNextSession) {
  StartDaemon("analysis:\n  warm_workers: 0\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  RunResult fresh = Analyze(id, {"threads"});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  RunResult moved = Analyze(id, {"setthread 1", "threads"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  ASSERT_NE(fresh.out, moved.out) << "setthread 1 did not change the listing";
  std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_NE(workers[0], workers[1]);  // warm_workers: 0 keeps none
  EXPECT_EQ(daemon_->log().find("kept idle"), std::string::npos);
  ASSERT_EQ(daemon_->Stop(), 0);

  // Same store, workers kept: setthread in one session, then `threads` in the next one.
  daemon_.reset();
  StartDaemon("analysis:\n  warm_workers: 1\n");
  RunResult set = Analyze(id, {"setthread 1", "threads"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out, moved.out);
  RunResult after = Analyze(id, {"threads"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.out, fresh.out);
  workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0], workers[1]);
}

TEST_F(WarmWorkerTest, RemovingTheDumpEndsItsKeptWorker) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 60s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  RunResult r = Analyze(id, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitForLog("kept idle", 10s)) << daemon_->log();
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_TRUE(Alive(workers[0]));
  RunResult rm = daemon_->Client({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_TRUE(WaitGone(workers[0], 10s));
  EXPECT_CONTAINS(daemon_->log(), "its dump left the catalog");
}

TEST_F(WarmWorkerTest, AKeptWorkerEndsAfterTheIdleTime) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 1s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  RunResult r = Analyze(id, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitForLog("kept idle", 10s)) << daemon_->log();
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_TRUE(WaitGone(workers[0], 15s));
  EXPECT_CONTAINS(daemon_->log(), "idle for analysis.warm_worker_idle");
  // The next session starts a new worker.
  r = Analyze(id, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<pid_t> now = SessionWorkers();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_NE(now[0], now[1]);
}

// Dumps in the store when the daemon starts: those without a valid graph are queued (lowest
// priority), those with one are not; a graph whose header names another file is not valid.
TEST_F(WarmWorkerTest, DumpsInTheStoreAtStartWithoutAGraphAreQueued) {
  StartDaemon("analysis:\n  prebuild_heap_graph: false\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const std::string graph = daemon_->dump_dir() + "/dumps/" + id + "/heapgraph";
  ASSERT_EQ(daemon_->Stop(), 0);
  EXPECT_FALSE(FileExists(graph));

  daemon_.reset();
  StartDaemon("");
  EXPECT_TRUE(WaitForLog("heap graph of dump " + id + ": none valid in the store, queued", 10s))
      << daemon_->log();
  EXPECT_TRUE(WaitForLog("heap graph of dump " + id + " built", 120s)) << daemon_->log();
  EXPECT_TRUE(FileExists(graph));
  ASSERT_EQ(daemon_->Stop(), 0);

  daemon_.reset();
  StartDaemon("");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(daemon_->log().find("heap graph of dump " + id), std::string::npos) << daemon_->log();
  ASSERT_EQ(daemon_->Stop(), 0);

  // A header that names another dump (one byte of the key changed): queued again.
  {
    std::fstream f(graph, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekp(8);
    char c = 0;
    f.seekg(8);
    f.get(c);
    f.seekp(8);
    f.put(static_cast<char>(c ^ 1));
  }
  daemon_.reset();
  StartDaemon("");
  EXPECT_TRUE(WaitForLog("heap graph of dump " + id + ": none valid in the store, queued", 10s))
      << daemon_->log();
  EXPECT_TRUE(WaitForLog("heap graph of dump " + id + " built", 120s)) << daemon_->log();
}

}  // namespace
}  // namespace clrdiag::testing
