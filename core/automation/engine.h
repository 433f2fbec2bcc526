// The rules engine: matches processes against rules' filters, evaluates triggers and limits,
// and hands each permitted action to an ActionRunner. It does no I/O of its own:
//   - procfs triggers (working_set, cpu, threads, fds) and startup: Poll() with the current
//     process list and a sampler (the daemon calls it every automation.poll_interval from
//     Start()'s thread; tests call it directly with synthetic samples and times);
//   - counter, exception and crash triggers: samples pushed by whoever reads the runtime's
//     EventPipe stream, through OnCounterSample / OnException / OnCrash. Needs() says which
//     sessions that reader should hold (one per process), and `on_needs_changed` fires when
//     that set changes.
// Sustained conditions use dotnet-monitor's algorithm: a sample passes when it is strictly
// above greater_than / below less_than; a failing sample resets the series; the first passing
// sample at time t sets target = t - interval + window; a gap of more than 1.5 intervals
// between samples restarts the series; the trigger is satisfied when a passing sample's time
// reaches the target. After it fires (or is held back by limits) the series starts afresh.
// Limits are per rule across all the processes it matches, or per target with
// `limits.per_process`.
//
// Targets are keyed by runtime identity, not by pid (TargetKey): a process the daemon sees in
// /proc by (host pid, start time), one instance of it; a runtime known only through a listen
// port by its runtime instance cookie, since runtimes in other pid namespaces may advertise the
// same pid (each is pid 1 of its container). Each target has its own rule state, EventPipe
// session (ProcessNeeds::target) and, with per_process limits, its own limits.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/automation/events.h"
#include "core/automation/rules.h"

namespace clrdiag::automation {

// What filters match against (the daemon fills it from the inventory).
struct ProcessInfo {
  pid_t pid = 0;
  uint64_t start_time = 0;  // with pid, the process instance (a reused pid is a new process)
  int64_t uid = -1;         // real uid (-1: unknown)
  std::string name;
  std::string command_line;    // argv joined with spaces
  std::string entry_assembly;  // "" until the runtime said
  std::string k8s_namespace;
  std::string pod;
  std::string container_id;
  // The runtime instance cookie (hex; "" until the runtime said) and whether the process is
  // known only through a listen port (its pid is the one it advertised, in its own namespace).
  std::string runtime_cookie;
  bool listen_only = false;
};
bool FilterMatches(const Filter& f, const ProcessInfo& p);

// The key a target is tracked by: "runtime <cookie>" for a listen-only runtime, else
// "pid <pid> start <start_time>".
std::string TargetKey(const ProcessInfo& p);

// One procfs reading of a process.
struct ProcSample {
  absl::Time time;
  uint64_t rss_bytes = 0;
  uint64_t cpu_ticks = 0;  // utime + stime, clock ticks
  int64_t threads = 0;
  int64_t fds = 0;
};
using Sampler = std::function<absl::StatusOr<ProcSample>(pid_t)>;

// dotnet-monitor's sustained-window condition (see the top of this file), exposed for tests.
class SustainedWindow {
 public:
  // Adds one sample; returns true when the condition is now satisfied.
  bool Add(absl::Time ts, bool passes, absl::Duration interval, absl::Duration window);
  void Reset() {
    target_.reset();
    last_.reset();
  }

