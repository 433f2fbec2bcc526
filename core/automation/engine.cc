#include "core/automation/engine.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::automation {
namespace {

// How long a listen runtime whose EventPipe stream ended is not taken for a new process while
// the port still lists it (the port keeps a gone runtime listed for its 2 s reconnect grace).
constexpr absl::Duration kEndedGrace = absl::Seconds(10);

bool Match(const std::optional<Pattern>& p, const std::string& v) { return !p || p->Matches(v); }

std::string FormatNumber(double v) { return absl::StrFormat("%g", v); }

const char* Unit(TriggerType t) {
  switch (t) {
    case TriggerType::kWorkingSet:
      return " MB";
    case TriggerType::kCpu:
      return " %";
    default:
      return "";
  }
}

int64_t TicksPerSecond() {
  static const int64_t hz = [] {
    long v = ::sysconf(_SC_CLK_TCK);
    return v > 0 ? static_cast<int64_t>(v) : int64_t{100};
  }();
  return hz;
}

}  // namespace

std::string TargetKey(const ProcessInfo& p) {
  if (p.listen_only && !p.runtime_cookie.empty()) return "runtime " + p.runtime_cookie;
  return absl::StrCat("pid ", p.pid, " start ", p.start_time);
}

bool FilterMatches(const Filter& f, const ProcessInfo& p) {
  return Match(f.process_name, p.name) && Match(f.command_line, p.command_line) &&
         Match(f.entry_assembly, p.entry_assembly) && Match(f.k8s_namespace, p.k8s_namespace) &&
         Match(f.pod, p.pod) && Match(f.container_id, p.container_id);
}

bool SustainedWindow::Add(absl::Time ts, bool passes, absl::Duration interval,
                          absl::Duration window) {
  if (!passes) {
    Reset();
    return false;
  }
  // A gap of more than 1.5 intervals: samples were missed, the series starts again.
  if (last_ && ts - *last_ > interval * 1.5) target_.reset();
  if (!target_) target_ = ts - interval + window;
  last_ = ts;
  return ts >= *target_;
}

bool PassesThresholds(const Trigger& t, double value) {
  if (t.greater_than && !(value > *t.greater_than)) return false;
  if (t.less_than && !(value < *t.less_than)) return false;
  return true;
}

std::string DescribeTrigger(const Trigger& t) {
  std::string what;
  switch (t.type) {
    case TriggerType::kStartup:
      return "startup";
    case TriggerType::kCrash:
      what = "crash";
      if (t.crash_capture == Trigger::CrashCapture::kEventPipe) what += " (eventpipe)";
      if (t.crash_capture == Trigger::CrashCapture::kBoth) what += " (runtime, eventpipe)";
      if (t.crash_eventpipe() && t.exception_type.text != "*") {
        absl::StrAppend(&what, " exception ", t.exception_type.text);
      }
      return what;
    case TriggerType::kException:
      what = "exception " + t.exception_type.text;
      if (t.exception_message) absl::StrAppend(&what, " message ", t.exception_message->text);
      return what;
    case TriggerType::kCounter:
      what = absl::StrCat(t.shortcut.empty() ? "counter" : t.shortcut, " ", t.provider, "/",
                          t.counter);
      break;
    default:
      what = TriggerTypeName(t.type);
  }
  if (t.greater_than) absl::StrAppend(&what, " > ", FormatNumber(*t.greater_than), Unit(t.type));
  if (t.less_than) absl::StrAppend(&what, " < ", FormatNumber(*t.less_than), Unit(t.type));
  if (t.window > absl::ZeroDuration()) {
    absl::StrAppend(&what, t.type == TriggerType::kCpu ? " over " : " for ",
                    absl::FormatDuration(t.window));
  }
  return what;
}

Engine::Engine(std::vector<Rule> rules, EngineOptions options, EventBus* bus, ActionRunner* runner)
    : rules_(std::move(rules)), options_(std::move(options)), bus_(bus), runner_(runner) {
  const absl::Time now = options_.clock();
  runtime_.resize(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    runtime_[i].started = now;
    const Trigger& t = rules_[i].trigger;
    any_procfs_ |= t.is_procfs();
    if (t.type == TriggerType::kCpu) max_cpu_window_ = std::max(max_cpu_window_, t.window);
  }
}

