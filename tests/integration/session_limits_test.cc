// Analysis sessions under the daemon's `analysis` limits: how many at once (all, per user),
// idle timeout, command timeout, output cap; `clrdiag sessions` lists and closes; the worker's
// isolation (no inherited fds, capabilities, rlimits).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

// An interactive `clrdiag analyze` whose stdin is a FIFO the test writes commands into.
class LiveSession : public InteractiveClient {
 public:
  LiveSession(const Daemon& d, const std::string& dump, const TempDir& dir, const std::string& name)
      : InteractiveClient({BinDir() + "/clrdiag", "--server", d.server(), "analyze", dump},
                          dir.path(), name) {}
};

class SessionLimitsTest : public ::testing::Test {
 protected:
  // A daemon with the given `analysis:` settings and a Heap dump of HeapApp in its catalog.
  void StartWith(const std::string& analysis_yaml,
                 const std::vector<std::string>& app_args = {"2000"}) {
    std::ofstream(dir_ / "clrdiagd.yaml") << "analysis:\n" << analysis_yaml;
    daemon_ = std::make_unique<Daemon>(Daemon::Options{"", {"--config", dir_ / "clrdiagd.yaml"}});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    auto app = StartFixture("HeapApp", app_args);
    ASSERT_TRUE(app);
    RunResult c =
        daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    id_ = ParseJson(c.out)["id"];
  }
  nlohmann::json Sessions() { return ParseJson(daemon_->Client({"sessions", "--json"}).out); }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::string id_;
};

TEST_F(SessionLimitsTest, PerUserLimitListAndClose) {
  StartWith("  max_sessions_per_user: 1\n");
  LiveSession a(*daemon_, id_, dir_, "a");
  a.Send("eeversion");
  ASSERT_TRUE(a.WaitOut("Workstation mode", 20s)) << a.err();

  // A second session of the same user is refused as busy, naming the limit.
  RunResult second = daemon_->Client({"analyze", id_, "-c", "exit"});
  EXPECT_EQ(second.exit_code, 6) << second.err;
  EXPECT_CONTAINS(second.err, "analysis.max_sessions_per_user");

  // `sessions` shows the open one.
  nlohmann::json list = Sessions();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["dump"], id_);
  EXPECT_EQ(list[0]["uid"], 0);
  EXPECT_EQ(list[0]["commands"], 1);
  EXPECT_GT(list[0]["worker_pid"].get<int>(), 0);
  RunResult table = daemon_->Client({"sessions"});
  EXPECT_CONTAINS(table.out, list[0]["id"].get<std::string>() + " ");

  // Closing it ends the client with the reason; the slot is free again.
  RunResult bad = daemon_->Client({"sessions", "--close", "s999"});
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  RunResult close = daemon_->Client({"sessions", "--close", list[0]["id"]});
  EXPECT_EQ(close.exit_code, 0) << close.err;
  auto rc = a.proc().Wait(10s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 1);
  EXPECT_CONTAINS(a.err(), "the session was closed");
  EXPECT_TRUE(Sessions().empty());
  RunResult third = daemon_->Client({"analyze", id_, "-c", "eeversion", "-c", "exit"});
  EXPECT_EQ(third.exit_code, 0) << third.err;
}

TEST_F(SessionLimitsTest, IdleSessionIsClosedAndItsWorkerReaped) {
  StartWith("  idle_timeout: 2s\n");
  LiveSession a(*daemon_, id_, dir_, "a");
  a.Send("eeversion");
  ASSERT_TRUE(a.WaitOut("Workstation mode", 20s)) << a.err();
  nlohmann::json list = Sessions();
  ASSERT_EQ(list.size(), 1u);
  pid_t worker = list[0]["worker_pid"];
  auto rc = a.proc().Wait(15s);
  ASSERT_TRUE(rc.has_value()) << "the idle session was not closed";
  EXPECT_EQ(*rc, 1);
  EXPECT_CONTAINS(a.err(), "idle for 2s (analysis.idle_timeout");
  EXPECT_TRUE(Sessions().empty());
  // The worker is gone (reaped: no zombie either).
  EXPECT_NE(::access(("/proc/" + std::to_string(worker)).c_str(), F_OK), 0);
}

