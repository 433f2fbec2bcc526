// Collection rules end to end (issue 8): a real daemon with a rules configuration, real
// HeapApp --stdin fixtures whose behaviour the test drives (alloc, spin, threads, fds), the real
// client's `events --json`, `rules --json` and `dumps --json`, and a filesystem egress.
// Each fixture carries a unique `--chain TAG` on its command line and every rule filters on it,
// so processes of other tests on this machine never match.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/base/sha256.h"
#include "core/egress/s3_client.h"
#include "core/egress/test_support.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

// Poll interval of the test configurations (automation.poll_interval).
constexpr auto kInterval = 250ms;

std::string UniqueTag() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  return std::to_string(100000 + rng() % 800000);
}

// A HeapApp driven through a FIFO on its stdin.
class App {
 public:
  App(const TempDir& dir, const std::string& name) : tag_(UniqueTag()) {
    fifo_ = dir / (name + ".stdin");
    EXPECT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);  // never blocks, keeps the FIFO open
    SpawnOptions opts;
    opts.stdin_file = fifo_;
    proc_ = StartFixture("HeapApp", {"100", "--stdin", "--chain", tag_}, opts);
  }
  ~App() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return proc_ != nullptr && fd_ >= 0; }
  pid_t pid() const { return proc_->pid(); }
  const std::string& tag() const { return tag_; }
  // The command-line glob that matches only this process.
  std::string Glob() const { return "*--chain " + tag_; }
  // Sends a behaviour request; returns the answer line starting with `reply`.
  std::string Do(const std::string& line, const std::string& reply) {
    std::string l = line + "\n";
    EXPECT_EQ(::write(fd_, l.data(), l.size()), static_cast<ssize_t>(l.size()));
    auto got = proc_->WaitForLine(reply, 60s);
    EXPECT_TRUE(got.has_value()) << line;
    return got.value_or("");
  }
  Process& proc() { return *proc_; }

 private:
  std::string tag_, fifo_;
  int fd_ = -1;
  std::unique_ptr<Process> proc_;
};

std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}
int64_t RssMb(pid_t pid) { return std::stoll(StatusField(pid, "VmRSS")) / 1024; }
int64_t Threads(pid_t pid) { return std::stoll(StatusField(pid, "Threads")); }
int64_t Fds(pid_t pid) {
  int64_t n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// CPU % of one core over the last second, from utime+stime in /proc/<pid>/stat.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t pid) : pid_(pid) {}
  double Percent() {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::vector<std::string> f;
    for (std::string w; rest >> w;) f.push_back(w);
    if (f.size() < 13) return 0;
    const double ticks = std::stod(f[11]) + std::stod(f[12]);  // fields 14 and 15
    const auto now = std::chrono::steady_clock::now();
    history_.emplace_back(now, ticks);
    const std::pair<std::chrono::steady_clock::time_point, double>* base = nullptr;
    for (const auto& h : history_) {
      if (h.first <= now - 1s) base = &h;
    }
    if (base == nullptr) return 0;
    double secs = std::chrono::duration<double>(now - base->first).count();
    return (ticks - base->second) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / secs * 100;
  }

 private:
  pid_t pid_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, double>> history_;
};