 private:
  std::optional<absl::Time> target_;
  std::optional<absl::Time> last_;
};

// Whether `value` passes the trigger's thresholds (strict comparisons).
bool PassesThresholds(const Trigger& t, double value);

// Performs a rule's action (collect, egress). Called without the engine's locks held, from the
// thread that delivered the triggering sample; must not block for long (queue the work).
class ActionRunner {
 public:
  virtual ~ActionRunner() = default;
  virtual void Run(const Rule& rule, const ProcessInfo& process, const std::string& reason) = 0;
  // A crash rule fired on a dump already in the catalog (the process is gone: nothing to
  // collect): send dump `dump_id` to the rule's egress. The default does nothing.
  virtual void Deliver(const Rule& /*rule*/, const ProcessInfo& /*process*/,
                       const std::string& /*reason*/, const std::string& /*dump_id*/) {}
};

// What the EventPipe reader should subscribe to for one process.
struct ProcessNeeds {
  std::string target;  // TargetKey
  pid_t pid = 0;
  bool listen_only = false;    // reach it through its listen port (by runtime_cookie)
  std::string runtime_cookie;  // hex
  // provider → EventCounterIntervalSec (the smallest any rule asks for)
  std::map<std::string, absl::Duration> counters;
  bool exceptions = false;  // runtime provider, exception keyword (ExceptionThrown)
  bool crash = false;       // crash capture way 2: exception events with catch/filter events
  bool operator==(const ProcessNeeds&) const = default;
};

// A rule as ListRules shows it.
struct RuleStatus {
  std::string name;
  std::string trigger;  // e.g. "working_set > 200 MB", "counter System.Runtime/gc-heap-size > 10"
  uint64_t fires = 0;   // actions started
  uint64_t throttled = 0;  // satisfied triggers the limits held back
  std::optional<absl::Time> last_fire;
  // When the next action may start: nullopt = now (or never, when finished).
  std::optional<absl::Time> next_allowed;
  bool finished = false;
  std::string finished_reason;
  int processes = 0;  // processes the filter matches now
};

struct EngineOptions {
  AutomationOptions automation;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Called (without locks) when Needs() changes; may be empty.
  std::function<void()> on_needs_changed;
};

class Engine {
 public:
  Engine(std::vector<Rule> rules, EngineOptions options, EventBus* bus, ActionRunner* runner);
  ~Engine();

  // One procfs pass: `processes` is every .NET process now; new ones are announced
  // (process_start) and checked for startup triggers, gone ones announced (process_exit);
  // matching processes are sampled (only when some rule needs procfs triggers) at time `now`.
  void Poll(const std::vector<ProcessInfo>& processes, const Sampler& sample);

  // Pushed by the EventPipe reader. `timestamp` is the sample's own time (its series is
  // judged on these times); limits use the engine's clock. Values of unknown processes and
  // counters no rule watches are ignored.
  // `target` is the process's TargetKey.
  void OnCounterSample(const std::string& target, const std::string& provider,
                       const std::string& counter, absl::Time timestamp, double value);
  void OnException(const std::string& target, const std::string& type, const std::string& message,
                   absl::Time timestamp);
  // An unhandled exception (or fatal error) reported by the runtime before it dies.
  void OnCrash(const std::string& target, const std::string& type, const std::string& message,
               absl::Time timestamp);
  // A crash dump is in the catalog: the runtime's own (way 1, `eventpipe` false) or a
  // speculative dump confirmed by the process's death (way 2). Each crash rule whose capture
  // includes that way and whose filter matches `process` (the facts the dump carries: the
  // process may be gone from Poll's list) fires, within its limits, once per process instance
  // (pid, start_time; a crash seen both ways fires once). The action delivers the dump (no
  // collection). `exception_type`: the unhandled exception's type, "" when unknown (way 1 with
  // no crash report, or a report naming none). A rule whose `exception` pattern is not "*"
  // fires only when the type is known and matches; otherwise it publishes rule_skipped saying
  // why. Returns the rules that fired.
  std::vector<std::string> OnCrashDump(const ProcessInfo& process, const std::string& dump_id,
                                       const std::string& exception_type, bool eventpipe,
                                       const std::string& reason);
  // Way 2: whether an exception of `type` thrown in `pid` is worth a speculative dump now: some
  // unfinished crash rule with EventPipe capture matches the process and the type, and its
  // limits would let it act. Returns that rule (its confirm window and speculative limits) and
  // fills `process`; nullopt otherwise.
  std::optional<Rule> SpeculationFor(const std::string& target, const std::string& type,
                                     ProcessInfo* process) const;
  // The process ended (the reader saw EOF and the pid is gone); also found by Poll().
  void OnProcessExit(const std::string& target);

  std::vector<ProcessNeeds> Needs() const;
  std::vector<RuleStatus> ListRules() const;
  const std::vector<Rule>& rules() const { return rules_; }

