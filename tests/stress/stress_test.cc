// The daemon under load and under hostile input: many sessions plus a steady stream of `ps`
// calls; and a corpus of mutated cores (truncated, bit-flipped headers, notes and memory) that
// may kill their workers but never the daemon, and never hang a session.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

long VmHwmKiB(pid_t pid) {
  std::string s = ReadFile("/proc/" + std::to_string(pid) + "/status");
  std::smatch m;
  return std::regex_search(s, m, std::regex("VmHWM:\\s+([0-9]+) kB")) ? std::stol(m[1]) : -1;
}

// 8 sessions on 8 different dumps run commands in a loop while another thread calls `ps` 50
// times a second, for 30 s: no call fails, and the daemon's memory stays bounded.
TEST(StressTest, EightSessionsAndFiftyPsCallsASecond) {
  TempDir dir;
  std::ofstream(dir / "clrdiagd.yaml")
      << "analysis:\n  max_sessions: 8\n  max_sessions_per_user: 8\n";
  Daemon daemon(Daemon::Options{"", {"--config", dir / "clrdiagd.yaml"}});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::vector<std::string> ids;
  {
    auto app = StartFixture("HeapApp", {"1000"});
    ASSERT_TRUE(app);
    for (int i = 0; i < 8; ++i) {
      RunResult c = daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type",
                                   i % 2 ? "Mini" : "Heap", "--json"});
      ASSERT_EQ(c.exit_code, 0) << c.err;
      ids.push_back(ParseJson(c.out)["id"]);
    }
  }
  const pid_t daemon_pid = daemon.process()->pid();
  const long hwm_before = VmHwmKiB(daemon_pid);

  std::atomic<bool> stop{false};
  std::atomic<int> session_runs{0}, session_failures{0}, ps_calls{0}, ps_failures{0};
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::vector<std::thread> threads;
  for (const std::string& id : ids) {
    threads.emplace_back([&, id] {
      while (!stop) {
        RunResult r = daemon.Client({"analyze", id, "-c", "clrthreads", "-c", "dumpheap -stat",
                                     "-c", "clrstack -all", "-c", "exit"});
        ++session_runs;
        if (r.exit_code != 0) {
          ++session_failures;
          std::lock_guard<std::mutex> lock(failures_mu);
          failures.push_back(id + ": " + r.err);
        }
      }
    });
  }
  threads.emplace_back([&] {
    auto next = std::chrono::steady_clock::now();
    while (!stop) {
      next += 20ms;  // 50 a second
      std::thread([&] {
        RunResult r = daemon.Client({"ps"}, 10s);
        ++ps_calls;
        if (r.exit_code != 0) ++ps_failures;
      }).detach();
      std::this_thread::sleep_until(next);
    }
  });
  auto t0 = std::chrono::steady_clock::now();
  long hwm_peak = 0;
  while (std::chrono::steady_clock::now() - t0 < 30s) {
    std::this_thread::sleep_for(500ms);
    hwm_peak = std::max(hwm_peak, VmHwmKiB(daemon_pid));
  }
  stop = true;
  for (auto& t : threads) t.join();
  std::this_thread::sleep_for(3s);  // the last detached ps calls
  std::printf("stress: %d sessions, %d ps calls in 30 s; daemon VmHWM %ld -> %ld KiB\n",
              session_runs.load(), ps_calls.load(), hwm_before, hwm_peak);
  EXPECT_EQ(session_failures, 0) << (failures.empty() ? "" : failures[0]);
  EXPECT_EQ(ps_failures, 0);
  EXPECT_GE(ps_calls, 1000);  // ~50 a second were made
  EXPECT_GE(session_runs, 8);
  // Bounded: sessions live in workers; the daemon itself stays small.
  EXPECT_LT(hwm_peak, 96 * 1024) << "daemon peak RSS " << hwm_peak << " KiB";
  EXPECT_EQ(ParseJson(daemon.Client({"sessions", "--json"}).out).size(), 0u);
}