Engine::~Engine() { Stop(); }

void Engine::MatchRules(ProcState& ps) {
  for (size_t i = 0; i < rules_.size(); ++i) {
    bool match = FilterMatches(rules_[i].filter, ps.info);
    if (match) {
      ps.rules.try_emplace(i);
    } else {
      ps.rules.erase(i);
    }
  }
}

void Engine::ForgetTargetLocked(const std::string& key) {
  for (RuleRuntime& rr : runtime_) rr.targets.erase(key);
}

const Engine::LimitState* Engine::LimitsOf(size_t rule, const std::string& key) const {
  const RuleRuntime& rt = runtime_[rule];
  if (!rules_[rule].limits.per_process) return &rt.all;
  auto it = rt.targets.find(key);
  return it == rt.targets.end() ? nullptr : &it->second;
}

bool Engine::TargetDone(size_t rule, const std::string& key) const {
  const Limits& l = rules_[rule].limits;
  if (!l.per_process || l.window > absl::ZeroDuration()) return false;
  const LimitState* ls = LimitsOf(rule, key);
  return ls != nullptr && ls->fire_count >= static_cast<uint64_t>(l.action_count);
}

std::optional<absl::Time> Engine::NextAllowed(size_t rule, const LimitState& rt,
                                              absl::Time now) const {
  const Limits& l = rules_[rule].limits;
  std::optional<absl::Time> next;
  auto later = [&](absl::Time t) {
    if (t > now && (!next || t > *next)) next = t;
  };
  if (l.cooldown > absl::ZeroDuration() && rt.last_fire) later(*rt.last_fire + l.cooldown);
  if (l.window > absl::ZeroDuration()) {
    // The oldest fires in the window must age out until fewer than action_count remain.
    std::vector<absl::Time> in;
    for (absl::Time t : rt.fires) {
      if (t > now - l.window) in.push_back(t);
    }
    if (static_cast<int>(in.size()) >= l.action_count) {
      later(in[in.size() - static_cast<size_t>(l.action_count)] + l.window);
    }
  }
  return next;
}

void Engine::CheckFinished(size_t rule, absl::Time now, std::vector<Event>* events) {
  RuleRuntime& rt = runtime_[rule];
  if (rt.finished) return;
  const Limits& l = rules_[rule].limits;
  if (l.rule_duration > absl::ZeroDuration() && now - rt.started >= l.rule_duration) {
    rt.finished = true;
    rt.finished_reason =
        absl::StrCat("rule_duration ", absl::FormatDuration(l.rule_duration), " elapsed");
  } else if (!l.per_process && l.window == absl::ZeroDuration() &&
             rt.all.fire_count >= static_cast<uint64_t>(l.action_count)) {
    rt.finished = true;
    rt.finished_reason = absl::StrCat("action_count ", l.action_count, " reached");
  }
  if (rt.finished) {
    Event e;
    e.kind = EventKind::kRuleFinished;
    e.rule = rules_[rule].name;
    e.message = rt.finished_reason;
    events->push_back(std::move(e));
  }
}

