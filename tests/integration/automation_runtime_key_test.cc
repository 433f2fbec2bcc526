// Rules keyed by runtime, not by pid (issue 8): runtimes known only through the daemon's
// diagnostic port may advertise the same pid — two containers without a shared pid namespace,
// each app pid 1 of its own. Real daemon in its own pid namespace (it sees neither app in
// /proc), two real HeapApp fixtures, each pid 1 of its own pid and mount namespace, connected
// to the daemon's port through a shared directory (the k8s sidecar setup of
// docs/listen-mode.md). Each runtime is its own target: its own rule state, limits
// (`per_process`), EventPipe session and dump; one exiting leaves the other's session and rules
// alone.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int UniqueChain() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  return 10000 + static_cast<int>(rng() % 80000);
}

// Waits until at least `n` events of `kind` (and `rule`) are there; returns them.
std::vector<nlohmann::json> WaitEvents(const Daemon& d, const std::string& kind,
                                       const std::string& rule, size_t n,
                                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<nlohmann::json> evs;
  while (Clock::now() < deadline) {
    evs = EventsOf(d, kind, rule);
    if (evs.size() >= n) break;
    std::this_thread::sleep_for(100ms);
  }
  return evs;
}

size_t CountIn(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

bool WaitLogCount(const Daemon& d, const std::string& needle, size_t n,
                  std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (CountIn(d.log(), needle) >= n) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// A HeapApp that is pid 1 of its own pid and mount namespace, connected to the daemon's port
// through `shared` (bind-mounted at /mnt), driven through a FIFO on its stdin.
class NamespacedApp {
 public:
  NamespacedApp(const TempDir& dir, const std::string& shared, int chain) : chain_(chain) {
    fifo_ = dir / ("app-" + std::to_string(chain) + ".stdin");
    EXPECT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);
    SpawnOptions so;
    so.stdin_file = fifo_;
    const std::string script =
        "set -e; mount --bind '" + shared +
        "' /mnt; mount -t tmpfs tmpfs /tmp; export DOTNET_DiagnosticPorts=/mnt/clrdiag.sock; "
        "export CLRDIAG_TEST_MARK=app-" +
        std::to_string(chain) +
        "; "
        "exec '" +
        FixturePath("HeapApp") + "' 100 --stdin --chain " + std::to_string(chain);
    proc_ = Process::Spawn({"/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc",
                            "--kill-child", "/bin/sh", "-c", script},
                           so);
  }
  ~NamespacedApp() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return proc_ != nullptr && fd_ >= 0; }
  int chain() const { return chain_; }
  bool Do(const std::string& line, const std::string& reply) {
    std::string l = line + "\n";
    if (::write(fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) return false;
    return proc_->WaitForLine(reply, 60s).has_value();
  }
  Process& proc() { return *proc_; }
  void Kill() { proc_.reset(); }  // SIGKILL to unshare; --kill-child takes the app along

 private:
  int chain_;
  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<Process> proc_;
};

// Whether the dump `m` (catalog entry) holds the environment marker of the app `chain`.
bool HoldsMarker(const nlohmann::json& m, int chain) {
  return ReadFile(m["path"].get<std::string>())
             .find("CLRDIAG_TEST_MARK=app-" + std::to_string(chain)) != std::string::npos;
}

class RuntimeKeyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::geteuid(), 0u) << "this test creates namespaces (root)"; }
  // The daemon in its own pid namespace, with a port in `shared` and these rules.
  void StartDaemon(const std::string& rules) {
    ASSERT_EQ(::mkdir(shared_.c_str(), 0755), 0);
    const std::string config = dir_ / "clrdiagd.yaml";
    std::ofstream(config) << "automation: { poll_interval: 250ms }\n"
                          << "diagnostic_ports:\n  - path: " << shared_ << "/clrdiag.sock\n"
                          << "    dump_dir_in_app: /mnt\n"
                          << "collection_rules:\n"
                          << rules;
    Daemon::Options o;
    o.extra_args = {"--config", config};
    daemon_ = std::make_unique<Daemon>(o);
    daemon_->set_wrapper({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child"});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  void TearDown() override {
    if (daemon_) daemon_->Kill();  // unshare ignores SIGTERM; --kill-child ends the daemon
  }
  // The catalog entry of dump `id`.
  nlohmann::json Dump(const std::string& id) {
    RunResult r = daemon_->Client({"dumps", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& m : ParseJson(r.out)) {
      if (m["id"] == id) return m;
    }
    return nullptr;
  }

  TempDir dir_{"clrdiag-runtimekey"};
  std::string shared_ = dir_ / "shared";
  std::unique_ptr<Daemon> daemon_;
};

// A startup rule with a per-process action_count of 1 fires once for EACH of two runtimes
// that both advertise pid 1; the two dumps are of the two processes (each core file holds its
// own app's environment marker).
TEST_F(RuntimeKeyTest, StartupRuleFiresOncePerRuntimeWithTheSamePid) {
  const int a_chain = UniqueChain(), b_chain = a_chain + 1;
  StartDaemon(
      "  - name: start-each\n"
      "    filter: { process_name: HeapApp }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1, per_process: true }\n");
  NamespacedApp a(dir_, shared_, a_chain);
  ASSERT_TRUE(a.ok());
  NamespacedApp b(dir_, shared_, b_chain);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(WaitLogCount(*daemon_, "runtime pid 1 (cookie", 2, 60s)) << daemon_->log();
  ASSERT_TRUE(a.proc().WaitForLine("READY", 60s).has_value()) << daemon_->log();
  ASSERT_TRUE(b.proc().WaitForLine("READY", 60s).has_value()) << daemon_->log();

  auto collected = WaitEvents(*daemon_, "dump_collected", "start-each", 2, 120s);
  ASSERT_EQ(collected.size(), 2u) << daemon_->log();
  std::this_thread::sleep_for(1s);  // no third fire comes
  auto fired = EventsOf(*daemon_, "rule_fired", "start-each");
  ASSERT_EQ(fired.size(), 2u) << daemon_->log();
  EXPECT_EQ(fired[0]["pid"], 1);
  EXPECT_EQ(fired[1]["pid"], 1);
  EXPECT_FALSE(fired[0]["runtime_cookie"].get<std::string>().empty()) << fired[0].dump();
  EXPECT_NE(fired[0]["runtime_cookie"], fired[1]["runtime_cookie"]);
  EXPECT_EQ(EventsOf(*daemon_, "process_start").size(), 2u);
  EXPECT_TRUE(EventsOf(*daemon_, "collect_failed").empty()) << daemon_->log();
  EXPECT_TRUE(EventsOf(*daemon_, "rule_finished").empty()) << "per_process: the rule goes on";

  std::set<std::string> cookies, markers, shas;
  for (const auto& c : collected) {
    EXPECT_EQ(c["pid"], 1);
    cookies.insert(c["runtime_cookie"].get<std::string>());
    auto m = Dump(c["dump_id"].get<std::string>());
    ASSERT_FALSE(m.is_null());
    EXPECT_EQ(m["rule"], "start-each");
    EXPECT_EQ(m["pid"], 1);
    CoreFacts facts = InspectCore(m["path"]);
    EXPECT_TRUE(facts.ok) << facts.error;
    EXPECT_GT(facts.prstatus, 0);
    // The core file is that process's: its environment (on the main thread's stack) carries
    // its own marker and not the other app's. (The catalog's command line does not tell them
    // apart: over the port the runtime reports only its executable.)
    const std::string core = ReadFile(m["path"].get<std::string>());
    const bool has_a =
        core.find("CLRDIAG_TEST_MARK=app-" + std::to_string(a_chain)) != std::string::npos;
    const bool has_b =
        core.find("CLRDIAG_TEST_MARK=app-" + std::to_string(b_chain)) != std::string::npos;
    EXPECT_NE(has_a, has_b) << "dump " << m["id"] << " must hold exactly one app's marker";
    markers.insert(has_a ? "a" : has_b ? "b" : "none");
    shas.insert(m["sha256"].get<std::string>());
  }
  EXPECT_EQ(cookies.size(), 2u);
  EXPECT_EQ(shas.size(), 2u);
  EXPECT_EQ(markers, (std::set<std::string>{"a", "b"})) << "one dump of each app";

  // `ps` and `rules` tell them apart.
  RunResult ps = daemon_->Client({"ps", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  std::set<std::string> ps_cookies;
  for (const auto& p : ParseJson(ps.out)) {
    if (p["pid"] == 1) ps_cookies.insert(p["runtime_cookie"].get<std::string>());
  }
  EXPECT_EQ(ps_cookies, cookies);
  RunResult rules = daemon_->Client({"rules", "--json"});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  auto r = ParseJson(rules.out);
  ASSERT_TRUE(r.is_array() && r.size() == 1) << rules.out;
  EXPECT_EQ(r[0]["fires"], 2);
  EXPECT_EQ(r[0]["processes"], 2) << rules.out;
}

// An exception rule: one EventPipe session per runtime (both pid 1), a throw in one fires for
// that one only, once (per_process action_count 1); when it exits, the other's session and
// rule go on: its throw still fires, and its dump is collected.
TEST_F(RuntimeKeyTest, OneRuntimeExitingLeavesTheOthersSessionAndRules) {
  const int a_chain = UniqueChain(), b_chain = a_chain + 1;
  StartDaemon(
      "  - name: throw-each\n"
      "    filter: { process_name: HeapApp }\n"
      "    trigger: { type: exception, exception_type: System.NotSupportedException, message: "
      "\"from-*\" }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1, per_process: true }\n");
  NamespacedApp a(dir_, shared_, a_chain);
  ASSERT_TRUE(a.ok());
  NamespacedApp b(dir_, shared_, b_chain);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(a.proc().WaitForLine("READY", 60s).has_value()) << daemon_->log();
  ASSERT_TRUE(b.proc().WaitForLine("READY", 60s).has_value()) << daemon_->log();
  ASSERT_TRUE(WaitLogCount(*daemon_, "EventPipe session on pid 1 (runtime ", 2, 60s))
      << daemon_->log();

  // A throws: the rule fires for A, once.
  ASSERT_TRUE(a.Do("throw System.NotSupportedException from-a", "THREW"));
  auto fired = WaitEvents(*daemon_, "rule_fired", "throw-each", 1, 30s);
  ASSERT_EQ(fired.size(), 1u) << daemon_->log();
  const std::string a_cookie = fired[0]["runtime_cookie"].get<std::string>();
  EXPECT_NE(fired[0]["message"].get<std::string>().find("from-a"), std::string::npos);
  auto a_dump = WaitEvents(*daemon_, "dump_collected", "throw-each", 1, 90s);
  ASSERT_EQ(a_dump.size(), 1u) << daemon_->log();
  auto a_meta = Dump(a_dump[0]["dump_id"].get<std::string>());
  ASSERT_FALSE(a_meta.is_null());
  EXPECT_TRUE(HoldsMarker(a_meta, a_chain)) << "the dump is not A's";
  EXPECT_FALSE(HoldsMarker(a_meta, b_chain)) << "the dump is B's";
  ASSERT_TRUE(a.Do("throw System.NotSupportedException from-a-again", "THREW"));

  // A exits; B's session and rule are untouched.
  a.Kill();
  bool a_exited = false;
  for (int i = 0; i < 300 && !a_exited; ++i) {
    for (const auto& e : EventsOf(*daemon_, "process_exit")) {
      a_exited |= e["runtime_cookie"] == a_cookie;
    }
    if (!a_exited) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(a_exited) << daemon_->log();
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(b.Do("throw System.NotSupportedException from-b", "THREW"));
  fired = WaitEvents(*daemon_, "rule_fired", "throw-each", 2, 30s);
  ASSERT_EQ(fired.size(), 2u) << daemon_->log();
  EXPECT_EQ(fired[1]["pid"], 1);
  EXPECT_NE(fired[1]["runtime_cookie"], a_cookie);
  EXPECT_NE(fired[1]["message"].get<std::string>().find("from-b"), std::string::npos);
  auto dumps = WaitEvents(*daemon_, "dump_collected", "throw-each", 2, 90s);
  ASSERT_EQ(dumps.size(), 2u) << daemon_->log();
  auto b_meta = Dump(dumps[1]["dump_id"].get<std::string>());
  ASSERT_FALSE(b_meta.is_null());
  EXPECT_TRUE(HoldsMarker(b_meta, b_chain)) << "the dump is not B's";
  EXPECT_FALSE(HoldsMarker(b_meta, a_chain)) << "the dump is A's";
  // A's second throw fired nothing (its own action_count), nor was B's process ever re-started.
  EXPECT_EQ(EventsOf(*daemon_, "rule_fired", "throw-each").size(), 2u);
  EXPECT_EQ(EventsOf(*daemon_, "process_start").size(), 2u) << daemon_->log();
  EXPECT_EQ(CountIn(daemon_->log(), "EventPipe session on pid 1 (runtime "), 2u)
      << "B's session was re-opened\n"
      << daemon_->log();
}

}  // namespace
}  // namespace clrdiag::testing