// Mutations of a real core: each analysis ends (ok or with an error) within its timeout, a
// crashing worker is reported as such, and the daemon keeps serving throughout.
TEST(StressTest, MutatedCoresNeverTakeTheDaemonDown) {
  // A scrambled core can send a command into a very long walk (seen once in 2026-11: one
  // session of the 24 ran past the client's 60 s). The daemon's own guard for that is
  // analysis.command_timeout (10 min by default): here 15 s, so such a command is cancelled,
  // its session ends with the reason, and the loop below goes on.
  TempDir config_dir;
  std::ofstream(config_dir / "clrdiagd.yaml") << "analysis:\n  command_timeout: 15s\n";
  Daemon daemon(Daemon::Options{"", {"--config", config_dir / "clrdiagd.yaml"}});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::string original;
  {
    auto app = StartFixture("HeapApp", {"200"});
    ASSERT_TRUE(app);
    RunResult c =
        daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini", "--json"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    original = ParseJson(c.out)["path"];
  }
  std::string bytes = ReadFile(original);
  ASSERT_GT(bytes.size(), 1u << 20);
  TempDir dir;
  std::mt19937_64 rng(20261127);  // fixed: a failure is reproducible
  int crashed = 0, failed = 0, ok = 0, timed_out = 0;
  for (int i = 0; i < 24; ++i) {
    std::string m = bytes;
    std::string what;
    switch (i % 4) {
      case 0: {  // truncated anywhere
        size_t at = rng() % m.size();
        m.resize(at);
        what = "truncated at " + std::to_string(at);
        break;
      }
      case 1:  // bytes of the ELF and program headers and the notes
        for (int k = 0; k < 64; ++k)
          m[rng() % std::min<size_t>(m.size(), 64 * 1024)] ^= 1 << (rng() % 8);
        what = "headers/notes flipped";
        break;
      case 2:  // bytes anywhere (memory contents: heap, runtime data)
        for (int k = 0; k < 4096; ++k) m[rng() % m.size()] = static_cast<char>(rng());
        what = "memory scrambled";
        break;
      default:  // a whole 64 KiB block zeroed in the middle
        std::fill_n(m.begin() + static_cast<long>(rng() % (m.size() - 65536)), 65536, '\0');
        what = "block zeroed";
    }
    std::string path = dir / ("core." + std::to_string(i));
    std::ofstream(path, std::ios::binary) << m;
    RunResult r = daemon.Client({"analyze", path, "-c", "eeversion", "-c", "clrthreads", "-c",
                                 "dumpheap -stat", "-c", "clrstack -all", "-c", "exit"},
                                60s);
    ASSERT_NE(r.exit_code, -1) << "analysis of mutation " << i << " (" << what << ") hung";
    if (r.err.find("analysis worker was killed") != std::string::npos) ++crashed;
    if (r.err.find("analysis.command_timeout") != std::string::npos) {
      ++timed_out;
      std::printf("mutation %d (%s) ran into analysis.command_timeout: %s\n", i, what.c_str(),
                  r.err.c_str());
    }
    if (r.exit_code == 0)
      ++ok;
    else
      ++failed;
    // The daemon is alive and answers after each one.
    ASSERT_TRUE(daemon.process()->Running()) << "mutation " << i << " (" << what << ")";
    RunResult ps = daemon.Client({"ps"});
    ASSERT_EQ(ps.exit_code, 0) << "mutation " << i << " (" << what << "): " << ps.err;
    std::remove(path.c_str());
  }
  std::printf("mutated cores: %d ok, %d failed (%d worker crashes, %d command timeouts)\n", ok,
              failed, crashed, timed_out);
  EXPECT_GT(failed, 0) << "no mutation was noticed: the test does not exercise bad input";
  // And an intact analysis still works afterwards.
  RunResult good = daemon.Client({"analyze", original, "-c", "eeversion", "-c", "exit"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
}

}  // namespace
}  // namespace clrdiag::testing