bool Engine::Admit(size_t rule, const ProcessInfo& p, const std::string& reason, absl::Time now,
                   std::vector<Event>* events) {
  CheckFinished(rule, now, events);
  RuleRuntime& rr = runtime_[rule];
  if (rr.finished) return false;
  const Limits& l = rules_[rule].limits;
  const std::string key = TargetKey(p);
  if (TargetDone(rule, key)) return false;  // this target had its action_count
  LimitState& rt = l.per_process ? rr.targets[key] : rr.all;
  if (l.window > absl::ZeroDuration()) {
    while (!rt.fires.empty() && rt.fires.front() <= now - l.window) rt.fires.pop_front();
  }
  std::optional<absl::Time> next = NextAllowed(rule, rt, now);
  if (next) {
    ++rr.throttled;
    // One event per hold-back period, not one per sample.
    if (rt.throttle_reported == next) return false;
    rt.throttle_reported = next;
    Event e;
    e.kind = EventKind::kRuleThrottled;
    e.rule = rules_[rule].name;
    e.pid = p.pid;
    e.runtime_cookie = p.listen_only ? p.runtime_cookie : "";
    e.process_name = p.name;
    e.uid = p.uid;
    e.message = absl::StrCat(reason, "; held back by the limits until ",
                             absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", *next, absl::UTCTimeZone()));
    events->push_back(std::move(e));
    return false;
  }
  rt.fires.push_back(now);
  ++rt.fire_count;
  rt.last_fire = now;
  if (l.per_process) {  // the rule's totals, for ListRules
    ++rr.all.fire_count;
    rr.all.last_fire = now;
  }
  return true;
}

void Engine::Fire(size_t rule, const ProcessInfo& p, const std::string& reason, absl::Time now,
                  std::vector<Pending>* pending, std::vector<Event>* events) {
  if (!Admit(rule, p, reason, now, events)) return;
  Event e;
  e.kind = EventKind::kRuleFired;
  e.rule = rules_[rule].name;
  e.pid = p.pid;
  e.runtime_cookie = p.listen_only ? p.runtime_cookie : "";
  e.process_name = p.name;
  e.uid = p.uid;
  e.message = reason;
  events->push_back(std::move(e));
  pending->push_back({rule, p, reason, ""});
  CheckFinished(rule, now, events);  // action_count reached: say so now
}

void Engine::Dispatch(const std::vector<Pending>& pending, std::vector<Event> events,
                      bool needs_changed) {
  // Events first, so rule_fired precedes whatever the action reports.
  if (bus_) {
    for (auto& e : events) bus_->Publish(std::move(e));
  }
  if (runner_) {
    for (const auto& p : pending) {
      if (p.dump_id.empty()) {
        runner_->Run(rules_[p.rule], p.process, p.reason);
      } else {
        runner_->Deliver(rules_[p.rule], p.process, p.reason, p.dump_id);
      }
    }
  }
  if (needs_changed && options_.on_needs_changed) options_.on_needs_changed();
}

std::vector<ProcessNeeds> Engine::NeedsLocked() const {
  std::vector<ProcessNeeds> out;
  for (const auto& [key, ps] : procs_) {
    ProcessNeeds n;
    n.target = key;
    n.pid = ps.info.pid;
    n.listen_only = ps.info.listen_only;
    n.runtime_cookie = ps.info.runtime_cookie;
    for (const auto& [idx, st] : ps.rules) {
      if (runtime_[idx].finished || TargetDone(idx, key)) continue;
      const Trigger& t = rules_[idx].trigger;
      if (t.type == TriggerType::kCounter) {
        auto [it, added] = n.counters.try_emplace(t.provider, t.counter_interval);
        if (!added) it->second = std::min(it->second, t.counter_interval);
      } else if (t.type == TriggerType::kException) {
        n.exceptions = true;
      } else if (t.type == TriggerType::kCrash && t.crash_eventpipe()) {
        n.crash = true;
      }
    }
    if (!n.counters.empty() || n.exceptions || n.crash) out.push_back(std::move(n));
  }
  return out;
}

std::vector<ProcessNeeds> Engine::Needs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return NeedsLocked();
}

