#include "core/automation/engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include "core/automation/proc_sampler.h"

namespace clrdiag::automation {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

// Records what the engine asked to run.
class RecordingRunner : public ActionRunner {
 public:
  struct Run_ {
    std::string rule;
    pid_t pid;
    std::string reason;
  };
  void Run(const Rule& rule, const ProcessInfo& p, const std::string& reason) override {
    runs.push_back({rule.name, p.pid, reason});
  }
  void Deliver(const Rule& rule, const ProcessInfo& p, const std::string& reason,
               const std::string& dump_id) override {
    delivered.push_back({rule.name, p.pid, reason + " -> " + dump_id});
  }
  std::vector<Run_> runs;
  std::vector<Run_> delivered;
};

ProcessInfo Proc(pid_t pid, const std::string& name = "Shop") {
  ProcessInfo p;
  p.pid = pid;
  p.start_time = 1000 + pid;
  p.name = name;
  p.command_line = "/app/" + name + " --port 80";
  return p;
}

std::string Key(pid_t pid) { return TargetKey(Proc(pid)); }

// A runtime known only through a listen port: the pid it advertised, in its own namespace.
ProcessInfo ListenProc(pid_t pid, const std::string& cookie, const std::string& cmd) {
  ProcessInfo p;
  p.pid = pid;
  p.name = "Shop";
  p.command_line = "/app/Shop " + cmd;
  p.runtime_cookie = cookie;
  p.listen_only = true;
  return p;
}

Rule MakeRule(const std::string& name, TriggerType type) {
  Rule r;
  r.name = name;
  r.trigger.type = type;
  r.limits.action_count = 100;
  return r;
}

// A test fixture with a manual clock and synthetic procfs samples.
class EngineTest : public ::testing::Test {
 protected:
  void Build(std::vector<Rule> rules, absl::Duration poll = absl::Seconds(1)) {
    EngineOptions o;
    o.automation.poll_interval = poll;
    o.clock = [this] { return now_; };
    o.on_needs_changed = [this] { ++needs_changes_; };
    engine_ = std::make_unique<Engine>(std::move(rules), o, &bus_, &runner_);
  }
  // One poll at the current clock with the given per-pid samples.
  void Poll(const std::vector<ProcessInfo>& procs) {
    engine_->Poll(procs, [this](pid_t pid) -> absl::StatusOr<ProcSample> {
      auto it = samples_.find(pid);
      if (it == samples_.end()) return absl::NotFoundError("gone");
      ProcSample s = it->second;
      s.time = now_;
      return s;
    });
  }
  std::vector<Event> Events(EventKind kind) {
    EventFilter f;
    f.kinds = {kind};
    return bus_.Recent(f);
  }

