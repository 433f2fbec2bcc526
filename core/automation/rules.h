// The model of collection rules (config keys `collection_rules`, `egress`, `automation`): what
// the daemon watches for and what it does when it sees it. Plain data; the daemon's config
// loader fills it from YAML, the engine (engine.h) evaluates it. No YAML, gRPC or I/O here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clrdiag::automation {

// A value to match: exact text, or a shell glob when it holds '*', '?' or '[' (fnmatch(3),
// without FNM_PATHNAME: '*' also matches '/').
struct Pattern {
  std::string text;
  bool Matches(const std::string& value) const;
  bool is_glob() const;
};

// Which processes a rule applies to; every field set must match (AND). Empty: all processes.
struct Filter {
  std::optional<Pattern> process_name;    // ProcessFacts::name (the executable's file name)
  std::optional<Pattern> command_line;    // argv joined with spaces
  std::optional<Pattern> entry_assembly;  // from the runtime's ProcessInfo2 ("" if unknown)
  std::optional<Pattern> k8s_namespace;   // pod namespace (k8s_identity.h)
  std::optional<Pattern> pod;             // pod name
  std::optional<Pattern> container_id;    // 64-hex container id
};

enum class TriggerType {
  kStartup,     // a matching process appears (fires once per process)
  kWorkingSet,  // resident set size, MB (procfs)
  kCpu,         // % of one core over `window` (procfs utime+stime deltas)
  kThreads,     // number of threads (procfs)
  kFds,         // open file descriptors (procfs)
  kCounter,     // an EventCounter (fed through Engine::OnCounterSample)
  kException,   // a first-chance exception (fed through Engine::OnException)
  kCrash,       // an unhandled exception / fatal signal (fed through Engine::OnCrash)
};
const char* TriggerTypeName(TriggerType t);  // the config spelling: "working_set", ...

struct Trigger {
  TriggerType type = TriggerType::kStartup;
  // Thresholds: a sample passes when value > greater_than and/or value < less_than (strict, as
  // dotnet-monitor). At least one is set for every threshold trigger (procfs and counter).
  std::optional<double> greater_than;
  std::optional<double> less_than;
  // How long the condition must hold (dotnet-monitor's sliding window, engine.h). For `cpu`
  // also the span the CPU percentage is measured over. Zero: the first passing sample fires
  // (procfs triggers); counter triggers default to 1 minute as dotnet-monitor.
  absl::Duration window = absl::ZeroDuration();
  // kCounter (also the shortcuts gc_heap_size, cpu_usage, threadpool_queue_length,
  // exception_rate, which set these): the EventSource and counter names.
  std::string provider;
  std::string counter;
  // The EventCounterIntervalSec the counter session is asked for (automation.counter_interval
  // unless the rule sets `interval`).
  absl::Duration counter_interval = absl::Seconds(1);
  // kException: the exception's full type name; optional message pattern.
  Pattern exception_type;
  std::optional<Pattern> exception_message;
  // kCrash: how a crash dump is had (docs/crash-capture.md). kRuntime: the runtime's own crash
  // dump, ingested from a watched directory (crash_dumps.directories), fires the rule; no
  // runtime session is held. kEventPipe: an EventPipe session (exception events) on each
  // matching process; a dump is requested the moment a matching exception is thrown, kept only
  // if the process then dies without catching it. kBoth: either (one fire per crash).
  enum class CrashCapture { kRuntime, kEventPipe, kBoth };
  CrashCapture crash_capture = CrashCapture::kRuntime;
  // kCrash with EventPipe capture (the dump's type is the action's collect.type): how long the
  // process has to die after the throw for the crash to count; at most `speculative_max`
  // speculative dumps per process per `speculative_window` (a handled exception costs a dump,
  // then deleted). exception_type (key `exception`, default "*") says which thrown types are
  // worth a dump; on way 1 it is checked against the crash report's unhandled exception type
  // (<dump>.crashreport.json): without one, a pattern other than "*" does not fire.
  absl::Duration confirm_window = absl::Seconds(3);
  int speculative_max = 3;
  absl::Duration speculative_window = absl::Minutes(10);
  bool crash_runtime() const { return crash_capture != CrashCapture::kEventPipe; }
  bool crash_eventpipe() const { return crash_capture != CrashCapture::kRuntime; }
  // The name the rule's config used ("gc_heap_size" for a shortcut), for display.
  std::string shortcut;
  bool is_procfs() const {
    return type == TriggerType::kWorkingSet || type == TriggerType::kCpu ||
           type == TriggerType::kThreads || type == TriggerType::kFds;
  }
  bool is_threshold() const { return is_procfs() || type == TriggerType::kCounter; }
};

// When a rule may act: per rule, across the processes it matches; with `per_process`,
// action_count, window and cooldown count each target (engine.h: TargetKey) on its own.
struct Limits {
  // At most `action_count` actions per sliding `window`; without a window, at most
  // `action_count` over the rule's whole life (then the rule is finished), as dotnet-monitor.
  int action_count = 5;
  absl::Duration window = absl::ZeroDuration();
  // The rule stops watching this long after the daemon started it (zero: never).
  absl::Duration rule_duration = absl::ZeroDuration();
  // At least this long between two actions of the rule (zero: no pause).
  absl::Duration cooldown = absl::ZeroDuration();
  // action_count, window and cooldown per target instead of per rule; the rule then never
  // finishes by action_count (a target that reached it is left alone). rule_duration stays
  // per rule.
  bool per_process = false;
};

// Dump types with dotnet-dump's names (the core/dump DumpKind spelled as text here, so this
// library does not depend on the dump store): "Full", "Heap", "Mini", "Triage".
struct CollectAction {
  std::string type = "Full";
  bool diag = false;          // flags: [diag]
  bool crash_report = false;  // flags: [crash_report]
};

struct Action {
  CollectAction collect;
  std::vector<std::string> egress;  // names of `egress` entries, in order
};

struct Rule {
  std::string name;
  Filter filter;
  Trigger trigger;
  Action action;
  Limits limits;
};

// One egress target (config `egress.<name>`).
struct EgressConfig {
  enum class Type { kFilesystem, kS3 };
  std::string name;
  Type type = Type::kFilesystem;
  // Expanded with core/base/egress_prefix.h, then the dump's file name appended.
  std::string prefix;
  // kFilesystem
  std::string directory;
  // kS3
  std::string endpoint;  // "http(s)://host[:port]"
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key_id;
  std::string secret_access_key_file;  // absolute path; read when the egress is built
  bool path_style = false;
};

// Engine-wide settings (config key `automation`).
struct AutomationOptions {
  absl::Duration poll_interval = absl::Seconds(1);     // procfs triggers and process discovery
  absl::Duration counter_interval = absl::Seconds(1);  // default EventCounterIntervalSec
  size_t event_buffer = 1000;                          // recent events kept for replay
};

struct AutomationConfig {
  AutomationOptions options;
  std::vector<Rule> rules;
  std::vector<EgressConfig> egress;
  const EgressConfig* FindEgress(const std::string& name) const;
};

}  // namespace clrdiag::automation