void Engine::Poll(const std::vector<ProcessInfo>& processes, const Sampler& sample) {
  std::vector<Pending> pending;
  std::vector<Event> events;
  bool needs_changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = options_.clock();
    // A reused pid has another start time, so another key: the old process is gone.
    std::set<std::string> seen;
    std::map<std::string, absl::Time> still_ended;
    std::set<std::string> listed;
    for (const ProcessInfo& info : processes) {
      const std::string key = TargetKey(info);
      listed.insert(key);
      if (auto e = ended_.find(key); e != ended_.end() && now - e->second < kEndedGrace) {
        still_ended.insert(*e);
        continue;
      }
      seen.insert(key);
      auto it = procs_.find(key);
      if (it == procs_.end()) {
        it = procs_.emplace(key, ProcState{}).first;
        it->second.info = info;
        Event e;
        e.kind = EventKind::kProcessStart;
        e.pid = info.pid;
        e.runtime_cookie = info.listen_only ? info.runtime_cookie : "";
        e.process_name = info.name;
        e.uid = info.uid;
        e.message = info.command_line;
        events.push_back(std::move(e));
      } else {
        it->second.info = info;  // facts may fill in (entry assembly once the runtime answers)
      }
      MatchRules(it->second);
    }
    for (auto it = procs_.begin(); it != procs_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      Event e;
      e.kind = EventKind::kProcessExit;
      e.pid = it->second.info.pid;
      e.runtime_cookie = it->second.info.listen_only ? it->second.info.runtime_cookie : "";
      e.process_name = it->second.info.name;
      e.uid = it->second.info.uid;
      events.push_back(std::move(e));
      ForgetTargetLocked(it->first);
      it = procs_.erase(it);
    }
    for (const auto& [key, when] : ended_) {
      if (!listed.count(key)) ForgetTargetLocked(key);  // gone from the port's list too
    }
    ended_.swap(still_ended);  // forgotten once the list no longer has them
    for (size_t i = 0; i < rules_.size(); ++i) CheckFinished(i, now, &events);

    const absl::Duration interval = options_.automation.poll_interval;
    for (auto& [key, ps] : procs_) {
      std::optional<ProcSample> s;
      bool sampled = false;
      for (auto& [idx, st] : ps.rules) {
        if (runtime_[idx].finished || TargetDone(idx, key)) continue;
        const Rule& rule = rules_[idx];
        const Trigger& t = rule.trigger;
        if (t.type == TriggerType::kStartup) {
          if (!st.startup_done) {
            st.startup_done = true;
            Fire(idx, ps.info, "process started", now, &pending, &events);
          }
          continue;
        }
        // A listen-only runtime's pid is not ours to read in /proc.
        if (!t.is_procfs() || ps.info.listen_only) continue;
        if (!sampled) {
          sampled = true;
          auto r = sample(ps.info.pid);
          if (r.ok()) {
            s = *r;
            ps.cpu.emplace_back(s->time, s->cpu_ticks);
            while (ps.cpu.size() > 2 && ps.cpu[1].first <= s->time - max_cpu_window_ - interval) {
              ps.cpu.pop_front();
            }
          }
        }
        if (!s) continue;
        double value = 0;
        switch (t.type) {
          case TriggerType::kWorkingSet:
            value = static_cast<double>(s->rss_bytes) / (1024.0 * 1024.0);
            break;
          case TriggerType::kThreads:
            value = static_cast<double>(s->threads);
            break;
          case TriggerType::kFds:
            value = static_cast<double>(s->fds);
            break;
          case TriggerType::kCpu: {
            // The newest reading at least `window` old: CPU over (at least) the window.
            const std::pair<absl::Time, uint64_t>* base = nullptr;
            for (const auto& h : ps.cpu) {
              if (h.first <= s->time - t.window) base = &h;
            }
            if (!base) continue;  // not watched for a whole window yet
            double secs = absl::ToDoubleSeconds(s->time - base->first);
            if (secs <= 0) continue;
            value = static_cast<double>(s->cpu_ticks - std::min(s->cpu_ticks, base->second)) /
                    static_cast<double>(TicksPerSecond()) / secs * 100.0;
            break;
          }
          default:
            continue;
        }
        const absl::Duration window = t.type == TriggerType::kCpu ? absl::ZeroDuration() : t.window;
        if (st.sustained.Add(s->time, PassesThresholds(t, value), interval, window)) {
          st.sustained.Reset();
          Fire(idx, ps.info,
               absl::StrCat(DescribeTrigger(t), ": ", FormatNumber(value), Unit(t.type)), now,
               &pending, &events);
        }
      }
    }
    std::vector<ProcessNeeds> needs = NeedsLocked();
    needs_changed = needs != last_needs_;
    if (needs_changed) last_needs_ = std::move(needs);
  }
  Dispatch(pending, std::move(events), needs_changed);
}

void Engine::OfferEvent(
    const std::string& target,
    const std::function<std::optional<std::string>(size_t, TriggerState&)>& fires) {
  std::vector<Pending> pending;
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = procs_.find(target);
    if (it == procs_.end()) return;
    const absl::Time now = options_.clock();
    for (auto& [idx, st] : it->second.rules) {
      if (runtime_[idx].finished || TargetDone(idx, target)) continue;
      if (auto reason = fires(idx, st)) Fire(idx, it->second.info, *reason, now, &pending, &events);
    }
  }
  Dispatch(pending, std::move(events), false);
}