  absl::Time now_ = kT0;
  std::map<pid_t, ProcSample> samples_;
  EventBus bus_;
  RecordingRunner runner_;
  int needs_changes_ = 0;
  std::unique_ptr<Engine> engine_;
};

TEST(PatternTest, ExactAndGlob) {
  EXPECT_TRUE(Pattern{"Shop"}.Matches("Shop"));
  EXPECT_FALSE(Pattern{"Shop"}.Matches("Shop2"));
  EXPECT_FALSE(Pattern{"Shop"}.Matches("shop"));
  EXPECT_TRUE(Pattern{"Shop*"}.Matches("Shop2"));
  EXPECT_TRUE(Pattern{"*--port 80"}.Matches("/app/Shop --port 80"));
  EXPECT_TRUE(Pattern{"System.*Exception"}.Matches("System.InvalidOperationException"));
  EXPECT_FALSE(Pattern{"System.*Exception"}.Matches("MyApp.Error"));
  EXPECT_TRUE(Pattern{"pod-[0-9]"}.Matches("pod-7"));
}

TEST(FilterTest, EveryFieldMustMatch) {
  ProcessInfo p = Proc(10);
  p.entry_assembly = "Shop";
  p.k8s_namespace = "prod";
  p.pod = "shop-7d9f-abcde";
  p.container_id = std::string(64, 'a');
  Filter f;
  EXPECT_TRUE(FilterMatches(f, p));
  f.process_name = Pattern{"Shop"};
  f.k8s_namespace = Pattern{"prod"};
  f.pod = Pattern{"shop-*"};
  f.container_id = Pattern{"aaaa*"};
  f.entry_assembly = Pattern{"Shop"};
  f.command_line = Pattern{"*--port*"};
  EXPECT_TRUE(FilterMatches(f, p));
  f.k8s_namespace = Pattern{"staging"};
  EXPECT_FALSE(FilterMatches(f, p));
  f.k8s_namespace.reset();
  p.pod = "";
  EXPECT_FALSE(FilterMatches(f, p));  // a pod filter never matches a process outside pods
}

// dotnet-monitor's algorithm on synthetic counter samples, interval 1 s, window 5 s.
TEST(SustainedWindowTest, NeedsWindowOverIntervalConsecutivePassingSamples) {
  SustainedWindow w;
  const absl::Duration iv = absl::Seconds(1), win = absl::Seconds(5);
  // First passing sample at t=10: target = 10 - 1 + 5 = 14.
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(10), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(11), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(12), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(13), true, iv, win));
  EXPECT_TRUE(w.Add(kT0 + absl::Seconds(14), true, iv, win));  // 5 samples covering 5 s
}

TEST(SustainedWindowTest, AFailingSampleResets) {
  SustainedWindow w;
  const absl::Duration iv = absl::Seconds(1), win = absl::Seconds(3);
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(1), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(2), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(3), false, iv, win));  // target was 3; reset
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(4), true, iv, win));   // new target 6
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(5), true, iv, win));
  EXPECT_TRUE(w.Add(kT0 + absl::Seconds(6), true, iv, win));
}

TEST(SustainedWindowTest, AGapOfMoreThanOneAndAHalfIntervalsRestartsTheSeries) {
  SustainedWindow w;
  const absl::Duration iv = absl::Seconds(1), win = absl::Seconds(3);
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(1), true, iv, win));          // target 3
  EXPECT_FALSE(w.Add(kT0 + absl::Milliseconds(2400), true, iv, win));  // gap 1.4 s: same series
  // Gap 1.6 s (> 1.5 intervals): missed samples, so target = 4 - 1 + 3 = 6, not 3.
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(4), true, iv, win));
  EXPECT_FALSE(w.Add(kT0 + absl::Seconds(5), true, iv, win));
  EXPECT_TRUE(w.Add(kT0 + absl::Seconds(6), true, iv, win));
}

TEST(SustainedWindowTest, ZeroWindowFiresOnTheFirstPassingSample) {
  SustainedWindow w;
  EXPECT_FALSE(w.Add(kT0, false, absl::Seconds(1), absl::ZeroDuration()));
  EXPECT_TRUE(w.Add(kT0 + absl::Seconds(1), true, absl::Seconds(1), absl::ZeroDuration()));
}

TEST(ThresholdTest, StrictComparisonsAndOpenInterval) {
  Trigger t;
  t.greater_than = 10;
  EXPECT_FALSE(PassesThresholds(t, 10));
  EXPECT_TRUE(PassesThresholds(t, 10.5));
  t.less_than = 20;
  EXPECT_TRUE(PassesThresholds(t, 15));
  EXPECT_FALSE(PassesThresholds(t, 20));
  t.greater_than.reset();
  EXPECT_TRUE(PassesThresholds(t, -5));
}

