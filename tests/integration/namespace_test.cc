// A .NET process in its own mount and pid namespaces, with a private /tmp (as in a
// container): the daemon finds it through /proc/<pid>/root and its namespace pid, and
// collects from it.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

// The host pid of the only child of `parent`.
pid_t ChildOf(pid_t parent) {
  for (int i = 0; i < 200; ++i) {
    std::string s = ReadFile("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                             "/children");
    std::istringstream in(s);
    pid_t child = 0;
    if (in >> child) return child;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

TEST(NamespaceTest, ProcessInOtherMountAndPidNamespaceIsListedAndCollected) {
  ASSERT_EQ(::geteuid(), 0u) << "this test creates namespaces and needs root (CI is root)";
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  // Inside: a private tmpfs on /tmp (the runtime's socket lives there, invisible to the host's
  // /tmp), and the app copied onto another private tmpfs so it does not depend on host paths.
  std::string script =
      "set -e; mount -t tmpfs tmpfs /mnt; cp -a '" + FixturesDir() +
      "/SleepApp' /mnt/app; mount -t tmpfs tmpfs /tmp; exec /mnt/app/SleepApp inside";
  auto ns = Process::Spawn({"/usr/bin/unshare", "--mount", "--pid", "--fork", "--mount-proc",
                            "--kill-child", "/bin/sh", "-c", script});
  ASSERT_TRUE(ns);
  auto ready = ns->WaitForLine("READY", std::chrono::seconds(60));
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(*ready, "READY 1");  // pid 1 of its own namespace
  pid_t host_pid = ChildOf(ns->pid());
  ASSERT_GT(host_pid, 0);

  RunResult ps = d.Client({"ps", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  bool found = false;
  for (const auto& p : ParseJson(ps.out)) {
    if (p["pid"] != host_pid) continue;
    found = true;
    EXPECT_EQ(p["namespace_pid"], 1);
    EXPECT_EQ(p["name"], "SleepApp");
    EXPECT_EQ(p["executable"], "/mnt/app/SleepApp");
    EXPECT_EQ(p["command_line"], "/mnt/app/SleepApp inside");
    EXPECT_EQ(p["runtime_version"].get<std::string>().substr(0, 3), "10.");
    EXPECT_CONTAINS(p["diagnostic_socket"].get<std::string>(),
                    "/proc/" + std::to_string(host_pid) + "/root/tmp/dotnet-diagnostic-1-");
  }
  ASSERT_TRUE(found) << ps.out;

  const int threads_before = ThreadCount(host_pid);
  RunResult c = d.Client({"collect", "-p", std::to_string(host_pid), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto j = ParseJson(c.out);
  EXPECT_EQ(j["pid"], host_pid);
  EXPECT_EQ(j["namespace_pid"], 1);
  CoreFacts core = InspectCore(j["path"]);
  ASSERT_TRUE(core.ok) << core.error;
  // The runtime's own threads may come or go while the dump is taken (seen under ASan).
  const int threads_after = ThreadCount(host_pid);
  EXPECT_GE(core.prstatus, std::min(threads_before, threads_after));
  EXPECT_LE(core.prstatus, std::max(threads_before, threads_after));
  EXPECT_TRUE(j["runtime_files_stored"].get<bool>());
}

}  // namespace
}  // namespace clrdiag::testing