void Engine::OnCounterSample(const std::string& target, const std::string& provider,
                             const std::string& counter, absl::Time timestamp, double value) {
  OfferEvent(target, [&](size_t idx, TriggerState& st) -> std::optional<std::string> {
    const Trigger& t = rules_[idx].trigger;
    if (t.type != TriggerType::kCounter || t.provider != provider || t.counter != counter) {
      return std::nullopt;
    }
    if (!st.sustained.Add(timestamp, PassesThresholds(t, value), t.counter_interval, t.window)) {
      return std::nullopt;
    }
    st.sustained.Reset();
    return absl::StrCat(DescribeTrigger(t), ": ", FormatNumber(value));
  });
}

void Engine::OnException(const std::string& target, const std::string& type,
                         const std::string& message, absl::Time /*timestamp*/) {
  OfferEvent(target, [&](size_t idx, TriggerState&) -> std::optional<std::string> {
    const Trigger& t = rules_[idx].trigger;
    if (t.type != TriggerType::kException || !t.exception_type.Matches(type)) return std::nullopt;
    if (t.exception_message && !t.exception_message->Matches(message)) return std::nullopt;
    return absl::StrCat("exception ", type, ": ", message);
  });
}

void Engine::OnCrash(const std::string& target, const std::string& type, const std::string& message,
                     absl::Time /*timestamp*/) {
  OfferEvent(target, [&](size_t idx, TriggerState&) -> std::optional<std::string> {
    if (rules_[idx].trigger.type != TriggerType::kCrash) return std::nullopt;
    return absl::StrCat("crash: unhandled ", type, ": ", message);
  });
}

std::vector<std::string> Engine::OnCrashDump(const ProcessInfo& process, const std::string& dump_id,
                                             const std::string& exception_type, bool eventpipe,
                                             const std::string& reason) {
  std::vector<Pending> pending;
  std::vector<Event> events;
  std::vector<std::string> fired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = options_.clock();
    // Forget crashes long past (a pid is reused only after a while).
    for (auto it = crash_fired_.begin(); it != crash_fired_.end();) {
      it = now - it->second > absl::Hours(1) ? crash_fired_.erase(it) : std::next(it);
    }
    // The same process instance: by (pid, start_time) when both ways know the start time;
    // a dump written by the runtime knows only the pid, so a pid that crashed within the last
    // minute counts as the same crash.
    auto same_crash = [&] {
      for (const auto& [key, when] : crash_fired_) {
        if (key.first != process.pid) continue;
        if (process.start_time != 0 && key.second != 0) {
          if (key.second == process.start_time) return true;
          continue;
        }
        if (now - when < absl::Minutes(1)) return true;
      }
      return false;
    };
    if (same_crash()) return fired;
    for (size_t idx = 0; idx < rules_.size(); ++idx) {
      const Trigger& t = rules_[idx].trigger;
      if (t.type != TriggerType::kCrash || runtime_[idx].finished) continue;
      if (eventpipe ? !t.crash_eventpipe() : !t.crash_runtime()) continue;
      if (eventpipe && !t.exception_type.Matches(exception_type)) continue;
      if (!FilterMatches(rules_[idx].filter, process)) continue;
      const bool any_exception = t.exception_type.text.empty() || t.exception_type.text == "*";
      if (!eventpipe && !any_exception &&
          (exception_type.empty() || !t.exception_type.Matches(exception_type))) {
        // Way 1 with an exception pattern: the crash report names the unhandled exception.
        Event e;
        e.kind = EventKind::kRuleSkipped;
        e.rule = rules_[idx].name;
        e.pid = process.pid;
        e.process_name = process.name;
        e.uid = process.uid;
        e.dump_id = dump_id;
        e.message =
            exception_type.empty()
                ? absl::StrCat("crash dump ", dump_id, ": no unhandled exception type known (no ",
                               "crash report beside the dump: DOTNET_EnableCrashReport=1, or a ",
                               "report naming no managed exception), so exception pattern ",
                               t.exception_type.text, " cannot match")
                : absl::StrCat("crash dump ", dump_id, ": unhandled ", exception_type,
                               " does not match exception pattern ", t.exception_type.text);
        events.push_back(std::move(e));
        continue;
      }
      const size_t before = pending.size();
      Fire(idx, process, reason, now, &pending, &events);
      if (pending.size() > before) {
        pending.back().dump_id = dump_id;
        fired.push_back(rules_[idx].name);
      }
    }
    if (!fired.empty()) crash_fired_[{process.pid, process.start_time}] = now;
  }
  Dispatch(pending, std::move(events), false);
  return fired;
}

