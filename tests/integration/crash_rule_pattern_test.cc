// Crash capture way 1 with the rule's `exception` pattern (issue 8, docs/crash-capture.md):
// the runtime writes its own crash dump and, with DOTNET_EnableCrashReport=1, the crash report
// beside it naming the unhandled exception. Real HeapApp fixtures crash on request with
// different exception types; a real daemon ingests every dump into the catalog, and the crash
// rule (exception: System.InvalidOperation*) fires, and sends to its filesystem egress, only
// the matching one. A crash without a crash report does not fire the rule either, and the
// rule_skipped event says why.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
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

std::string Tag() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  return std::to_string(100000 + rng() % 800000);
}

// A HeapApp driven through a FIFO on its stdin (`crash TYPE MSG` makes it crash).
class CrashApp {
 public:
  CrashApp(const TempDir& dir, const std::map<std::string, std::string>& env) : tag_(Tag()) {
    fifo_ = dir / ("app-" + tag_ + ".stdin");
    EXPECT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);
    SpawnOptions opts;
    opts.stdin_file = fifo_;
    opts.stderr_file = dir / ("app-" + tag_ + ".stderr");
    for (const auto& [k, v] : env) opts.env[k] = v;
    proc_ = StartFixture("HeapApp", {"100", "--stdin", "--chain", tag_}, kDefaultRuntime, opts);
  }
  ~CrashApp() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return proc_ != nullptr && fd_ >= 0; }
  pid_t pid() const { return proc_->pid(); }
  // Crashes it with an unhandled `type`; true once it is gone (SIGABRT, as the runtime does).
  bool Crash(const std::string& type) {
    std::string l = "crash " + type + " clrdiag-pattern\n";
    if (::write(fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) return false;
    if (!proc_->WaitForLine("CRASHING", 60s).has_value()) return false;
    auto st = proc_->Wait(120s);
    return st.has_value() && *st == 128 + SIGABRT;
  }

 private:
  std::string tag_, fifo_;
  int fd_ = -1;
  std::unique_ptr<Process> proc_;
};

