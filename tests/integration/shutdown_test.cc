// Shutdown and limits while collections are in flight.
#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

bool WaitForLog(Daemon& d, const std::string& text, int ms = 10000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (d.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ShutdownTest, SigtermLetsAnInFlightCollectionFinish) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"1000", "300"});
  ASSERT_TRUE(app);
  std::string pid = std::to_string(app->pid());
  TempDir t;
  SpawnOptions so;
  so.stdout_file = t / "out";
  so.stderr_file = t / "err";
  auto client = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", d.server(), "collect", "-p", pid, "--json"}, so);
  ASSERT_TRUE(WaitForLog(d, "collect: Full dump of pid " + pid));
  ASSERT_TRUE(d.process()->Signal(SIGTERM));
  EXPECT_EQ(client->Wait(std::chrono::seconds(120)), 0) << ReadFile(t / "err");
  EXPECT_EQ(d.process()->Wait(std::chrono::seconds(60)), 0) << d.log();
  EXPECT_FALSE(FileExists(d.socket_path()));
  auto result = ParseJson(ReadFile(t / "out"));
  ASSERT_TRUE(result.is_object());
  EXPECT_TRUE(FileExists(result["path"].get<std::string>()));
  // The finished dump is in the catalog after a restart, and nothing partial is.
  ASSERT_TRUE(d.Start()) << d.log();
  RunResult list = d.Client({"dumps", "--json"});
  ASSERT_EQ(ParseJson(list.out).size(), 1u) << list.out;
  EXPECT_TRUE(FindFiles(d.dump_dir(), ".partial").empty());
}

TEST(LimitsTest, GlobalCollectionLimitFromConfig) {
  TempDir t;
  std::string cfg = t / "clrdiagd.yaml";
  std::ofstream(cfg) << "limits:\n  max_concurrent_collections: 1\n";
  Daemon::Options o;
  o.extra_args = {"--config", cfg};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();
  auto big = StartFixture("HeapApp", {"1000", "300"});
  auto small = StartFixture("SleepApp");
  ASSERT_TRUE(big && small);
  SpawnOptions so;
  so.stdout_file = t / "out";
  so.stderr_file = t / "err";
  auto first = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", d.server(), "collect", "-p", std::to_string(big->pid())},
      so);
  ASSERT_TRUE(WaitForLog(d, "collect: Full dump of pid " + std::to_string(big->pid())));
  RunResult second = d.Client({"collect", "-p", std::to_string(small->pid())});
  EXPECT_EQ(second.exit_code, 6) << second.err;
  EXPECT_CONTAINS(second.err, "max_concurrent_collections=1");
  EXPECT_EQ(first->Wait(std::chrono::seconds(120)), 0) << ReadFile(t / "err");
  // Once the first is done, the second goes through.
  EXPECT_EQ(d.Client({"collect", "-p", std::to_string(small->pid()), "--type", "Mini"}).exit_code,
            0);
}

}  // namespace
}  // namespace clrdiag::testing
