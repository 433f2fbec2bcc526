// A configuration that fails --check-config never starts the daemon: the real clrdiagd exits
// non-zero, never reports readiness, creates neither its socket nor its store, and names every
// offending key path.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

struct Attempt {
  RunResult check;     // clrdiagd --check-config --config FILE
  RunResult start;     // clrdiagd --config FILE
  std::string notify;  // what the daemon sent to NOTIFY_SOCKET
};

// Runs clrdiagd twice on `yaml` (socket and store inside `t`, via ${DIR}).
Attempt TryConfig(const TempDir& t, std::string yaml) {
  for (size_t at; (at = yaml.find("${DIR}")) != std::string::npos;) yaml.replace(at, 6, t / "");
  std::string cfg = t / "bad.yaml";
  std::ofstream(cfg) << yaml;
  Attempt a;
  a.check = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", cfg});
  // Readiness is reported through sd_notify, as under systemd (Type=notify).
  std::string notify = t / "notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  SpawnOptions so;
  so.env["NOTIFY_SOCKET"] = notify;
  a.start = RunCommand({BinDir() + "/clrdiagd", "--config", cfg}, so, std::chrono::seconds(20));
  pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, 0) == 1) {
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) a.notify.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return a;
}

TEST(BadConfigTest, NestedUnknownKeysNeverStartTheDaemon) {
  TempDir t;
  Attempt a = TryConfig(t,
                        "listen: [\"unix:${DIR}d.sock\"]\n"
                        "dump_dir: ${DIR}store\n"
                        "socket:\n  mode: \"0660\"\n  owner: root\n"
                        "analysis:\n  max_sessions: 2\n  idle_timeot: 5m\n");
  for (const RunResult* r : {&a.check, &a.start}) {
    EXPECT_EQ(r->exit_code, 1) << r->err;
    EXPECT_CONTAINS(r->err, "bad.yaml: socket.owner: unknown key");
    EXPECT_CONTAINS(r->err, "bad.yaml: analysis.idle_timeot: unknown key");
    // The message lists what is allowed there.
    EXPECT_CONTAINS(r->err, "idle_timeout");
  }
  EXPECT_EQ(a.notify, "") << "a daemon with a bad config reported readiness";
  EXPECT_FALSE(FileExists(t / "d.sock"));
  EXPECT_FALSE(FileExists(t / "store")) << "the store was created before the config was checked";
}

TEST(BadConfigTest, BadValuesNeverStartTheDaemon) {
  TempDir t;
  Attempt a = TryConfig(t,
                        "listen: [\"unix:${DIR}d.sock\"]\n"
                        "dump_dir: ${DIR}store\n"
                        "limits: {max_concurrent_collections: many}\n"
                        "analysis: {worker_memory_mib: 12}\n");
  for (const RunResult* r : {&a.check, &a.start}) {
    EXPECT_EQ(r->exit_code, 1) << r->err;
    EXPECT_CONTAINS(r->err, "limits.max_concurrent_collections: expected an integer");
    EXPECT_CONTAINS(r->err, "analysis.worker_memory_mib: expected an integer from 256");
  }
  EXPECT_EQ(a.notify, "");
  EXPECT_FALSE(FileExists(t / "d.sock"));
  EXPECT_FALSE(FileExists(t / "store"));
}

TEST(BadConfigTest, TcpWithoutTlsInTheConfigNeverStartsTheDaemon) {
  TempDir t;
  Attempt a = TryConfig(t,
                        "listen: [\"unix:${DIR}d.sock\", \"127.0.0.1:45124\"]\n"
                        "dump_dir: ${DIR}store\n");
  for (const RunResult* r : {&a.check, &a.start}) {
    EXPECT_EQ(r->exit_code, 1) << r->err;
    EXPECT_CONTAINS(r->err, "TLS");
  }
  EXPECT_EQ(a.notify, "");
  EXPECT_FALSE(FileExists(t / "d.sock"));
}

TEST(BadConfigTest, GoodConfigStartsAndReportsReadiness) {
  // The control case: the same procedure with a valid config does start (and is stopped).
  TempDir t;
  std::string yaml = "listen: [\"unix:" + (t / "d.sock") + "\"]\ndump_dir: " + (t / "store") + "\n";
  std::ofstream(t / "good.yaml") << yaml;
  RunResult check =
      RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", t / "good.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  SpawnOptions so;
  so.stderr_file = t / "log";
  auto d = Process::Spawn({BinDir() + "/clrdiagd", "--config", t / "good.yaml"}, so);
  for (int i = 0; i < 200 && !FileExists(t / "d.sock"); ++i) ::usleep(50000);
  EXPECT_TRUE(FileExists(t / "d.sock")) << ReadFile(t / "log");
  EXPECT_TRUE(FileExists(t / "store"));
  d->Signal(SIGTERM);
  EXPECT_EQ(d->Wait(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace clrdiag::testing