TEST_F(SessionLimitsTest, OutputCapCutsACommandOffAndTheSessionGoesOn) {
  // ~60k objects: a `dumpheap` listing of several MiB.
  StartWith("  max_command_output_mib: 1\n", {"2000", "--objects", "30000"});
  RunResult r =
      daemon_->Client({"analyze", id_, "-c", "dumpheap", "-c", "eeversion", "-c", "exit"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "cut off after 1 MiB (analysis.max_command_output_mib)");
  EXPECT_CONTAINS(r.out, "<output cut off after 1 MiB");
  EXPECT_LT(r.out.size(), (1u << 20) + 4096);
  EXPECT_GT(r.out.size(), (1u << 20) - 4096);
  EXPECT_CONTAINS(r.out, "Workstation mode");  // the next command ran
}

TEST_F(SessionLimitsTest, CommandTimeoutCancelsALongCommand) {
  StartWith("  command_timeout: 100ms\n", {"2000", "--objects", "2000000"});
  RunResult r =
      daemon_->Client({"analyze", id_, "-c", "dumpheap", "-c", "eeversion", "-c", "exit"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "cancelled");
  EXPECT_EQ(r.out.find("Total "), std::string::npos) << "the listing ran to its end";
  EXPECT_CONTAINS(r.out, "Workstation mode");
}

TEST_F(SessionLimitsTest, GlobalLimitAndTheWorkersIsolation) {
  StartWith("  max_sessions: 1\n  worker_memory_mib: 3000\n");
  LiveSession a(*daemon_, id_, dir_, "a");
  a.Send("eeversion");
  ASSERT_TRUE(a.WaitOut("Workstation mode", 20s)) << a.err();
  RunResult second = daemon_->Client({"analyze", id_, "-c", "exit"});
  EXPECT_EQ(second.exit_code, 6);
  EXPECT_CONTAINS(second.err, "analysis.max_sessions)");

  pid_t worker = Sessions()[0]["worker_pid"];
  std::string proc = "/proc/" + std::to_string(worker);
  std::string status = ReadFile(proc + "/status");
  // Only CAP_DAC_READ_SEARCH (bit 2) is left, and no way to gain more.
  EXPECT_TRUE(std::regex_search(status, std::regex("CapEff:\\s+0000000000000004\n"))) << status;
  EXPECT_TRUE(std::regex_search(status, std::regex("CapBnd:\\s+0000000000000004\n"))) << status;
  EXPECT_TRUE(std::regex_search(status, std::regex("NoNewPrivs:\\s+1\n"))) << status;
  std::string limits = ReadFile(proc + "/limits");
#if defined(__SANITIZE_ADDRESS__)
  // The ASan build's worker runs without a data limit (its shadow memory counts against it:
  // daemon/worker/worker_main.cc); every other build has it.
  EXPECT_TRUE(std::regex_search(limits, std::regex("Max data size +unlimited +unlimited")))
      << limits;
#else
  EXPECT_TRUE(std::regex_search(limits, std::regex("Max data size +3145728000 +3145728000")))
      << limits;
#endif
  EXPECT_TRUE(std::regex_search(limits, std::regex("Max core file size +0 +0"))) << limits;
  // None of the daemon's sockets or files leaked into it: the dump is its only inherited
  // file besides the pipes.
  for (const auto& e : std::filesystem::directory_iterator(proc + "/fd")) {
    std::string target = std::filesystem::read_symlink(e.path()).string();
    EXPECT_EQ(target.find("socket:"), std::string::npos) << e.path() << " -> " << target;
    EXPECT_EQ(target.find(".sock"), std::string::npos) << e.path() << " -> " << target;
  }
  EXPECT_EQ(std::filesystem::read_symlink(proc + "/fd/3").string(),
            daemon_->dump_dir() + "/dumps/" + id_ + "/dump");
}

}  // namespace
}  // namespace clrdiag::testing