TEST_F(EngineTest, StartupFiresOncePerMatchingProcessAndAnnouncesStartAndExit) {
  Rule r = MakeRule("on-start", TriggerType::kStartup);
  r.filter.process_name = Pattern{"Shop"};
  Build({r});
  Poll({Proc(10), Proc(11, "Other")});
  Poll({Proc(10), Proc(11, "Other")});
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_EQ(runner_.runs[0].pid, 10);
  EXPECT_EQ(runner_.runs[0].rule, "on-start");
  EXPECT_EQ(Events(EventKind::kProcessStart).size(), 2u);
  Poll({Proc(11, "Other")});
  auto exits = Events(EventKind::kProcessExit);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].pid, 10);
  EXPECT_EQ(exits[0].process_name, "Shop");
  // A reused pid (another start time) is a new process: it fires again.
  ProcessInfo again = Proc(10);
  again.start_time += 99;
  Poll({again, Proc(11, "Other")});
  EXPECT_EQ(runner_.runs.size(), 2u);
  // Sequence numbers increase in publication order; rule_fired follows its process_start.
  auto all = bus_.Recent({});
  for (size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
}

// Wake() runs one pass at once (a runtime just connected to a listen port), between two
// scheduled passes an hour apart: a startup rule fires for a process that appears after the
// first pass without waiting for the second.
TEST_F(EngineTest, WakeRunsAPassAtOnceWithoutWaitingForThePollInterval) {
  Rule r = MakeRule("on-start", TriggerType::kStartup);
  r.filter.process_name = Pattern{"Shop"};
  Build({r}, absl::Hours(1));
  std::mutex mu;
  std::condition_variable cv;
  int passes = 0;
  std::vector<ProcessInfo> procs;
  engine_->Start(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        ++passes;
        cv.notify_all();
        return procs;
      },
      [](pid_t) -> absl::StatusOr<ProcSample> { return absl::NotFoundError("no samples"); });
  auto wait_for = [&](int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return passes >= n; });
  };
  ASSERT_TRUE(wait_for(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    procs = {Proc(10)};
  }
  engine_->Wake();
  ASSERT_TRUE(wait_for(2));
  engine_->Stop();  // the pass that listed the process has finished
  EXPECT_EQ(passes, 2);
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_EQ(runner_.runs[0].pid, 10);
}

TEST_F(EngineTest, WorkingSetFiresOnTheFirstPollAboveAndNotBefore) {
  Rule r = MakeRule("ws", TriggerType::kWorkingSet);
  r.trigger.greater_than = 200;  // MB
  Build({r});
  samples_[10].rss_bytes = 150ull << 20;
  Poll({Proc(10)});
  now_ += absl::Seconds(1);
  Poll({Proc(10)});
  EXPECT_TRUE(runner_.runs.empty());
  samples_[10].rss_bytes = 201ull << 20;
  now_ += absl::Seconds(1);
  Poll({Proc(10)});
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_NE(runner_.runs[0].reason.find("working_set > 200 MB: 201 MB"), std::string::npos)
      << runner_.runs[0].reason;
}

TEST_F(EngineTest, SustainedProcfsWindow) {
  Rule r = MakeRule("threads", TriggerType::kThreads);
  r.trigger.greater_than = 50;
  r.trigger.window = absl::Seconds(3);
  Build({r});
  samples_[10].threads = 60;
  for (int i = 0; i < 3; ++i) {  // t = 0, 1, 2: target = 0 - 1 + 3 = 2 → fires at t=2
    Poll({Proc(10)});
    if (i < 2) {
      EXPECT_TRUE(runner_.runs.empty()) << i;
    }
    now_ += absl::Seconds(1);
  }
  EXPECT_EQ(runner_.runs.size(), 1u);
}

TEST_F(EngineTest, CpuIsMeasuredOverTheRecentWindowNotTheLifetime) {
  Rule r = MakeRule("cpu", TriggerType::kCpu);
  r.trigger.greater_than = 50;
  r.trigger.window = absl::Seconds(2);
  Build({r}, absl::Seconds(1));
  const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  // A long idle life: 1000 s of CPU accumulated long ago, none recently.
  samples_[10].cpu_ticks = 1000 * hz;
  for (int i = 0; i < 4; ++i) {
    Poll({Proc(10)});
    now_ += absl::Seconds(1);
  }
  EXPECT_TRUE(runner_.runs.empty());
  // Now it spins one full core: +1 s of CPU per second.
  for (int i = 0; i < 2; ++i) {
    samples_[10].cpu_ticks += hz;
    Poll({Proc(10)});
    now_ += absl::Seconds(1);
  }
  // After one spinning second the 2 s window shows 50% (not above 50); after two, 100%.
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_NE(runner_.runs[0].reason.find("cpu > 50 % over 2s: 100 %"), std::string::npos)
      << runner_.runs[0].reason;
}