std::optional<Rule> Engine::SpeculationFor(const std::string& target, const std::string& type,
                                           ProcessInfo* process) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = procs_.find(target);
  if (it == procs_.end()) return std::nullopt;
  const absl::Time now = options_.clock();
  for (const auto& [idx, st] : it->second.rules) {
    const Trigger& t = rules_[idx].trigger;
    if (t.type != TriggerType::kCrash || !t.crash_eventpipe() || runtime_[idx].finished) continue;
    if (!t.exception_type.Matches(type)) continue;
    const Limits& l = rules_[idx].limits;
    if (l.rule_duration > absl::ZeroDuration() && now - runtime_[idx].started >= l.rule_duration) {
      continue;
    }
    if (TargetDone(idx, target)) continue;
    if (const LimitState* ls = LimitsOf(idx, target); ls && NextAllowed(idx, *ls, now)) continue;
    if (process) *process = it->second.info;
    return rules_[idx];
  }
  return std::nullopt;
}

void Engine::OnProcessExit(const std::string& target) {
  std::vector<Event> events;
  bool needs_changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = procs_.find(target);
    if (it == procs_.end()) return;
    // A listen runtime stays listed for the port's reconnect grace after its end: not a new
    // process then. (A process in /proc is listed only while it exists.)
    if (it->second.info.listen_only) {
      ended_[target] = options_.clock();
    } else {
      ForgetTargetLocked(target);  // a pid and start time never come back
    }
    Event e;
    e.kind = EventKind::kProcessExit;
    e.pid = it->second.info.pid;
    e.runtime_cookie = it->second.info.listen_only ? it->second.info.runtime_cookie : "";
    e.process_name = it->second.info.name;
    e.uid = it->second.info.uid;
    events.push_back(std::move(e));
    procs_.erase(it);
    std::vector<ProcessNeeds> needs = NeedsLocked();
    needs_changed = needs != last_needs_;
    if (needs_changed) last_needs_ = std::move(needs);
  }
  Dispatch({}, std::move(events), needs_changed);
}

std::vector<RuleStatus> Engine::ListRules() const {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = options_.clock();
  std::vector<RuleStatus> out;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const RuleRuntime& rt = runtime_[i];
    RuleStatus s;
    s.name = rules_[i].name;
    s.trigger = DescribeTrigger(rules_[i].trigger);
    s.fires = rt.all.fire_count;
    s.throttled = rt.throttled;
    s.last_fire = rt.all.last_fire;
    s.finished = rt.finished;
    s.finished_reason = rt.finished_reason;
    // Per-target limits have no one answer: each target has its own.
    if (!rt.finished && !rules_[i].limits.per_process) s.next_allowed = NextAllowed(i, rt.all, now);
    for (const auto& [pid, ps] : procs_) s.processes += ps.rules.count(i) ? 1 : 0;
    out.push_back(std::move(s));
  }
  return out;
}

void Engine::Start(std::function<std::vector<ProcessInfo>()> list, Sampler sample) {
  thread_ = std::thread([this, list = std::move(list), sample = std::move(sample)] {
    // A fixed rate: each pass starts one interval after the previous one started (or at once
    // when a pass took longer), so the time a pass takes does not stretch the interval.
    const auto interval = absl::ToChronoMilliseconds(options_.automation.poll_interval);
    auto next = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(loop_mu_);
    while (!stop_) {
      wake_ = false;
      lock.unlock();
      Poll(list(), sample);
      lock.lock();
      // An extra pass (Wake) between two scheduled ones leaves the schedule as it was.
      const auto now = std::chrono::steady_clock::now();
      if (next <= now) next = std::max(next + interval, now);
      loop_cv_.wait_until(lock, next, [this] { return stop_ || wake_; });
    }
  });
}

void Engine::Wake() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    wake_ = true;
  }
  loop_cv_.notify_all();
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace clrdiag::automation
