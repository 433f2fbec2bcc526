// Listen mode: real .NET runtimes started with DOTNET_DiagnosticPorts=<the daemon's port>
// connect to the daemon, wait suspended at start-up until it resumes them, appear in `ps`
// marked with the port, and are collected and analyzed through their own connections, also
// from another pid and mount namespace through a shared dump directory.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Starts fixture `name` told to connect to `port` (and to wait for a resume: the default).
// Does not wait for READY: a suspended runtime prints it only once resumed.
std::unique_ptr<Process> SpawnConnected(const std::string& name, const std::string& port,
                                        std::vector<std::string> args = {}) {
  std::vector<std::string> argv = {FixturePath(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions so;
  so.env["DOTNET_DiagnosticPorts"] = port;
  return Process::Spawn(argv, so);
}

// The `ps --json` entry with this pid (null if none).
nlohmann::json PsEntry(const Daemon& d, pid_t pid) {
  RunResult ps = d.Client({"ps", "--json"});
  for (const auto& p : ParseJson(ps.out)) {
    if (p["pid"] == pid) return p;
  }
  return nullptr;
}

// Polls `ps --json` until the entry of `pid` satisfies `pred` (or, with null, is gone).
nlohmann::json WaitForPs(const Daemon& d, pid_t pid,
                         const std::function<bool(const nlohmann::json&)>& pred,
                         milliseconds timeout = seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = PsEntry(d, pid);
    if (pred(last)) return last;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return last;
}

Daemon::Options Opts(std::vector<std::string> args) {
  Daemon::Options o;
  o.extra_args = std::move(args);
  return o;
}

bool ListedThrough(const nlohmann::json& p, const std::string& port) {
  return !p.is_null() && p["connection"] == "listen:" + port &&
         !p["runtime_version"].get<std::string>().empty();
}

bool WaitForLog(const Daemon& d, const std::string& needle, milliseconds timeout = seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (d.log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// Collects and checks the dump is a core with one NT_PRSTATUS per thread of `host_pid`.
nlohmann::json CollectAndCheck(const Daemon& d, const std::string& pid, const std::string& type,
                               pid_t host_pid) {
  // The runtime may start or end a thread (tiered compilation, the finalizer) while the dump is
  // taken: the count must lie between the counts before and after.
  const int before = ThreadCount(host_pid);
  RunResult c = d.Client({"collect", "-p", pid, "--type", type, "--json"});
  const int after = ThreadCount(host_pid);
  EXPECT_EQ(c.exit_code, 0) << c.err << "\n" << d.log();
  auto j = ParseJson(c.out);
  if (j.is_discarded() || !j.contains("path")) return nullptr;
  CoreFacts core = InspectCore(j["path"]);
  EXPECT_TRUE(core.ok) << core.error;
  EXPECT_GE(static_cast<int>(core.prstatus), std::min(before, after)) << type;
  EXPECT_LE(static_cast<int>(core.prstatus), std::max(before, after)) << type;
  EXPECT_GT(core.prstatus, 0) << type;
  return j;
}

TEST(ListenTest, DaemonFirstThenAppIsResumedListedCollectedAnalyzedAndDropsOutOnExit) {
  TempDir t;
  const std::string port = t / "diag.sock";
  Daemon d(Opts({"--diagnostic-port", port}));
  ASSERT_TRUE(d.Start()) << d.log();
  EXPECT_EQ(ModeOf(port), 0666u);

  auto app = SpawnConnected("SleepApp", port);
  ASSERT_TRUE(app);
  ASSERT_TRUE(app->WaitForLine("READY", seconds(30)).has_value()) << d.log();
  auto p = WaitForPs(d, app->pid(), [&](const auto& e) { return ListedThrough(e, port); });
  ASSERT_TRUE(ListedThrough(p, port)) << p << d.log();
  EXPECT_EQ(p["name"], "SleepApp");
  EXPECT_FALSE(p["listen_only"].get<bool>());  // the same runtime is in our /proc
  EXPECT_TRUE(p["resume_sent"].get<bool>());
  EXPECT_EQ(p["runtime_cookie"].get<std::string>().size(), 32u);
  EXPECT_TRUE(WaitForLog(d, "runtime pid " + std::to_string(app->pid())));

  // The text form keeps dotnet-dump's four columns and appends the version and the marker.
  RunResult ps = d.Client({"ps"});
  ASSERT_EQ(ps.exit_code, 0);
  std::string row;
  std::istringstream lines(ps.out);
  for (std::string line; std::getline(lines, line);) {
    // The pid column is right-aligned to the longest pid listed (other tests' processes too).
    const std::string want = std::to_string(app->pid()) + "  SleepApp";
    const size_t start = line.find_first_not_of(' ');
    if (start != std::string::npos && line.compare(start, want.size(), want) == 0) row = line;
  }
  EXPECT_CONTAINS(row, "  [listen:" + port + "]") << ps.out;

  auto mini = CollectAndCheck(d, std::to_string(app->pid()), "Mini", app->pid());
  ASSERT_FALSE(mini.is_null());
  EXPECT_EQ(mini["pid"], app->pid());
  EXPECT_TRUE(mini["runtime_files_stored"].get<bool>());
  EXPECT_CONTAINS(d.log(), "through listen port " + port);
  RunResult a = d.Client({"analyze", mini["id"], "-c", "clrthreads", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_CONTAINS(a.out, "ThreadCount:");

  app->Signal(SIGTERM);
  app->Wait(seconds(10));
  auto gone = WaitForPs(d, app->pid(), [](const auto& e) { return e.is_null(); });
  EXPECT_TRUE(gone.is_null()) << gone;
  EXPECT_TRUE(WaitForLog(d, "runtime pid " + std::to_string(app->pid()) + " (cookie "));
  EXPECT_TRUE(WaitForLog(d, ") disconnected"));
}

TEST(ListenTest, AppFirstWaitsSuspendedUntilTheDaemonStartsAndResumesIt) {
  TempDir t;
  const std::string port = t / "diag.sock";
  auto app = SpawnConnected("SleepApp", port);  // nothing listens yet: the runtime retries
  ASSERT_TRUE(app);
  // SleepApp prints READY within a second when nothing holds it.
  EXPECT_FALSE(app->WaitForLine("READY", seconds(3)).has_value());
  ASSERT_TRUE(app->Running());

  Daemon d(Opts({"--diagnostic-port", port}));
  ASSERT_TRUE(d.Start()) << d.log();
  ASSERT_TRUE(app->WaitForLine("READY", seconds(30)).has_value()) << d.log();
  auto p = WaitForPs(d, app->pid(), [&](const auto& e) { return ListedThrough(e, port); });
  ASSERT_TRUE(ListedThrough(p, port)) << p;
  EXPECT_TRUE(p["resume_sent"].get<bool>());
  CollectAndCheck(d, std::to_string(app->pid()), "Full", app->pid());
}

TEST(ListenTest, ResumeFalseLeavesTheRuntimeSuspended) {
  TempDir t;
  const std::string port = t / "diag.sock";
  const std::string config = t / "listen.yaml";
  std::ofstream(config) << "diagnostic_ports:\n  - path: " << port << "\n    resume: false\n";
  Daemon d(Opts({"--config", config}));
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = SpawnConnected("SleepApp", port);
  ASSERT_TRUE(app);
  // Listed (ProcessInfo works while the runtime waits), marked as not resumed.
  auto p = WaitForPs(d, app->pid(), [&](const auto& e) { return ListedThrough(e, port); });
  ASSERT_TRUE(ListedThrough(p, port)) << p << d.log();
  EXPECT_FALSE(p["resume_sent"].get<bool>());
  RunResult ps = d.Client({"ps"});
  EXPECT_CONTAINS(ps.out, "[listen:" + port + " not resumed]");
  EXPECT_FALSE(app->WaitForLine("READY", seconds(3)).has_value());
  EXPECT_TRUE(app->Running());
}

TEST(ListenTest, PeersThatAreNotRuntimesAreDroppedWithALogLineAndTheDaemonKeepsServing) {
  TempDir t;
  const std::string port = t / "diag.sock";
  Daemon d(Opts({"--diagnostic-port", port}));
  ASSERT_TRUE(d.Start()) << d.log();
  auto connect = [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    port.copy(addr.sun_path, port.size());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  };
  // A fake runtime whose advertise has the wrong magic, one that hangs up half-way, and one
  // that says nothing.
  int garbage = connect();
  std::string bytes = "DOTNET_IPC_V1" + std::string(21, '\x7f');
  ASSERT_EQ(::write(garbage, bytes.data(), bytes.size()), 34);
  int half = connect();
  ASSERT_EQ(::write(half, "ADVR_V1", 8), 8);
  ::close(half);
  int silent = connect();
  EXPECT_TRUE(WaitForLog(d,
                         "dropped a connection that is not a .NET runtime: advertise does "
                         "not start with the magic"))
      << d.log();
  EXPECT_TRUE(WaitForLog(d, "closed after 8 of the advertise's 34 bytes")) << d.log();
  EXPECT_TRUE(WaitForLog(d, "no advertise within")) << d.log();
  ::close(garbage);
  ::close(silent);

  RunResult ps = d.Client({"ps", "--json"});
  EXPECT_EQ(ps.exit_code, 0);
  auto app = SpawnConnected("SleepApp", port);
  ASSERT_TRUE(app->WaitForLine("READY", seconds(30)).has_value()) << d.log();
  auto p = WaitForPs(d, app->pid(), [&](const auto& e) { return ListedThrough(e, port); });
  EXPECT_TRUE(ListedThrough(p, port)) << p;
}

TEST(ListenTest, TwoRuntimesOnOnePortAreEachCollected) {
  TempDir t;
  const std::string port = t / "diag.sock";
  Daemon d(Opts({"--diagnostic-port", port}));
  ASSERT_TRUE(d.Start()) << d.log();
  auto sleep = SpawnConnected("SleepApp", port);
  auto heap = SpawnConnected("HeapApp", port, {"100"});
  ASSERT_TRUE(sleep->WaitForLine("READY", seconds(30)).has_value()) << d.log();
  ASSERT_TRUE(heap->WaitForLine("READY", seconds(30)).has_value()) << d.log();
  for (auto* app : {sleep.get(), heap.get()}) {
    auto p = WaitForPs(d, app->pid(), [&](const auto& e) { return ListedThrough(e, port); });
    ASSERT_TRUE(ListedThrough(p, port)) << p;
  }
  // Both at once: each goes over its own runtime's connections.
  nlohmann::json js, jh;
  std::thread other(
      [&] { js = CollectAndCheck(d, std::to_string(sleep->pid()), "Mini", sleep->pid()); });
  jh = CollectAndCheck(d, std::to_string(heap->pid()), "Mini", heap->pid());
  other.join();
  ASSERT_FALSE(js.is_null());
  ASSERT_FALSE(jh.is_null());
  EXPECT_EQ(js["process_name"], "SleepApp");
  EXPECT_EQ(jh["process_name"], "HeapApp");
  EXPECT_NE(js["id"], jh["id"]);
}

// The host pid of the only child of `parent`.
pid_t ChildOf(pid_t parent) {
  for (int i = 0; i < 200; ++i) {
    std::string s = ReadFile("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                             "/children");
    std::istringstream in(s);
    pid_t child = 0;
    if (in >> child) return child;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return 0;
}

// A fixture as pid 1 of its own pid namespace, in its own mount namespace with a private /tmp
// and `shared` mounted at /mnt (an emptyDir at another path in the app's container), told to
// connect to /mnt/clrdiag.sock.
std::unique_ptr<Process> SpawnInNamespaces(const std::string& name, const std::string& shared,
                                           const std::string& args = "") {
  std::string script = "set -e; mount --bind '" + shared + "' /mnt; mount -t tmpfs tmpfs /tmp; " +
                       "export DOTNET_DiagnosticPorts=/mnt/clrdiag.sock; exec '" +
                       FixturePath(name) + "' " + args;
  return Process::Spawn({"/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc",
                         "--kill-child", "/bin/sh", "-c", script});
}

// A daemon in its own pid namespace (it sees none of the apps in /proc) with one diagnostic
// port in `shared`, which the apps see at /mnt.
std::unique_ptr<Daemon> StartDaemonInOwnPidNamespace(const TempDir& t, const std::string& shared) {
  const std::string config = t / "listen.yaml";
  std::ofstream(config) << "diagnostic_ports:\n  - path: " << shared << "/clrdiag.sock\n"
                        << "    dump_dir_in_app: /mnt\n";
  auto d = std::make_unique<Daemon>(Opts({"--config", config}));
  d->set_wrapper({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "--kill-child"});
  if (!d->Start()) {
    ADD_FAILURE() << d->log();
    return nullptr;
  }
  return d;
}

// The k8s sidecar without a shared process namespace: daemon and app in separate pid
// namespaces, sharing only a directory that each mounts at its own path. The daemon sees
// neither the app's /proc entry nor its filesystem; the dump goes through the shared directory.
TEST(ListenTest, AppInAnotherPidAndMountNamespaceIsCollectedThroughTheSharedDirectory) {
  ASSERT_EQ(::geteuid(), 0u) << "this test creates namespaces and needs root (CI is root)";
  TempDir t;
  const std::string shared = t / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  auto daemon = StartDaemonInOwnPidNamespace(t, shared);
  ASSERT_TRUE(daemon);
  Daemon& d = *daemon;

  auto ns = SpawnInNamespaces("SleepApp", shared);
  ASSERT_TRUE(ns);
  auto ready = ns->WaitForLine("READY", seconds(60));
  ASSERT_TRUE(ready.has_value()) << d.log();
  EXPECT_EQ(*ready, "READY 1");
  pid_t host_pid = ChildOf(ns->pid());
  ASSERT_GT(host_pid, 0);

  auto p = WaitForPs(d, 1, [&](const auto& e) {
    return ListedThrough(e, shared + "/clrdiag.sock") && e["name"] == "SleepApp";
  });
  ASSERT_FALSE(p.is_null()) << d.log();
  EXPECT_TRUE(p["listen_only"].get<bool>());
  EXPECT_EQ(p["executable"], FixturePath("SleepApp"));
  EXPECT_EQ(p["diagnostic_socket"], "");
  EXPECT_CONTAINS(d.Client({"ps"}).out, "[listen:" + shared + "/clrdiag.sock ns-pid]");

  auto heap = CollectAndCheck(d, "1", "Heap", host_pid);
  ASSERT_FALSE(heap.is_null());
  EXPECT_EQ(heap["pid"], 1);
  EXPECT_EQ(heap["process_name"], "SleepApp");
  EXPECT_FALSE(heap["runtime_files_stored"].get<bool>());  // the app's files are out of reach
  EXPECT_EQ(heap["coreclr_build_id"].get<std::string>().size(), 40u);  // read from the dump
  // The private directory in the shared one is gone again.
  EXPECT_TRUE(FindFiles(shared, "dump").empty());
  RunResult a = d.Client({"analyze", heap["id"], "-c", "clrthreads", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_CONTAINS(a.out, "ThreadCount:");

  ns.reset();  // SIGKILL; --kill-child takes the app along
  auto gone = WaitForPs(d, 1, [](const auto& e) { return e.is_null(); });
  EXPECT_TRUE(gone.is_null()) << gone;
  d.Kill();  // unshare ignores SIGTERM; --kill-child ends the daemon
}

TEST(ListenTest, TwoRuntimesWithTheSamePidArePickedByRuntimeCookie) {
  ASSERT_EQ(::geteuid(), 0u) << "this test creates namespaces and needs root (CI is root)";
  TempDir t;
  const std::string shared = t / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  auto daemon = StartDaemonInOwnPidNamespace(t, shared);
  ASSERT_TRUE(daemon);
  Daemon& d = *daemon;
  auto sleep = SpawnInNamespaces("SleepApp", shared);
  auto heap = SpawnInNamespaces("HeapApp", shared, "100");
  ASSERT_EQ(sleep->WaitForLine("READY", seconds(60)), "READY 1");
  ASSERT_EQ(heap->WaitForLine("READY", seconds(60)), "READY 1");

  // Both advertise pid 1.
  std::string heap_cookie;
  for (int i = 0; i < 100 && heap_cookie.empty(); ++i) {
    int ones = 0;
    std::string cookie;
    for (const auto& p : ParseJson(d.Client({"ps", "--json"}).out)) {
      if (p["pid"] != 1 || !p["listen_only"].get<bool>()) continue;
      ++ones;
      if (p["name"] == "HeapApp") cookie = p["runtime_cookie"];
    }
    if (ones == 2) heap_cookie = cookie;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(heap_cookie.size(), 32u) << d.Client({"ps", "--json"}).out;

  RunResult ambiguous = d.Client({"collect", "-p", "1", "--type", "Mini"});
  EXPECT_EQ(ambiguous.exit_code, 7) << ambiguous.err;
  EXPECT_CONTAINS(ambiguous.err, "pid 1 is ambiguous");
  EXPECT_CONTAINS(ambiguous.err, heap_cookie);
  RunResult wrong = d.Client({"collect", "-p", "1", "--runtime-cookie", "ffff0000ffff"});
  EXPECT_EQ(wrong.exit_code, 4) << wrong.err;
  RunResult bad = d.Client({"collect", "-p", "1", "--runtime-cookie", "xyz"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_CONTAINS(bad.err, "expected up to 32 hex digits");

  RunResult c = d.Client({"collect", "-p", "1", "--runtime-cookie", heap_cookie.substr(0, 8),
                          "--type", "Mini", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto j = ParseJson(c.out);
  EXPECT_EQ(j["process_name"], "HeapApp");
  EXPECT_TRUE(InspectCore(j["path"]).ok);
  d.Kill();
}

TEST(ListenTest, BadDiagnosticPortFlagsAreRefused) {
  RunResult rel =
      RunCommand({BinDir() + "/clrdiagd", "--diagnostic-port", "diag.sock", "--check-config"});
  EXPECT_EQ(rel.exit_code, 1);
  EXPECT_CONTAINS(rel.err, "--diagnostic-port: 'diag.sock': a diagnostic port must be an absolute");
  TempDir t;
  std::string file = t / "plain";
  std::ofstream(file) << "x";
  Daemon d(Opts({"--diagnostic-port", file}));
  EXPECT_FALSE(d.Start(seconds(10)));
  EXPECT_CONTAINS(d.log(), "exists and is not a socket");
}

}  // namespace
}  // namespace clrdiag::testing