TEST_F(EngineTest, CounterTriggerUsesPushedSamplesAndExposesItsSubscription) {
  Rule r = MakeRule("heap", TriggerType::kCounter);
  r.filter.process_name = Pattern{"Shop"};
  r.trigger.provider = "System.Runtime";
  r.trigger.counter = "gc-heap-size";
  r.trigger.greater_than = 10;
  r.trigger.window = absl::Seconds(3);
  r.trigger.counter_interval = absl::Seconds(1);
  Build({r});
  EXPECT_TRUE(engine_->Needs().empty());
  Poll({Proc(10), Proc(11, "Other")});
  auto needs = engine_->Needs();
  ASSERT_EQ(needs.size(), 1u);
  EXPECT_EQ(needs[0].pid, 10);
  ASSERT_EQ(needs[0].counters.count("System.Runtime"), 1u);
  EXPECT_EQ(needs[0].counters.at("System.Runtime"), absl::Seconds(1));
  EXPECT_EQ(needs_changes_, 1);
  absl::Time ts = kT0;
  auto push = [&](double v) {
    engine_->OnCounterSample(Key(10), "System.Runtime", "gc-heap-size", ts, v);
    ts += absl::Seconds(1);
  };
  engine_->OnCounterSample(Key(11), "System.Runtime", "gc-heap-size", ts, 999);  // not matched
  engine_->OnCounterSample(Key(10), "System.Runtime", "cpu-usage", ts, 999);     // other counter
  push(12);
  push(12);
  push(5);  // resets
  push(12);
  push(12);
  EXPECT_TRUE(runner_.runs.empty());
  push(12);  // third consecutive passing sample: 3 s window
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_EQ(runner_.runs[0].pid, 10);
  // The process exits: its subscription is no longer needed.
  engine_->OnProcessExit(Key(10));
  EXPECT_TRUE(engine_->Needs().empty());
  EXPECT_EQ(needs_changes_, 2);
}

TEST_F(EngineTest, ExceptionTriggerMatchesTypeAndMessagePatterns) {
  Rule r = MakeRule("ioe", TriggerType::kException);
  r.trigger.exception_type = Pattern{"System.InvalidOperation*"};
  r.trigger.exception_message = Pattern{"*boom*"};
  Build({r});
  Poll({Proc(10)});
  auto needs = engine_->Needs();
  ASSERT_EQ(needs.size(), 1u);
  EXPECT_TRUE(needs[0].exceptions);
  engine_->OnException(Key(10), "System.ArgumentException", "boom", now_);
  engine_->OnException(Key(10), "System.InvalidOperationException", "quiet", now_);
  EXPECT_TRUE(runner_.runs.empty());
  engine_->OnException(Key(10), "System.InvalidOperationException", "it went boom", now_);
  ASSERT_EQ(runner_.runs.size(), 1u);
}

TEST_F(EngineTest, CrashTriggerFiresForTheCrashingProcess) {
  Build({MakeRule("crash", TriggerType::kCrash)});
  Poll({Proc(10), Proc(11)});
  engine_->OnCrash(Key(11), "System.Exception", "bye", now_);
  ASSERT_EQ(runner_.runs.size(), 1u);
  EXPECT_EQ(runner_.runs[0].pid, 11);
}

TEST_F(EngineTest, ActionCountWithoutWindowFinishesTheRule) {
  Rule r = MakeRule("once", TriggerType::kStartup);
  r.limits.action_count = 1;
  Build({r});
  Poll({Proc(10), Proc(11), Proc(12)});
  EXPECT_EQ(runner_.runs.size(), 1u);
  auto st = engine_->ListRules();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].fires, 1u);
  EXPECT_TRUE(st[0].finished);
  EXPECT_EQ(st[0].finished_reason, "action_count 1 reached");
  EXPECT_EQ(Events(EventKind::kRuleFinished).size(), 1u);
  Poll({Proc(10), Proc(11), Proc(12), Proc(13)});
  EXPECT_EQ(runner_.runs.size(), 1u);
}

