// The `startup` trigger for runtimes that reach the daemon through one of its diagnostic ports
// (DOTNET_DiagnosticPorts, connect mode; issue 8: "a matching process appears (also through a
// listen port)"). Real daemon with a port and a rules configuration, real fixtures told to
// connect to it with `suspend` (the runtime waits until the daemon resumes it) and `nosuspend`,
// also from another pid and mount namespace (the k8s sidecar without a shared process
// namespace): the matching rule fires within two poll intervals of the runtime's connection
// and collects a dump; a connected runtime that does not match fires nothing.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

constexpr auto kInterval = 250ms;  // automation.poll_interval of the configurations below

// HeapApp's `--chain N` builds an N-object chain; a number no other test's process carries
// makes the command line unique (other tests' HeapApps use 100000..899999).
int UniqueChain() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  return 2000 + static_cast<int>(rng() % 7000);
}

// Watches the daemon's log for `needle` (polled every 5 ms). `seen`: when the test first saw
// it; `before`: the start of the last read that did not have it. The line was written in
// between.
struct LogSighting {
  Clock::time_point before, seen;
  bool found = false;
};
LogSighting WaitForLog(const Daemon& d, const std::string& needle, std::chrono::seconds timeout) {
  LogSighting s;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const auto t = Clock::now();
    if (d.log().find(needle) != std::string::npos) {
      s.seen = Clock::now();
      s.found = true;
      return s;
    }
    s.before = t;
    std::this_thread::sleep_for(5ms);
  }
  return s;
}

std::unique_ptr<Process> SpawnConnected(const std::vector<std::string>& argv,
                                        const std::string& ports) {
  SpawnOptions so;
  so.env["DOTNET_DiagnosticPorts"] = ports;
  return Process::Spawn(argv, so);
}

// Checks one rule's fire against the moment the runtime's connection was logged: within two
// poll intervals after it, never before; then the rule's dump is collected and stored.
void ExpectFiredOnConnect(const Daemon& d, const std::string& rule, const LogSighting& connected,
                          int64_t pid, const std::string& name) {
  auto fired = WaitEvent(d, "rule_fired", rule, 30s);
  ASSERT_FALSE(fired.is_null()) << d.log();
  EXPECT_EQ(fired["pid"], pid) << fired.dump();
  EXPECT_EQ(fired["process_name"], name) << fired.dump();
  const auto at = ParseTime(fired["time"].get<std::string>());
  const auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(at - connected.seen);
  const auto since_before =
      std::chrono::duration_cast<std::chrono::milliseconds>(at - connected.before);
  // The event time has millisecond resolution and is truncated: 1 ms of slack below.
  EXPECT_GE(since_before.count(), -1) << "fired before the runtime connected: " << fired.dump();
  EXPECT_LE(latency, kInterval * 2) << fired.dump() << "\n" << d.log();
  std::printf(
      "[ measured ] %s fired %lld ms after the test saw the runtime's connection logged "
      "(%lld ms after the last read without it; bound <= %lld)\n",
      rule.c_str(), static_cast<long long>(latency.count()),
      static_cast<long long>(since_before.count()),
      static_cast<long long>((kInterval * 2).count()));
  auto collected = WaitEvent(d, "dump_collected", rule, 90s);
  ASSERT_FALSE(collected.is_null()) << d.log();
  EXPECT_EQ(collected["pid"], pid);
  const std::string id = collected["dump_id"].get<std::string>();
  RunResult dumps = d.Client({"dumps", "--json"});
  ASSERT_EQ(dumps.exit_code, 0) << dumps.err;
  bool stored = false;
  for (const auto& m : ParseJson(dumps.out)) {
    if (m["id"] != id) continue;
    stored = true;
    EXPECT_EQ(m["rule"], rule);
    EXPECT_EQ(m["type"], "Mini");
    EXPECT_EQ(m["pid"], pid);
    CoreFacts core = InspectCore(m["path"]);
    EXPECT_TRUE(core.ok) << core.error;
    EXPECT_GT(core.prstatus, 0);
  }
  EXPECT_TRUE(stored) << dumps.out;
}

