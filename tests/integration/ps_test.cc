// `clrdiag ps` against real .NET processes.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

TEST(PsTest, ListsRunningDotnetProcessesWithRuntimeFacts) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto a = StartFixture("SleepApp", {"alpha"});
  auto b = StartFixture("HeapApp", {"100"});
  ASSERT_TRUE(a && b);

  RunResult r = d.Client({"ps"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Text: one row per process, pid first, then name, executable, arguments, runtime version.
  bool found_a = false, found_b = false;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream cols(line);
    std::string pid, name, exe;
    cols >> pid >> name >> exe;
    if (pid == std::to_string(a->pid())) {
      found_a = true;
      EXPECT_EQ(name, "SleepApp");
      EXPECT_EQ(exe, FixturesDir() + "/SleepApp/SleepApp");
      EXPECT_CONTAINS(line, " alpha ");
      EXPECT_CONTAINS(line, "10.0.");
    }
    if (pid == std::to_string(b->pid())) found_b = true;
  }
  EXPECT_TRUE(found_a) << r.out;
  EXPECT_TRUE(found_b) << r.out;

  RunResult j = d.Client({"ps", "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto arr = ParseJson(j.out);
  ASSERT_TRUE(arr.is_array()) << j.out;
  bool json_found = false;
  for (const auto& p : arr) {
    if (p["pid"] != b->pid()) continue;
    json_found = true;
    EXPECT_EQ(p["name"], "HeapApp");
    EXPECT_EQ(p["namespace_pid"], b->pid());
    EXPECT_EQ(p["command_line"], FixturesDir() + "/HeapApp/HeapApp 100");
    EXPECT_EQ(p["runtime_version"].get<std::string>().substr(0, 3), "10.");
    EXPECT_EQ(p["os"], "Linux");
    EXPECT_EQ(p["arch"], "x64");
    EXPECT_EQ(p["runtime_identifier"], "linux-x64");
    EXPECT_EQ(p["entry_assembly"], "HeapApp");
    EXPECT_EQ(p["user"], "root");
  }
  EXPECT_TRUE(json_found) << j.out;
}

TEST(PsTest, ExitedProcessesAndStaleSocketsAreNotListed) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  pid_t gone = app->pid();
  app->Signal(SIGKILL);  // leaves its socket file behind
  app->Wait(std::chrono::seconds(10));

  // A live process that is not .NET, with a socket file named as if it were (its previous
  // owner died): connecting is refused, so it must not be listed.
  auto sleeper = Process::Spawn({"/bin/sleep", "300"});
  ASSERT_TRUE(sleeper);
  std::string fake = "/tmp/dotnet-diagnostic-" + std::to_string(sleeper->pid()) + "-1-socket";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, fake.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // bound, never listening: a stale socket

  RunResult r = d.Client({"ps", "--json"});
  ::unlink(fake.c_str());
  RemoveDiagnosticSockets("/tmp", gone);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto arr = ParseJson(r.out);
  ASSERT_TRUE(arr.is_array());
  for (const auto& p : arr) {
    EXPECT_NE(p["pid"], gone);
    EXPECT_NE(p["pid"], sleeper->pid()) << "stale socket listed";
  }
}

TEST(PsTest, ProcessWithDiagnosticsDisabledIsNotListed) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  SpawnOptions so;
  so.env["DOTNET_EnableDiagnostics"] = "0";
  auto app = StartFixture("SleepApp", {}, so);
  ASSERT_TRUE(app);
  RunResult r = d.Client({"ps", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& p : ParseJson(r.out)) EXPECT_NE(p["pid"], app->pid());
}

TEST(PsTest, ProcessWithOwnTmpdirIsFound) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  TempDir own_tmp("clrdiag-tmpdir");
  SpawnOptions so;
  so.env["TMPDIR"] = own_tmp.path();  // no trailing slash, as users write it
  auto app = StartFixture("SleepApp", {}, so);
  ASSERT_TRUE(app);
  RunResult r = d.Client({"ps", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool found = false;
  for (const auto& p : ParseJson(r.out)) {
    if (p["pid"] == app->pid()) {
      found = true;
      EXPECT_CONTAINS(p["diagnostic_socket"].get<std::string>(),
                      own_tmp.path() + "/dotnet-diagnostic-");
    }
  }
  EXPECT_TRUE(found) << r.out;
}

}  // namespace
}  // namespace clrdiag::testing