TEST_F(EngineTest, ActionCountPerSlidingWindow) {
  Rule r = MakeRule("ws", TriggerType::kWorkingSet);
  r.trigger.greater_than = 1;
  r.limits.action_count = 2;
  r.limits.window = absl::Seconds(10);
  Build({r});
  samples_[10].rss_bytes = 10ull << 20;
  for (int i = 0; i < 5; ++i) {  // t = 0..4: fires at 0 and 1, held back at 2, 3, 4
    Poll({Proc(10)});
    now_ += absl::Seconds(1);
  }
  EXPECT_EQ(runner_.runs.size(), 2u);
  auto st = engine_->ListRules();
  EXPECT_EQ(st[0].fires, 2u);
  EXPECT_EQ(st[0].throttled, 3u);
  ASSERT_TRUE(st[0].next_allowed.has_value());
  EXPECT_EQ(*st[0].next_allowed, kT0 + absl::Seconds(10));  // the first fire ages out
  EXPECT_FALSE(st[0].finished);
  now_ = kT0 + absl::Seconds(10);
  Poll({Proc(10)});
  EXPECT_EQ(runner_.runs.size(), 3u);
  // Three held-back samples, one event: they were held back until the same time.
  EXPECT_EQ(Events(EventKind::kRuleThrottled).size(), 1u);
}

TEST_F(EngineTest, CooldownSpacesActions) {
  Rule r = MakeRule("fds", TriggerType::kFds);
  r.trigger.greater_than = 5;
  r.limits.cooldown = absl::Seconds(3);
  Build({r});
  samples_[10].fds = 50;
  for (int i = 0; i < 7; ++i) {  // fires at t = 0, 3, 6
    Poll({Proc(10)});
    now_ += absl::Seconds(1);
  }
  EXPECT_EQ(runner_.runs.size(), 3u);
  auto st = engine_->ListRules();
  ASSERT_TRUE(st[0].last_fire.has_value());
  EXPECT_EQ(*st[0].last_fire, kT0 + absl::Seconds(6));
  ASSERT_TRUE(st[0].next_allowed.has_value());
  EXPECT_EQ(*st[0].next_allowed, kT0 + absl::Seconds(9));
}

TEST_F(EngineTest, RuleDurationStopsTheRule) {
  Rule r = MakeRule("short", TriggerType::kStartup);
  r.limits.rule_duration = absl::Seconds(5);
  Build({r});
  Poll({Proc(10)});
  now_ += absl::Seconds(6);
  Poll({Proc(10), Proc(11)});
  EXPECT_EQ(runner_.runs.size(), 1u);
  auto st = engine_->ListRules();
  EXPECT_TRUE(st[0].finished);
  EXPECT_EQ(st[0].finished_reason, "rule_duration 5s elapsed");
}

TEST(ProcSamplerTest, ParsesStatAfterTheLastParen) {
  // comm with spaces and parens, as a process may name itself.
  std::string stat =
      "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 17 0 "
      "12345 1000000 2560 18446744073709551615";
  auto s = ParseStat(stat, 4096);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_ticks, 300u);
  EXPECT_EQ(s->threads, 17);
  EXPECT_EQ(s->rss_bytes, 2560u * 4096);
  EXPECT_FALSE(ParseStat("garbage", 4096).ok());
  EXPECT_FALSE(ParseStat("1 (x) S 1 2", 4096).ok());
}

TEST(ProcSamplerTest, SamplesThisProcess) {
  auto s = SampleProcess("/proc", ::getpid());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->rss_bytes, 0u);
  EXPECT_GE(s->threads, 1);
  EXPECT_GE(s->fds, 3);
  EXPECT_EQ(SampleProcess("/proc", 0x7ffffff0).status().code(), absl::StatusCode::kNotFound);
}