TEST(CrashRulePatternTest, OnlyTheCrashWhoseReportMatchesTheExceptionPatternFires) {
  TempDir dir("clrdiag-crashpattern");
  const std::string crash_dir = dir / "crash";
  const std::string egress_dir = dir / "egress";
  std::map<std::string, std::string> env = {{"DOTNET_DbgEnableMiniDump", "1"},
                                            {"DOTNET_DbgMiniDumpType", "1"},
                                            {"DOTNET_DbgMiniDumpName", crash_dir + "/%e_%p_%t.dmp"},
                                            {"DOTNET_EnableCrashReport", "1"}};
  CrashApp matching(dir, env);
  CrashApp other(dir, env);
  env.erase("DOTNET_EnableCrashReport");
  CrashApp unreported(dir, env);
  ASSERT_TRUE(matching.ok() && other.ok() && unreported.ok());

  const std::string config = dir / "clrdiagd.yaml";
  std::ofstream(config) << "automation: { poll_interval: 250ms }\n"
                        << "egress:\n  local: { type: filesystem, directory: " << egress_dir
                        << " }\n"
                        << "crash_dumps:\n  directories: [{ path: " << crash_dir
                        << ", type: Mini }]\n  settle: 200ms\n  scan_interval: 300ms\n"
                        << "collection_rules:\n"
                        << "  - name: invalid-op\n"
                        << "    filter: { process_name: HeapApp }\n"
                        << "    trigger: { type: crash, exception: \"System.InvalidOperation*\" }\n"
                        << "    action: { collect: { type: Mini }, egress: local }\n"
                        << "    limits: { action_count: 5 }\n";
  Daemon::Options o;
  o.extra_args = {"--config", config};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();
  for (int i = 0; i < 100 && EventsOf(d, "process_start").size() < 3; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(EventsOf(d, "process_start").size(), 3u) << d.log();
  std::this_thread::sleep_for(1s);  // the ingester sees them running (facts, runtime files)

  ASSERT_TRUE(other.Crash("System.ArgumentException"));
  ASSERT_TRUE(matching.Crash("System.InvalidOperationException"));
  ASSERT_TRUE(unreported.Crash("System.InvalidOperationException"));

  // All three dumps are in the catalog; only the matching one has a crash report and a rule.
  nlohmann::json dumps;
  for (int i = 0; i < 600; ++i) {
    dumps = ParseJson(d.Client({"dumps", "--json"}).out);
    if (dumps.is_array() && dumps.size() >= 3 && EventsOf(d, "rule_skipped").size() >= 2) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(dumps.is_array());
  ASSERT_EQ(dumps.size(), 3u) << dumps.dump() << d.log();
  std::map<int64_t, nlohmann::json> by_pid;
  for (const auto& m : dumps) {
    EXPECT_EQ(m["origin"], "crash") << m.dump();
    by_pid[m["pid"].get<int64_t>()] = m;
  }
  ASSERT_EQ(by_pid.count(matching.pid()), 1u) << dumps.dump();
  ASSERT_EQ(by_pid.count(other.pid()), 1u) << dumps.dump();
  ASSERT_EQ(by_pid.count(unreported.pid()), 1u) << dumps.dump();
  const std::string match_id = by_pid[matching.pid()]["id"].get<std::string>();
  EXPECT_TRUE(by_pid[other.pid()].contains("crash_report_path"));
  EXPECT_FALSE(by_pid[unreported.pid()].contains("crash_report_path"));

  // Exactly the matching crash fired and went to the egress.
  std::vector<nlohmann::json> egress;
  for (int i = 0; i < 300 && egress.empty(); ++i) {
    egress = EventsOf(d, "egress");
    if (egress.empty()) std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1s);  // nothing else comes
  auto fired = EventsOf(d, "rule_fired");
  ASSERT_EQ(fired.size(), 1u) << d.log();
  EXPECT_EQ(fired[0]["pid"], matching.pid());
  EXPECT_NE(
      fired[0]["message"].get<std::string>().find("unhandled System.InvalidOperationException"),
      std::string::npos)
      << fired[0].dump();
  egress = EventsOf(d, "egress");
  ASSERT_EQ(egress.size(), 1u) << d.log();
  EXPECT_TRUE(egress[0]["ok"].get<bool>()) << egress[0].dump();
  EXPECT_EQ(egress[0]["dump_id"], match_id);
  EXPECT_EQ(FindFiles(egress_dir, "dmp").size(), 1u);
  dumps = ParseJson(d.Client({"dumps", "--json"}).out);
  for (const auto& m : dumps) {
    if (m["id"] == match_id) {
      EXPECT_EQ(m["rule"], "invalid-op");
      EXPECT_TRUE(m.contains("crash_report_path")) << m.dump();
    } else {
      EXPECT_FALSE(m.contains("rule")) << m.dump();
    }
  }

  // The two that did not fire say why.
  auto skipped = EventsOf(d, "rule_skipped");
  ASSERT_EQ(skipped.size(), 2u) << d.log();
  std::map<int64_t, std::string> why;
  for (const auto& e : skipped) why[e["pid"].get<int64_t>()] = e["message"].get<std::string>();
  EXPECT_NE(why[other.pid()].find("unhandled System.ArgumentException does not match exception "
                                  "pattern System.InvalidOperation*"),
            std::string::npos)
      << why[other.pid()];
  EXPECT_NE(why[unreported.pid()].find("no crash report"), std::string::npos)
      << why[unreported.pid()];
  auto rules = ParseJson(d.Client({"rules", "--json"}).out);
  ASSERT_TRUE(rules.is_array() && rules.size() == 1u);
  EXPECT_EQ(rules[0]["fires"], 1);
}

}  // namespace
}  // namespace clrdiag::testing
