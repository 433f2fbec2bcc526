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
//   background build; one with a valid graph is not;
// - the worker that built a new dump's graph in the background stays as its warm worker (at
//   normal priority), and the dump's first session takes it over (any caller allowed to analyze
//   the dump, with that caller's own rights), answering as a cold worker does; with
//   warm_workers: 0 it ends after the build; `rm` of the dump ends it; it never takes the place
//   of a worker a session left.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
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
  // The pid in the first group of `line` once the daemon's log has such a line (0: none within
  // `timeout`).
  pid_t WaitForLoggedPid(const std::regex& line, std::chrono::milliseconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(100ms)) {
      const std::string log = daemon_->log();
      std::smatch m;
      if (std::regex_search(log, m, line)) return static_cast<pid_t>(std::stol(m[1].str()));
    }
    return 0;
  }
  // The pid of the worker the daemon kept after building dump `id`'s heap graph.
  pid_t WaitForPrebuiltWorker(const std::string& id, std::chrono::milliseconds timeout = 120s) {
    return WaitForLoggedPid(
        std::regex(R"(analyze: worker (\d+) kept idle after building the heap graph of dump )" +
                   id),
        timeout);
  }
  // The pid of the worker that built dump `id`'s graph, from the daemon's line saying it is
  // built.
  pid_t WaitForBuildWorker(const std::string& id, std::chrono::milliseconds timeout = 120s) {
    return WaitForLoggedPid(
        std::regex("heap graph of dump " + id + R"( built in \d+ ms \(worker (\d+)\))"),
        timeout);
  }
  // The nice value of every thread of `pid` (/proc/PID/task/TID/stat, field 19).
  static std::vector<int> ThreadNices(pid_t pid) {
    std::vector<int> nices;
    std::error_code ec;
    for (const auto& t :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      const std::string stat = ReadFile(t.path().string() + "/stat");
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream fields(stat.substr(paren + 2));  // from field 3 (state) on
      std::string f;
      for (int k = 3; k <= 19 && fields >> f; ++k) {
        if (k == 19) nices.push_back(std::stoi(f));
      }
    }
    return nices;
  }

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