  // Runs Poll every poll_interval on its own thread with these callbacks until Stop().
  void Start(std::function<std::vector<ProcessInfo>()> list, Sampler sample);
  void Stop();
  // Runs one extra pass of Start()'s loop now (e.g. a runtime just connected to a listen port:
  // its startup rules fire without waiting for the next poll); the fixed schedule is kept.
  void Wake();

 private:
  struct TriggerState {
    SustainedWindow sustained;
    bool startup_done = false;
  };
  struct ProcState {
    ProcessInfo info;
    std::map<size_t, TriggerState> rules;             // rule index → state, for rules that match
    std::deque<std::pair<absl::Time, uint64_t>> cpu;  // (time, ticks) history
  };
  // The fires limits count: of the whole rule, or of one target (limits.per_process).
  struct LimitState {
    std::deque<absl::Time> fires;  // within limits.window (all, without a window)
    uint64_t fire_count = 0;
    std::optional<absl::Time> throttle_reported;  // the hold-back end last announced
    std::optional<absl::Time> last_fire;
  };
  struct RuleRuntime {
    absl::Time started;
    LimitState all;
    std::map<std::string, LimitState> targets;  // limits.per_process: by TargetKey
    uint64_t throttled = 0;
    bool finished = false;
    std::string finished_reason;
  };
  struct Pending {
    size_t rule;
    ProcessInfo process;
    std::string reason;
    std::string dump_id;  // crash rules: the dump to deliver (no collection)
  };

  // Under mu_: the limits' verdict at `now`; records the fire when allowed.
  bool Admit(size_t rule, const ProcessInfo& p, const std::string& reason, absl::Time now,
             std::vector<Event>* events);
  std::optional<absl::Time> NextAllowed(size_t rule, const LimitState& rt, absl::Time now) const;
  // The state limits count for `rule` on target `key`; nullptr when per target and none yet.
  const LimitState* LimitsOf(size_t rule, const std::string& key) const;
  // Whether the rule is done with target `key` (per_process, action_count reached, no window).
  bool TargetDone(size_t rule, const std::string& key) const;
  void CheckFinished(size_t rule, absl::Time now, std::vector<Event>* events);
  void Fire(size_t rule, const ProcessInfo& p, const std::string& reason, absl::Time now,
            std::vector<Pending>* pending, std::vector<Event>* events);
  void Dispatch(const std::vector<Pending>& pending, std::vector<Event> events, bool needs_changed);
  std::vector<ProcessNeeds> NeedsLocked() const;
  void MatchRules(ProcState& ps);
  // One runtime event of `pid`, offered to each unfinished rule that matches the process:
  // `fires(rule, state)` says why the rule fires (nullopt: it does not).
  void OfferEvent(const std::string& target,
                  const std::function<std::optional<std::string>(size_t, TriggerState&)>& fires);

  std::vector<Rule> rules_;
  EngineOptions options_;
  EventBus* bus_;
  ActionRunner* runner_;
  absl::Duration max_cpu_window_ = absl::ZeroDuration();
  bool any_procfs_ = false;

  mutable std::mutex mu_;
  std::map<std::string, ProcState> procs_;  // by TargetKey
  // Listen runtimes whose end the EventPipe reader reported, and when, while Poll may still
  // list them (for the port's reconnect grace): not taken for new processes during
  // kEndedGrace. A runtime still listed after it (the stream broke, the runtime lives) is
  // taken again.
  std::map<std::string, absl::Time> ended_;
  // Drops the per-process limit state of a target that is gone for good.
  void ForgetTargetLocked(const std::string& key);
  std::vector<RuleRuntime> runtime_;
  std::vector<ProcessNeeds> last_needs_;
  // Crash rule fires per process instance (pid, start_time) and when: one fire per crash.
  std::map<std::pair<pid_t, uint64_t>, absl::Time> crash_fired_;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

// Describes a trigger for people: "working_set > 200 MB for 5s".
std::string DescribeTrigger(const Trigger& t);

}  // namespace clrdiag::automation