// Crash rules: a dump in the catalog fires the rules whose capture includes its way, once per
// crash, within the limits; the action delivers that dump (nothing is collected).
TEST_F(EngineTest, CrashDumpFiresMatchingCrashRulesOncePerCrash) {
  Rule runtime = MakeRule("runtime", TriggerType::kCrash);
  runtime.filter.process_name = Pattern{"Shop"};
  Rule ep = MakeRule("ep", TriggerType::kCrash);
  ep.trigger.crash_capture = Trigger::CrashCapture::kEventPipe;
  ep.trigger.exception_type = Pattern{"System.InvalidOperation*"};
  Rule both = MakeRule("both", TriggerType::kCrash);
  both.trigger.crash_capture = Trigger::CrashCapture::kBoth;
  both.limits.action_count = 1;
  Build({runtime, ep, both});
  Poll({Proc(10), Proc(11, "Other")});
  // Way 2 needs sessions (ep, both); way 1 alone needs none.
  auto needs = engine_->Needs();
  ASSERT_EQ(needs.size(), 2u);
  EXPECT_TRUE(needs[0].crash);
  EXPECT_FALSE(needs[0].exceptions);

  // Way 1 for pid 10 (the process is gone: the facts come with the dump).
  ProcessInfo gone = Proc(10);
  gone.start_time = 0;  // a core file does not say
  auto fired = engine_->OnCrashDump(gone, "d1", "", false, "runtime dump");
  EXPECT_EQ(fired, (std::vector<std::string>{"runtime", "both"}));
  ASSERT_EQ(runner_.delivered.size(), 2u);
  EXPECT_EQ(runner_.delivered[0].reason, "runtime dump -> d1");
  EXPECT_TRUE(runner_.runs.empty()) << "a crash rule collects nothing";
  // The same crash seen the other way: no second fire.
  EXPECT_TRUE(
      engine_->OnCrashDump(Proc(10), "d2", "System.InvalidOperationException", true, "x").empty());
  // Way 2 for another process: the exception pattern and the capture decide; `both` is done
  // (action_count 1).
  ProcessInfo other = Proc(11, "Other");
  EXPECT_TRUE(engine_->OnCrashDump(other, "d3", "System.ArgumentException", true, "x").empty());
  now_ += absl::Minutes(2);
  other.pid = 12;
  fired = engine_->OnCrashDump(other, "d4", "System.InvalidOperationException", true, "y");
  EXPECT_EQ(fired, (std::vector<std::string>{"ep"}));
  EXPECT_EQ(Events(EventKind::kRuleFired).size(), 3u);

  // Speculation: only for a process the engine knows, a matching type, an eventpipe rule.
  ProcessInfo info;
  EXPECT_FALSE(engine_->SpeculationFor(Key(10), "System.ArgumentException", &info).has_value());
  auto spec = engine_->SpeculationFor(Key(10), "System.InvalidOperationException", &info);
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->name, "ep");
  EXPECT_EQ(info.name, "Shop");
  EXPECT_FALSE(engine_->SpeculationFor(Key(99), "System.InvalidOperationException", &info));
}