// Daemon and apps in the same pid namespace: the apps connect to the daemon's port, one with
// `suspend` (it runs no code until the daemon resumes it), one with `nosuspend`, and one that
// no rule matches.
TEST(AutomationListenTest, StartupFiresForSuspendAndNosuspendRuntimesOnTheDaemonsPort) {
  TempDir t;
  const std::string port = t / "diag.sock";
  const int suspend_tag = UniqueChain(), nosuspend_tag = suspend_tag + 1,
            other_tag = suspend_tag + 2;
  const std::string config = t / "clrdiagd.yaml";
  auto rule = [](const std::string& name, int tag) {
    return "  - name: " + name + "\n    filter: { command_line: \"*--chain " + std::to_string(tag) +
           "\" }\n    trigger: { type: startup }\n    action: { collect: { type: Mini } }\n" +
           "    limits: { action_count: 1 }\n";
  };
  std::ofstream(config) << "automation: { poll_interval: 250ms }\n"
                        << "diagnostic_ports:\n  - path: " << port << "\n"
                        << "collection_rules:\n"
                        << rule("start-suspend", suspend_tag)
                        << rule("start-nosuspend", nosuspend_tag);
  Daemon::Options o;
  o.extra_args = {"--config", config};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();

  const std::string heap = FixturePath("HeapApp");
  // Suspend (the default): the app waits until the daemon resumes it.
  auto suspended = SpawnConnected({heap, "--wait-forever", "--chain", std::to_string(suspend_tag)},
                                  port + ",connect,suspend");
  ASSERT_TRUE(suspended);
  const auto sus_connected =
      WaitForLog(d, "runtime pid " + std::to_string(suspended->pid()) + " (cookie", 60s);
  ASSERT_TRUE(sus_connected.found) << d.log();
  EXPECT_CONTAINS(d.log(), "resumed");
  ExpectFiredOnConnect(d, "start-suspend", sus_connected, suspended->pid(), "HeapApp");
  ASSERT_TRUE(suspended->WaitForLine("READY", 60s).has_value()) << "not resumed\n" << d.log();

  auto free_running =
      SpawnConnected({heap, "--wait-forever", "--chain", std::to_string(nosuspend_tag)},
                     port + ",connect,nosuspend");
  ASSERT_TRUE(free_running);
  const auto free_connected =
      WaitForLog(d, "runtime pid " + std::to_string(free_running->pid()) + " (cookie", 60s);
  ASSERT_TRUE(free_connected.found) << d.log();
  ExpectFiredOnConnect(d, "start-nosuspend", free_connected, free_running->pid(), "HeapApp");

  // A runtime on the same port that no rule's filter matches.
  auto other = SpawnConnected({heap, "--wait-forever", "--chain", std::to_string(other_tag)},
                              port + ",connect,nosuspend");
  ASSERT_TRUE(other);
  const auto other_connected =
      WaitForLog(d, "runtime pid " + std::to_string(other->pid()) + " (cookie", 60s);
  ASSERT_TRUE(other_connected.found) << d.log();
  std::this_thread::sleep_for(kInterval * 8);
  for (const auto& e : EventsOf(d, "rule_fired")) {
    EXPECT_NE(e["pid"], other->pid()) << "a rule fired for the non-matching runtime: " << e.dump();
  }
  EXPECT_EQ(EventsOf(d, "rule_fired").size(), 2u);
  EXPECT_EQ(EventsOf(d, "dump_collected").size(), 2u);
}

// The k8s sidecar without a shared process namespace: the daemon in its own pid namespace sees
// no app in /proc; the matching app (pid 1 of its own pid and mount namespace, the port's
// directory mounted at /mnt) is known only through its connection, and the rule's dump goes
// through the shared directory. A second app (host pid namespace, so it advertises a pid that
// differs from 1) connects to the same port and matches no rule.
TEST(AutomationListenTest, StartupFiresForARuntimeOnlyKnownThroughThePort) {
  ASSERT_EQ(::geteuid(), 0u) << "this test creates namespaces and needs root (CI is root)";
  TempDir t;
  const std::string shared = t / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  const std::string port = shared + "/clrdiag.sock";
  const std::string config = t / "clrdiagd.yaml";
  std::ofstream(config) << "automation: { poll_interval: 250ms }\n"
                        << "diagnostic_ports:\n  - path: " << port << "\n"
                        << "    dump_dir_in_app: /mnt\n"
                        << "collection_rules:\n"
                        << "  - name: sleep-start\n"
                        << "    filter: { process_name: SleepApp }\n"
                        << "    trigger: { type: startup }\n"
                        << "    action: { collect: { type: Mini } }\n";
  Daemon::Options o;
  o.extra_args = {"--config", config};
  Daemon d(o);
  d.set_wrapper({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child"});
  ASSERT_TRUE(d.Start()) << d.log();

  const std::string script = "set -e; mount --bind '" + shared +
                             "' /mnt; mount -t tmpfs tmpfs /tmp; "
                             "export DOTNET_DiagnosticPorts=/mnt/clrdiag.sock; exec '" +
                             FixturePath("SleepApp") + "'";
  auto ns = Process::Spawn({"/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc",
                            "--kill-child", "/bin/sh", "-c", script});
  ASSERT_TRUE(ns);
  const auto connected = WaitForLog(d, "runtime pid 1 (cookie", 60s);
  ASSERT_TRUE(connected.found) << d.log();
  ExpectFiredOnConnect(d, "sleep-start", connected, 1, "SleepApp");
  ASSERT_TRUE(ns->WaitForLine("READY", 60s).has_value()) << d.log();
  EXPECT_TRUE(FindFiles(shared, "dump").empty()) << "the private dump directory was left behind";

  auto other = SpawnConnected(
      {FixturePath("HeapApp"), "--wait-forever", "--chain", std::to_string(UniqueChain())},
      port + ",connect,nosuspend");
  ASSERT_TRUE(other);
  ASSERT_TRUE(WaitForLog(d, "runtime pid " + std::to_string(other->pid()) + " (cookie", 60s).found)
      << d.log();
  std::this_thread::sleep_for(kInterval * 8);
  auto fired = EventsOf(d, "rule_fired");
  ASSERT_EQ(fired.size(), 1u) << d.log();
  EXPECT_EQ(fired[0]["pid"], 1);
  std::set<std::string> started;
  for (const auto& e : EventsOf(d, "process_start")) {
    started.insert(e["process_name"].get<std::string>());
  }
  EXPECT_EQ(started, (std::set<std::string>{"SleepApp", "HeapApp"}));
  ns.reset();  // SIGKILL; --kill-child takes the app along
  d.Kill();    // unshare ignores SIGTERM; --kill-child ends the daemon
}

}  // namespace
}  // namespace clrdiag::testing