// issue 6: the first session on a dump that just entered the catalog starts warm. The worker
// that built its heap graph in the background (at nice 19) stays, at the daemon's priority;
// the first session (a local admin's) takes it over: its commands answer exactly as in a cold
// worker, and its rights are the caller's (setsymbolserver may add a directory).
TEST_F(WarmWorkerTest, FirstSessionOnANewDumpTakesOverItsGraphBuildsWorker) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 60s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const pid_t built = WaitForPrebuiltWorker(id);
  ASSERT_GT(built, 0) << daemon_->log();
  ASSERT_TRUE(Alive(built));
  const std::vector<int> daemon_nice = ThreadNices(daemon_->process()->pid());
  ASSERT_FALSE(daemon_nice.empty());
  const std::vector<int> nices = ThreadNices(built);
  ASSERT_FALSE(nices.empty());
  for (int n : nices) EXPECT_EQ(n, daemon_nice[0]) << "a thread of the kept build worker";

  // The first session, interactive: the object for gcroot is found in the session itself.
  InteractiveClient live({BinDir() + "/clrdiag", "--server", daemon_->server(), "analyze", id},
                         dir_.path(), "live");
  const std::string find = "dumpheap -type Fixture.ChainEnd -short";
  ASSERT_TRUE(live.Send(find));
  std::string end;
  static const std::regex kAddress(R"((^|\n)([0-9a-f]{8,16})\n)");
  for (auto until = std::chrono::steady_clock::now() + 60s;
       end.empty() && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(50ms)) {
    const std::string out = live.out();
    std::smatch m;
    if (std::regex_search(out, m, kAddress)) end = m[2].str();
  }
  ASSERT_FALSE(end.empty()) << live.out() << live.err();
  ASSERT_TRUE(live.Send("gcroot " + end));
  ASSERT_TRUE(live.WaitOut("Found 1 unique roots", 60s)) << live.out() << live.err();
  ASSERT_TRUE(live.Send("setsymbolserver -directory /tmp"));
  ASSERT_TRUE(live.WaitOut("-> Directory: /tmp", 30s)) << live.out() << live.err();
  ASSERT_TRUE(live.Send("exit"));
  const std::optional<int> rc = live.proc().Wait(30s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << live.err();
  std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u) << daemon_->log();
  EXPECT_EQ(workers[0], built);
  EXPECT_CONTAINS(daemon_->log(), "kept from the build of the dump's heap graph");
  // From then on it is this caller's kept worker, as any other.
  RunResult again = Analyze(id, {"threads"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 2u) << daemon_->log();
  EXPECT_EQ(workers[1], built);
  ASSERT_EQ(daemon_->Stop(), 0);
  EXPECT_TRUE(WaitGone(built, 10s));

  // The same commands in a cold worker (same store, no worker kept): the same output.
  daemon_.reset();
  StartDaemon("analysis:\n  warm_workers: 0\n");
  RunResult cold = Analyze(id, {find, "gcroot " + end, "setsymbolserver -directory /tmp"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  EXPECT_EQ(live.out(), cold.out);
  workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_NE(workers[0], built);
}

// analysis.warm_workers: 0 (the k8s DaemonSet's setting): the build's worker ends with the
// build, and the first session starts its own.
TEST_F(WarmWorkerTest, WithoutWarmWorkersTheGraphBuildsWorkerEnds) {
  StartDaemon("analysis:\n  warm_workers: 0\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const pid_t built = WaitForBuildWorker(id);
  ASSERT_GT(built, 0) << daemon_->log();
  EXPECT_TRUE(WaitGone(built, 10s));
  EXPECT_EQ(daemon_->log().find("kept idle"), std::string::npos) << daemon_->log();
  RunResult r = Analyze(id, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_NE(workers[0], built);
  EXPECT_EQ(daemon_->log().find("kept from"), std::string::npos);
}

TEST_F(WarmWorkerTest, RemovingTheDumpEndsItsGraphBuildsWorker) {
  StartDaemon("analysis:\n  warm_workers: 2\n  warm_worker_idle: 60s\n");
  const std::string id = Collect();
  ASSERT_FALSE(id.empty());
  const pid_t built = WaitForPrebuiltWorker(id);
  ASSERT_GT(built, 0) << daemon_->log();
  EXPECT_TRUE(Alive(built));
  RunResult rm = daemon_->Client({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_TRUE(WaitGone(built, 10s));
  EXPECT_CONTAINS(daemon_->log(), "its dump left the catalog");
}

// A full pool (warm_workers: 1): a newer dump's build worker takes the place of an older
// one's; a worker a session left takes the place of a build worker; but a build worker never
// takes the place of a worker a session left (someone is working on that dump).
TEST_F(WarmWorkerTest, GraphBuildWorkersGiveWayToWorkersSessionsLeft) {
  StartDaemon("analysis:\n  warm_workers: 1\n  warm_worker_idle: 60s\n");
  const std::string a = Collect();
  ASSERT_FALSE(a.empty());
  const pid_t built_a = WaitForPrebuiltWorker(a);
  ASSERT_GT(built_a, 0) << daemon_->log();
  const std::string b = Collect();
  ASSERT_FALSE(b.empty());
  const pid_t built_b = WaitForPrebuiltWorker(b);
  ASSERT_GT(built_b, 0) << daemon_->log();
  EXPECT_TRUE(WaitGone(built_a, 10s));
  EXPECT_TRUE(Alive(built_b));
  // A session on `a`: a new worker (a's build worker is gone), kept in b's build worker's place.
  RunResult r = Analyze(a, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_NE(workers[0], built_a);
  EXPECT_TRUE(WaitGone(built_b, 10s));
  EXPECT_TRUE(Alive(workers[0]));
  // A third dump's build worker finds no room and ends; the session's worker stays.
  const std::string c = Collect();
  ASSERT_FALSE(c.empty());
  const pid_t built_c = WaitForBuildWorker(c);
  ASSERT_GT(built_c, 0) << daemon_->log();
  EXPECT_TRUE(WaitGone(built_c, 10s));
  EXPECT_TRUE(WaitForLog("every place holds a worker a session left", 10s)) << daemon_->log();
  EXPECT_TRUE(Alive(workers[0]));
  r = Analyze(a, {"threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SessionWorkers().back(), workers[0]);
}

// A user created for one test (no home, no login shell, its own group), deleted afterwards.
class ThrowawayUser {
 public:
  explicit ThrowawayUser(std::string name) : name_(std::move(name)) {
    RunResult r = RunCommand({"/usr/sbin/useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name_});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "useradd " << name_ << ": " << r.err;
      return;
    }
    created_ = true;
    if (struct passwd* pw = ::getpwnam(name_.c_str())) {
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
    }
  }
  ~ThrowawayUser() {
    if (created_) RunCommand({"/usr/sbin/userdel", name_});
  }
  ThrowawayUser(const ThrowawayUser&) = delete;
  ThrowawayUser& operator=(const ThrowawayUser&) = delete;
  bool ok() const { return created_ && uid_ != 0; }
  // Runs `argv` as this user (setpriv execs: the pid stays the same).
  std::vector<std::string> As(const std::vector<std::string>& argv) const {
    std::vector<std::string> all = {
        "/usr/bin/setpriv", "--reuid", std::to_string(uid_), "--regid", std::to_string(gid_),
        "--init-groups",    "--"};
    all.insert(all.end(), argv.begin(), argv.end());
    return all;
  }

 private:
  std::string name_;
  bool created_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// The build worker has served no one: the first session of any caller allowed to analyze the
// dump takes it, with that caller's rights: a plain user's session may not add a symbol
// directory (as in a cold worker; it ran without rights during the build), and the worker it
// leaves is then that user's: root's next session gets its own, with its own rights.
TEST_F(WarmWorkerTest, APlainUsersFirstSessionTakesTheBuildWorkerWithItsOwnRights) {
  ASSERT_EQ(::geteuid(), 0u) << "the integration tests run as root";
  ThrowawayUser user("cdtw" + std::to_string(::getpid()));
  ASSERT_TRUE(user.ok());
  StartDaemon("socket: {mode: \"0666\", group: \"\"}\nanalysis:\n  warm_workers: 2\n");
  // The test daemon's directory is private (mkdtemp): let the user reach the socket.
  const std::string sock_dir = daemon_->socket_path().substr(0, daemon_->socket_path().rfind('/'));
  ::chmod(sock_dir.c_str(), 0755);
  SpawnOptions so;
  so.env["TMPDIR"] = "/tmp";
  so.env["HOME"] = "/tmp";
  so.cwd = "/";
  auto app = Process::Spawn(user.As({FixturePath("HeapApp"), "100", "1"}), so);
  ASSERT_TRUE(app && app->WaitForLine("READY", 60s));
  auto as_user = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinDir() + "/clrdiag", "--server", daemon_->server()};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions cwd;
    cwd.cwd = "/";
    return RunCommand(user.As(argv), cwd);
  };
  RunResult c = as_user({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string id = ParseJson(c.out).value("id", "");
  ASSERT_FALSE(id.empty()) << c.out;
  const pid_t built = WaitForPrebuiltWorker(id);
  ASSERT_GT(built, 0) << daemon_->log();

  const std::string add = "setsymbolserver -directory /tmp";
  RunResult plain = as_user({"analyze", id, "-c", add, "-c", "exit"});
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_CONTAINS(plain.out + plain.err, "only a local admin's session");
  std::vector<pid_t> workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 1u) << daemon_->log();
  EXPECT_EQ(workers[0], built);
  ASSERT_TRUE(WaitForLog("kept idle for the next session", 10s)) << daemon_->log();

  RunResult admin = Analyze(id, {add});
  EXPECT_EQ(admin.exit_code, 0) << admin.err;
  EXPECT_CONTAINS(admin.out, "-> Directory: /tmp");
  workers = SessionWorkers();
  ASSERT_EQ(workers.size(), 2u) << daemon_->log();
  EXPECT_NE(workers[1], built);
  EXPECT_TRUE(Alive(built));  // still the user's kept worker
  ASSERT_EQ(daemon_->Stop(), 0);
}

}  // namespace
}  // namespace clrdiag::testing