// A daemon started with a rules configuration (the YAML below the common part).
class AutomationTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& rules_yaml) {
    std::string path = dir_ / "clrdiagd.yaml";
    std::ofstream(path) << "automation: { poll_interval: 250ms }\n" << rules_yaml;
    Daemon::Options o;
    o.extra_args = {"--config", path};
    daemon_ = std::make_unique<Daemon>(o);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  std::vector<nlohmann::json> Events() { return testing::Events(*daemon_); }
  std::vector<nlohmann::json> EventsOf(const std::string& kind, const std::string& rule) {
    return testing::EventsOf(*daemon_, kind, rule);
  }
  nlohmann::json WaitEvent(const std::string& kind, const std::string& rule,
                           std::chrono::milliseconds timeout) {
    return testing::WaitEvent(*daemon_, kind, rule, timeout);
  }
  nlohmann::json Rule(const std::string& name) { return RuleNamed(*daemon_, name); }
  nlohmann::json Dumps() {
    RunResult r = daemon_->Client({"dumps", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out);
  }

  // The common check of a threshold trigger: nothing fires while the app is below the
  // threshold (watched over several intervals); then `request` makes the app cross it, and the
  // rule must fire within two intervals of the moment the test itself sees `metric` pass
  // `threshold` (sampled every few ms from /proc), and not before the test last saw it below.
  // `early`: how much earlier the daemon may legitimately see it when its measure differs
  // (CPU: its window is anchored at its polls).
  void ExpectFiresAfter(App& app, const std::string& rule, const std::string& request,
                        const std::string& reply, const std::function<double()>& metric,
                        double threshold, std::chrono::milliseconds early = 0ms) {
    ASSERT_FALSE(WaitEvent("process_start", "", 10s).is_null());
    // Quiet phase (also primes metrics that need history, like CPU over the last second).
    const auto quiet_end = Clock::now() + kInterval * 6;
    while (Clock::now() < quiet_end) {
      EXPECT_LE(metric(), threshold) << "the app is already past the threshold";
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(EventsOf("rule_fired", rule).empty()) << "fired before its condition held";
    std::atomic<bool> stop{false};
    // `crossed`: the first time the test saw the metric past the threshold; `below`: when the
    // read before it started, the metric then still being below: the condition began to hold
    // in between (the test's own reads may be late on a loaded machine).
    std::optional<Clock::time_point> crossed;
    Clock::time_point below = Clock::now();
    std::thread watcher([&] {
      while (!stop && !crossed) {
        const auto before = Clock::now();
        if (metric() > threshold) {
          crossed = Clock::now();
        } else {
          below = before;
        }
        std::this_thread::sleep_for(5ms);
      }
    });
    app.Do(request, reply);
    auto fired = WaitEvent("rule_fired", rule, 30s);
    stop = true;
    watcher.join();
    ASSERT_FALSE(fired.is_null()) << daemon_->log();
    ASSERT_TRUE(crossed.has_value()) << "the test never saw the condition hold";
    const auto at = ParseTime(fired["time"].get<std::string>());
    auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(at - *crossed);
    auto since_below = std::chrono::duration_cast<std::chrono::milliseconds>(at - below);
    EXPECT_EQ(fired["pid"], app.pid());
    EXPECT_GE(since_below, -early) << "fired before the condition held: " << fired.dump();
    EXPECT_LE(latency, kInterval * 2) << fired.dump();
    std::printf(
        "[ measured ] %s fired %lld ms after the test saw the condition hold, %lld ms after it "
        "last saw it not hold (bounds: <= %lld, >= -%lld)\n",
        rule.c_str(), static_cast<long long>(latency.count()),
        static_cast<long long>(since_below.count()),
        static_cast<long long>((kInterval * 2).count()), static_cast<long long>(early.count()));
  }

  TempDir dir_{"clrdiag-auto"};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(AutomationTest, StartupWithActionCountOneTakesExactlyOneDump) {
  App a(dir_, "a"), b(dir_, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  StartDaemon(
      "collection_rules:\n"
      "  - name: first-start\n"
      "    filter: { command_line: \"*--chain " +
      a.tag() +
      "\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n"
      "  - name: second-start\n"
      "    filter: { command_line: \"" +
      b.Glob() +
      "\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1, window: 1h }\n");
  auto collected = WaitEvent("dump_collected", "first-start", 60s);
  ASSERT_FALSE(collected.is_null()) << daemon_->log();
  ASSERT_FALSE(WaitEvent("dump_collected", "second-start", 60s).is_null()) << daemon_->log();
  // Many more polls: the processes stay, but each rule acted once.
  std::this_thread::sleep_for(kInterval * 8);
  EXPECT_EQ(EventsOf("rule_fired", "first-start").size(), 1u);
  EXPECT_EQ(EventsOf("rule_fired", "second-start").size(), 1u);
  auto dumps = Dumps();
  ASSERT_TRUE(dumps.is_array());
  ASSERT_EQ(dumps.size(), 2u) << dumps.dump(2);
  std::set<std::string> rules;
  for (auto& d : dumps) {
    rules.insert(d["rule"].get<std::string>());
    EXPECT_EQ(d["type"], "Mini");
  }
  EXPECT_EQ(rules, (std::set<std::string>{"first-start", "second-start"}));
  EXPECT_EQ(collected["pid"], a.pid());
  EXPECT_EQ(collected["process_name"], "HeapApp");
  // `rules --json`: fire counts, last fire, finished (no window) vs. next allowed (window).
  auto first = Rule("first-start");
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["fires"], 1);
  EXPECT_TRUE(first["finished"].get<bool>());
  EXPECT_EQ(first["finished_reason"], "action_count 1 reached");
  EXPECT_TRUE(first["last_fire"].is_string());
  EXPECT_EQ(first["trigger"], "startup");
  EXPECT_EQ(first["action"], "collect Mini");
  auto second = Rule("second-start");
  ASSERT_FALSE(second.is_null());
  EXPECT_FALSE(second["finished"].get<bool>());
  EXPECT_EQ(second["processes"], 1);
  ASSERT_TRUE(second["next_allowed"].is_string()) << second.dump();
  // The next action is allowed an hour after the fire.
  auto gap = ParseTime(second["next_allowed"]) - ParseTime(second["last_fire"]);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::minutes>(gap).count(), 60);
  // Text forms too.
  RunResult text = daemon_->Client({"rules"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_CONTAINS(text.out, "first-start");
  EXPECT_CONTAINS(text.out, "never (finished)");
  RunResult ev = daemon_->Client({"events", "--kind", "dump_collected"});
  EXPECT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_CONTAINS(ev.out, "dump_collected");
  EXPECT_EQ(ev.out.find("process_start"), std::string::npos) << ev.out;
}

TEST_F(AutomationTest, WorkingSetFiresWithinTwoIntervalsOfTheAllocationAndNotBefore) {
  App app(dir_, "ws");
  ASSERT_TRUE(app.ok());
  const int64_t threshold = RssMb(app.pid()) + 120;
  StartDaemon(
      "collection_rules:\n"
      "  - name: big\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: working_set, greater_than: " +
      std::to_string(threshold) +
      " }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n");
  ExpectFiresAfter(
      app, "big", "alloc 200", "ALLOCATED", [&] { return static_cast<double>(RssMb(app.pid())); },
      static_cast<double>(threshold));
  auto fired = EventsOf("rule_fired", "big");
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_CONTAINS(fired[0]["message"].get<std::string>(),
                  "working_set > " + std::to_string(threshold) + " MB");
  ASSERT_FALSE(WaitEvent("dump_collected", "big", 60s).is_null()) << daemon_->log();
}

TEST_F(AutomationTest, CpuFiresWhenTheAppSpinsAndNotWhileIdle) {
  App app(dir_, "cpu");
  ASSERT_TRUE(app.ok());
  StartDaemon(
      "collection_rules:\n"
      "  - name: hot\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: cpu, greater_than: 5, window: 1s }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n");
  // The test measures the same thing: CPU time over the last second, from /proc/<pid>/stat.
  // The threshold is low because this machine may be shared: a spinning thread does not get a
  // whole core here. The daemon's window starts at a poll (up to one interval off the test's),
  // so it may see the crossing up to one interval before the test does.
  CpuMeter meter(app.pid());
  ExpectFiresAfter(
      app, "hot", "spin on", "SPINNING", [&] { return meter.Percent(); }, 5, kInterval);
  app.Do("spin off", "SPUN");
}

TEST_F(AutomationTest, ThreadsAndFdsTriggers) {
  App t(dir_, "threads"), f(dir_, "fds");
  ASSERT_TRUE(t.ok() && f.ok());
  const int64_t threads = Threads(t.pid()) + 20;
  const int64_t fds = Fds(f.pid()) + 20;
  StartDaemon(
      "collection_rules:\n"
      "  - name: many-threads\n"
      "    filter: { command_line: \"" +
      t.Glob() +
      "\" }\n"
      "    trigger: { type: threads, greater_than: " +
      std::to_string(threads) +
      " }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n"
      "  - name: many-fds\n"
      "    filter: { command_line: \"" +
      f.Glob() +
      "\" }\n"
      "    trigger: { type: fds, greater_than: " +
      std::to_string(fds) +
      " }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n");
  ExpectFiresAfter(
      t, "many-threads", "threads 30", "THREADS",
      [&] { return static_cast<double>(Threads(t.pid())); }, static_cast<double>(threads));
  ExpectFiresAfter(
      f, "many-fds", "fds 30", "FDS", [&] { return static_cast<double>(Fds(f.pid())); },
      static_cast<double>(fds));
  EXPECT_EQ(EventsOf("rule_fired", "many-threads")[0]["pid"], t.pid());
  EXPECT_EQ(EventsOf("rule_fired", "many-fds")[0]["pid"], f.pid());
}

TEST_F(AutomationTest, FilesystemEgressAppearsWholeUnderItsPrefix) {
  App app(dir_, "egress");
  ASSERT_TRUE(app.ok());
  const std::string out = dir_ / "egress";
  const std::string sub = out + "/HeapApp-" + std::to_string(app.pid());
  // Watch the target directory from before the daemon starts: every regular file ever listed
  // under a final (non-hidden) name must already be complete.
  std::atomic<bool> stop{false};
  std::map<std::string, std::set<off_t>> sizes_seen;
  std::thread watcher([&] {
    while (!stop) {
      if (DIR* d = ::opendir(sub.c_str())) {
        while (dirent* e = ::readdir(d)) {
          if (e->d_name[0] == '.') continue;
          struct stat st;
          if (::stat((sub + "/" + e->d_name).c_str(), &st) == 0) {
            sizes_seen[e->d_name].insert(st.st_size);
          }
        }
        ::closedir(d);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  StartDaemon(
      "egress:\n"
      "  local: { type: filesystem, directory: " +
      out +
      ", prefix: \"{name}-{pid}/\" }\n"
      "collection_rules:\n"
      "  - name: ship\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini }, egress: local }\n"
      "    limits: { action_count: 1 }\n");
  auto eg = WaitEvent("egress", "ship", 90s);
  stop = true;
  watcher.join();
  ASSERT_FALSE(eg.is_null()) << daemon_->log();
  EXPECT_TRUE(eg["ok"].get<bool>()) << eg.dump();
  EXPECT_EQ(eg["egress"], "local");
  const std::string id = eg["dump_id"];
  const std::string file = sub + "/" + id + ".dmp";
  EXPECT_EQ(eg["message"], file);
  auto dumps = Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  const auto& d = dumps[0];
  EXPECT_EQ(d["id"], id);
  EXPECT_EQ(d["rule"], "ship");
  ASSERT_EQ(d["egress"].size(), 1u);
  EXPECT_EQ(d["egress"][0]["state"], "ok");
  EXPECT_EQ(d["egress"][0]["location"], file);
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), d["size_bytes"].get<uint64_t>());
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto sum = Sha256File(file);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, d["sha256"].get<std::string>());
  // No partial file was ever visible under a final name, and nothing else is left there.
  ASSERT_EQ(sizes_seen.size(), 1u);
  EXPECT_EQ(sizes_seen.begin()->first, id + ".dmp");
  EXPECT_EQ(sizes_seen.begin()->second, (std::set<off_t>{st.st_size}));
  int entries = 0;
  if (DIR* dd = ::opendir(sub.c_str())) {
    while (dirent* e = ::readdir(dd))
      entries += std::string(e->d_name) != "." && std::string(e->d_name) != "..";
    ::closedir(dd);
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(AutomationTest, FailedEgressKeepsTheDumpInTheCatalogWithTheError) {
  App app(dir_, "fail");
  ASSERT_TRUE(app.ok());
  // A directory below a regular file can never be created, even by root.
  const std::string blocker = dir_ / "not-a-dir";
  std::ofstream(blocker) << "x";
  StartDaemon(
      "egress:\n"
      "  broken: { type: filesystem, directory: " +
      blocker +
      "/egress }\n"
      "collection_rules:\n"
      "  - name: ship\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini }, egress: broken }\n"
      "    limits: { action_count: 1 }\n");
  auto eg = WaitEvent("egress", "ship", 90s);
  ASSERT_FALSE(eg.is_null()) << daemon_->log();
  EXPECT_FALSE(eg["ok"].get<bool>());
  EXPECT_EQ(eg["egress"], "broken");
  EXPECT_CONTAINS(eg["message"].get<std::string>(), blocker + "/egress");
  EXPECT_CONTAINS(eg["message"].get<std::string>(), "Not a directory");
  auto dumps = Dumps();
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0]["id"], eg["dump_id"]);
  ASSERT_EQ(dumps[0]["egress"].size(), 1u);
  EXPECT_EQ(dumps[0]["egress"][0]["state"], "failed");
  EXPECT_CONTAINS(dumps[0]["egress"][0]["error"].get<std::string>(), "Not a directory");
  // The dump itself is whole: analysis opens it.
  RunResult a = daemon_->Client({"analyze", eg["dump_id"], "-c", "clrthreads", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_CONTAINS(daemon_->log(), "(the dump stays in the catalog)");
}

TEST_F(AutomationTest, FollowingEventsSeesNewEventsAsTheyHappen) {
  StartDaemon(
      "collection_rules:\n"
      "  - name: watch-only\n"
      "    filter: { command_line: \"*--chain never-matches\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini } }\n");
  InteractiveClient follow({BinDir() + "/clrdiag", "--server", daemon_->server(), "events",
                            "--follow", "--json", "--kind", "process_start"},
                           dir_.path(), "follow");
  std::this_thread::sleep_for(500ms);
  App app(dir_, "late");
  ASSERT_TRUE(app.ok());
  EXPECT_TRUE(follow.WaitOut("\"pid\":" + std::to_string(app.pid()), 10s)) << follow.out();
  follow.proc().Signal(SIGINT);
  auto rc = follow.proc().Wait(10s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << follow.err();
}

TEST(AutomationConfigCheck, ABadRulesConfigIsRejectedListingEveryError) {
  TempDir dir("clrdiag-auto-bad");
  const std::string path = dir / "bad.yaml";
  std::ofstream(path) << "egress:\n"
                         "  local: { type: filesystem, directory: relative }\n"
                         "collection_rules:\n"
                         "  - name: a\n"
                         "    trigger: { type: working_set, greater_than: 10, window: 5x }\n"
                         "    action: { collect: { type: Mini }, egress: s3-main }\n"
                         "  - name: b\n"
                         "    trigger: { type: sometimes }\n"
                         "    action: { collect: { type: Mini }, colour: red }\n";
  RunResult r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", path});
  EXPECT_NE(r.exit_code, 0);
  for (const char* want : {
           "egress.local.directory: must be an absolute path, got 'relative'",
           "collection_rules[0].trigger.window: bad duration \"5x\"",
           "collection_rules[0].action.egress: no egress named 's3-main' (defined: local)",
           "collection_rules[1].trigger.type: unknown trigger type 'sometimes'",
           "collection_rules[1].action.colour: unknown key",
       }) {
    EXPECT_CONTAINS(r.err, std::string(path) + ": " + want);
  }
  // A good one is accepted and described.
  std::ofstream(path) << "egress:\n"
                         "  local: { type: filesystem, directory: /tmp/x }\n"
                         "collection_rules:\n"
                         "  - name: a\n"
                         "    trigger: { type: working_set, greater_than: 10, window: 5s }\n"
                         "    action: { collect: { type: Mini }, egress: local }\n";
  r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "rule a: working_set > 10 MB for 5s; collect Mini → local");
}

// EventPipe triggers end to end: the daemon holds a counter session on the app and fires when
// the runtime's own gc-heap-size counter passes the threshold, within two counter intervals
// (1 s each) of the allocation, and never while the heap is small.
TEST_F(AutomationTest, CounterTriggerFiresOnTheRuntimesGcHeapSize) {
  App app(dir_, "gcheap");
  ASSERT_TRUE(app.ok());
  StartDaemon(
      "collection_rules:\n"
      "  - name: heap\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: gc_heap_size, greater_than: 80, window: 1s }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n");
  ASSERT_FALSE(WaitEvent("process_start", "", 10s).is_null());
  // The session is up and counters flow for a few intervals: nothing fires (heap ~ a few MB).
  std::this_thread::sleep_for(4s);
  EXPECT_TRUE(EventsOf("rule_fired", "heap").empty()) << daemon_->log();
  EXPECT_CONTAINS(daemon_->log(), "EventPipe session on pid " + std::to_string(app.pid()));
  app.Do("alloc 120", "ALLOCATED");
  const auto allocated = Clock::now();
  auto fired = WaitEvent("rule_fired", "heap", 30s);
  ASSERT_FALSE(fired.is_null()) << daemon_->log();
  auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(
      ParseTime(fired["time"].get<std::string>()) - allocated);
  std::printf("[ measured ] gc_heap_size fired %lld ms after the allocation\n",
              static_cast<long long>(latency.count()));
  EXPECT_LE(latency, 2s + kInterval) << fired.dump();
  EXPECT_EQ(fired["pid"], app.pid());
  EXPECT_CONTAINS(fired["message"].get<std::string>(), "gc-heap-size");
  ASSERT_FALSE(WaitEvent("dump_collected", "heap", 60s).is_null()) << daemon_->log();
}

// A first-chance exception of the rule's type (and message) fires it; another type does not.
TEST_F(AutomationTest, ExceptionTriggerFiresOnTheMatchingTypeOnly) {
  App app(dir_, "exc");
  ASSERT_TRUE(app.ok());
  StartDaemon(
      "collection_rules:\n"
      "  - name: ioe\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: exception, exception_type: \"System.InvalidOperation*\", message: "
      "\"*clrdiag-boom*\" }\n"
      "    action: { collect: { type: Mini } }\n"
      "    limits: { action_count: 1 }\n");
  ASSERT_FALSE(WaitEvent("process_start", "", 10s).is_null());
  std::this_thread::sleep_for(3s);  // the session starts
  app.Do("throw System.ArgumentException clrdiag-boom", "THREW");
  app.Do("throw System.InvalidOperationException something-else", "THREW");
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(EventsOf("rule_fired", "ioe").empty()) << "fired on a type or message it excludes";
  app.Do("throw System.InvalidOperationException clrdiag-boom now", "THREW");
  auto fired = WaitEvent("rule_fired", "ioe", 15s);
  ASSERT_FALSE(fired.is_null()) << daemon_->log();
  EXPECT_EQ(fired["pid"], app.pid());
  EXPECT_CONTAINS(fired["message"].get<std::string>(), "System.InvalidOperationException");
  ASSERT_FALSE(WaitEvent("dump_collected", "ioe", 60s).is_null()) << daemon_->log();
}

// S3 egress end to end: a rule's dump goes to a real moto_server (path style) under its
// expanded prefix; the object's bytes are the catalog's dump.
TEST_F(AutomationTest, S3EgressUploadsTheDumpUnderItsPrefix) {
  auto moto = egress::testing::MotoServer::Start(5 << 20);
  ASSERT_TRUE(moto.ok()) << moto.status();
  std::string bucket_url = (*moto)->endpoint() + "/dumps";
  ASSERT_EQ(RunCommand({"/usr/bin/python3", "-c",
                        "import urllib.request,sys; urllib.request.urlopen("
                        "urllib.request.Request(sys.argv[1], method='PUT'))",
                        bucket_url})
                .exit_code,
            0);
  std::ofstream(dir_ / "secret") << "test-secret\n";
  App app(dir_, "s3");
  ASSERT_TRUE(app.ok());
  StartDaemon(
      "collection_rules:\n"
      "  - name: up\n"
      "    filter: { command_line: \"" +
      app.Glob() +
      "\" }\n"
      "    trigger: { type: startup }\n"
      "    action: { collect: { type: Mini }, egress: s3-main }\n"
      "    limits: { action_count: 1 }\n"
      "egress:\n"
      "  s3-main: { type: s3, endpoint: \"" +
      (*moto)->endpoint() +
      "\", bucket: dumps, region: us-east-1, access_key_id: test, "
      "secret_access_key_file: " +
      (dir_ / "secret") + ", path_style: true, prefix: \"{name}/{pid}/\" }\n");
  auto sent = WaitEvent("egress", "up", 120s);
  ASSERT_FALSE(sent.is_null()) << daemon_->log();
  ASSERT_TRUE(sent["ok"].get<bool>()) << sent.dump();
  std::string url = sent["message"].get<std::string>();
  EXPECT_CONTAINS(url, "/dumps/HeapApp/" + std::to_string(app.pid()) + "/");
  std::string id = sent["dump_id"].get<std::string>();
  std::string path;
  for (auto& d : Dumps()) {
    if (d["id"] == id) path = d["path"].get<std::string>();
  }
  ASSERT_FALSE(path.empty());
  // Read back with a signed client (moto refuses anonymous reads) and compare byte for byte.
  egress::S3Config c;
  c.endpoint = (*moto)->endpoint();
  c.bucket = "dumps";
  c.access_key_id = "test";
  c.secret_access_key_file = dir_ / "secret";
  c.path_style = true;
  auto client = egress::S3Client::Create(c, egress::S3ClientOptions{});
  ASSERT_TRUE(client.ok()) << client.status();
  const std::string key = url.substr(url.find("/dumps/") + 7);
  std::ifstream in(path, std::ios::binary);
  std::string want((std::istreambuf_iterator<char>(in)), {});
  auto got = (*client)->GetObject(key, want.size() + 1024);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), want.size());
  EXPECT_TRUE(*got == want) << "the object differs from the catalog's dump";
}
}  // namespace
}  // namespace clrdiag::testing