// Two runtimes in their own pid namespaces both advertise pid 1: each is its own target, with
// its own rule state, session needs and (per_process) limits; one ending leaves the other.
TEST_F(EngineTest, ListenRuntimesWithTheSamePidAreSeparateTargets) {
  Rule start = MakeRule("start", TriggerType::kStartup);
  start.limits.action_count = 1;
  start.limits.per_process = true;
  Rule exc = MakeRule("exc", TriggerType::kException);
  exc.trigger.exception_type = Pattern{"System.Invalid*"};
  exc.limits.action_count = 1;
  exc.limits.per_process = true;
  Build({start, exc});
  const ProcessInfo a = ListenProc(1, "aaaa", "--tag a");
  const ProcessInfo b = ListenProc(1, "bbbb", "--tag b");
  EXPECT_NE(TargetKey(a), TargetKey(b));
  Poll({a, b});
  EXPECT_EQ(Events(EventKind::kProcessStart).size(), 2u);
  ASSERT_EQ(runner_.runs.size(), 2u);
  auto started = Events(EventKind::kRuleFired);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_NE(started[0].runtime_cookie, started[1].runtime_cookie);
  auto needs = engine_->Needs();
  ASSERT_EQ(needs.size(), 2u);
  EXPECT_TRUE(needs[0].listen_only);
  EXPECT_NE(needs[0].target, needs[1].target);
  EXPECT_NE(needs[0].runtime_cookie, needs[1].runtime_cookie);
  // Each target's exception fires its own action once (per_process action_count 1).
  engine_->OnException(TargetKey(a), "System.InvalidOperationException", "x", now_);
  engine_->OnException(TargetKey(a), "System.InvalidOperationException", "x", now_);
  engine_->OnException(TargetKey(b), "System.InvalidOperationException", "y", now_);
  ASSERT_EQ(runner_.runs.size(), 4u);
  EXPECT_EQ(runner_.runs[2].reason, "exception System.InvalidOperationException: x");
  EXPECT_EQ(runner_.runs[3].reason, "exception System.InvalidOperationException: y");
  EXPECT_TRUE(Events(EventKind::kRuleFinished).empty()) << "per_process never finishes the rule";
  EXPECT_TRUE(engine_->Needs().empty()) << "both targets are done with `exc`";
  // `a` ends (its session's stream ended) while the listen port still lists it: no new start.
  engine_->OnProcessExit(TargetKey(a));
  Poll({a, b});
  EXPECT_EQ(Events(EventKind::kProcessStart).size(), 2u);
  EXPECT_EQ(Events(EventKind::kProcessExit).size(), 1u);
  auto rules = engine_->ListRules();
  EXPECT_EQ(rules[0].fires, 2u);
  EXPECT_EQ(rules[0].processes, 1);
}

// Without per_process the limits are the rule's: the second runtime's start is held back.
TEST_F(EngineTest, RuleWideLimitsCountBothListenRuntimes) {
  Rule start = MakeRule("start", TriggerType::kStartup);
  start.limits.action_count = 1;
  Build({start});
  Poll({ListenProc(1, "aaaa", "a"), ListenProc(1, "bbbb", "b")});
  EXPECT_EQ(runner_.runs.size(), 1u);
  EXPECT_EQ(Events(EventKind::kRuleFinished).size(), 1u);
}

// Way 1 with an `exception` pattern: the crash report's type decides; without one the rule
// does not fire and says why.
TEST_F(EngineTest, RuntimeCrashDumpChecksTheExceptionPattern) {
  Rule narrow = MakeRule("narrow", TriggerType::kCrash);
  narrow.trigger.exception_type = Pattern{"System.Invalid*"};
  Rule any = MakeRule("any", TriggerType::kCrash);
  Build({narrow, any});
  ProcessInfo p = Proc(20);
  p.start_time = 0;
  EXPECT_EQ(engine_->OnCrashDump(p, "d1", "System.ArgumentException", false, "r"),
            (std::vector<std::string>{"any"}));
  p.pid = 21;
  EXPECT_EQ(engine_->OnCrashDump(p, "d2", "System.InvalidOperationException", false, "r"),
            (std::vector<std::string>{"narrow", "any"}));
  p.pid = 22;
  EXPECT_EQ(engine_->OnCrashDump(p, "d3", "", false, "r"), (std::vector<std::string>{"any"}));
  auto skipped = Events(EventKind::kRuleSkipped);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].dump_id, "d1");
  EXPECT_NE(skipped[0].message.find("does not match exception pattern System.Invalid*"),
            std::string::npos)
      << skipped[0].message;
  EXPECT_NE(skipped[1].message.find("no crash report"), std::string::npos) << skipped[1].message;
}

}  // namespace
}  // namespace clrdiag::automation
