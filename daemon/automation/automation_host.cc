#include "daemon/automation/automation_host.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/automation/proc_sampler.h"
#include "core/base/fs.h"
#include "core/ipc/codec.h"
#include "nlohmann/json.hpp"

namespace clrdiag::daemon_automation {

automation::ProcessInfo ToAutomationProcess(const inventory::DotnetProcess& p) {
  automation::ProcessInfo out;
  out.pid = p.facts.pid;
  out.start_time = p.facts.start_time;
  out.uid = p.listen_only ? -1 : static_cast<int64_t>(p.facts.uid);
  out.name = p.facts.name;
  out.command_line = absl::StrJoin(p.facts.cmdline, " ");
  if (p.runtime) out.entry_assembly = p.runtime->entry_assembly;
  out.k8s_namespace = p.facts.k8s.namespace_;
  out.pod = p.facts.k8s.pod;
  out.container_id = p.facts.k8s.container_id;
  out.listen_only = p.listen_only;
  if (p.listen_only && p.listen) {
    out.runtime_cookie = ipc::CookieHex(p.listen->cookie);  // from the advertise
  } else if (p.runtime) {
    out.runtime_cookie = ipc::CookieHex(p.runtime->cookie);
  }
  return out;
}

std::string CrashReportExceptionType(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  const nlohmann::json* payload = &j;
  if (auto it = j.find("payload"); it != j.end() && it->is_object()) payload = &*it;
  auto threads = payload->find("threads");
  if (threads == payload->end() || !threads->is_array()) return "";
  // Every value in the report is a string ("true", "0x80131509").
  auto text = [](const nlohmann::json& t, const char* key) -> std::string {
    auto it = t.find(key);
    return it != t.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string first;
  for (const auto& t : *threads) {
    if (!t.is_object()) continue;
    std::string type = text(t, "managed_exception_type");
    if (type.empty()) continue;
    if (text(t, "crashed") == "true") return type;  // the thread the crash happened on
    if (first.empty()) first = type;
  }
  return first;
}

automation::ProcessInfo ProcessFromMeta(const dump::DumpMeta& m) {
  automation::ProcessInfo out;
  out.pid = m.pid;
  out.uid = -1;
  out.name = m.process_name;
  out.command_line = m.command_line;
  out.k8s_namespace = m.pod_namespace;
  out.pod = m.pod;
  out.container_id = m.container_id;
  return out;
}

std::string DescribeAction(const automation::Action& a) {
  std::string s = absl::StrCat("collect ", a.collect.type);
  if (a.collect.diag) s += " +diag";
  if (a.collect.crash_report) s += " +crash_report";
  if (!a.egress.empty()) absl::StrAppend(&s, " → ", absl::StrJoin(a.egress, ", "));
  return s;
}

std::string DescribeLimits(const automation::Limits& l) {
  std::vector<std::string> parts;
  parts.push_back(absl::StrCat("action_count ", l.action_count,
                               l.window > absl::ZeroDuration()
                                   ? " per " + absl::FormatDuration(l.window)
                                   : std::string(" in all")));
  if (l.cooldown > absl::ZeroDuration()) {
    parts.push_back("cooldown " + absl::FormatDuration(l.cooldown));
  }
  if (l.rule_duration > absl::ZeroDuration()) {
    parts.push_back("rule_duration " + absl::FormatDuration(l.rule_duration));
  }
  if (l.per_process) parts.emplace_back("per process");
  return absl::StrJoin(parts, ", ");
}

AutomationHost::AutomationHost(const automation::AutomationConfig& config, AutomationDeps deps)
    : config_(config), deps_(std::move(deps)), bus_(config.options.event_buffer) {}

absl::StatusOr<std::unique_ptr<AutomationHost>> AutomationHost::Create(
    const automation::AutomationConfig& config, AutomationDeps deps) {
  std::unique_ptr<AutomationHost> h(new AutomationHost(config, std::move(deps)));
  for (const auto& e : config.egress) {
    auto t = automation::MakeEgressTarget(e, h->deps_.make_s3);
    if (!t.ok()) {
      return absl::Status(t.status().code(),
                          absl::StrCat("egress.", e.name, ": ", t.status().message()));
    }
    h->egress_[e.name] = std::move(*t);
  }
  automation::EngineOptions eo;
  eo.automation = config.options;
  eo.on_needs_changed = h->deps_.on_needs_changed;
  h->engine_ = std::make_unique<automation::Engine>(config.rules, std::move(eo), &h->bus_, h.get());
  return h;
}

AutomationHost::~AutomationHost() { Stop(); }

std::vector<automation::ProcessInfo> AutomationHost::ListProcesses() {
  std::vector<automation::ProcessInfo> out;
  for (const auto& p : deps_.inventory->List()) {
    // Runtimes only known through a listen port have no /proc entry here: procfs triggers
    // cannot see them, but startup and EventPipe triggers can.
    out.push_back(ToAutomationProcess(p));
  }
  return out;
}

void AutomationHost::Start() {
  if (started_) return;
  started_ = true;
  action_thread_ = std::thread([this] { ActionLoop(); });
  if (deps_.inventory == nullptr) return;  // actions only (tests)
  const std::string root = deps_.proc_root;
  engine_->Start([this] { return ListProcesses(); },
                 [root](pid_t pid) { return automation::SampleProcess(root, pid); });
}

void AutomationHost::Stop() {
  if (engine_) engine_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (action_thread_.joinable()) action_thread_.join();
  bus_.Close();
}

void AutomationHost::Run(const automation::Rule& rule, const automation::ProcessInfo& process,
                         const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back({rule, process, reason, ""});
  }
  cv_.notify_all();
}

void AutomationHost::Deliver(const automation::Rule& rule, const automation::ProcessInfo& process,
                             const std::string& reason, const std::string& dump_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back({rule, process, reason, dump_id});
  }
  cv_.notify_all();
}

void AutomationHost::OfferCrashDump(const dump::DumpMeta& meta) {
  // The crash report (DOTNET_EnableCrashReport=1) names the unhandled exception; rules with an
  // `exception` pattern are checked against it.
  std::string type;
  if (meta.has_crash_report) {
    auto text = ReadFileToString(deps_.store->CrashReportPath(meta.id));
    if (text.ok()) {
      type = CrashReportExceptionType(*text);
    } else if (deps_.log) {
      deps_.log(true, absl::StrCat("crash dump ", meta.id,
                                   ": cannot read its crash report: ", text.status().message()));
    }
  }
  engine_->OnCrashDump(
      ProcessFromMeta(meta), meta.id, type, /*eventpipe=*/false,
      absl::StrCat("crash: the runtime wrote crash dump ", meta.id, " from ", meta.source_path,
                   type.empty() ? std::string() : "; unhandled " + type));
}

void AutomationHost::ActionLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      for (const Job& j : queue_) {
        automation::Event e;
        e.kind = automation::EventKind::kCollectFailed;
        e.rule = j.rule.name;
        e.pid = j.process.pid;
        e.runtime_cookie = j.process.listen_only ? j.process.runtime_cookie : "";
        e.uid = j.process.uid;
        e.process_name = j.process.name;
        e.ok = false;
        e.message = "the daemon is shutting down";
        Publish(std::move(e));
      }
      queue_.clear();
      return;
    }
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Perform(job);
    lock.lock();
  }
}

void AutomationHost::Perform(const Job& job) {
  auto log = [this](bool warning, const std::string& line) {
    if (deps_.log) deps_.log(warning, line);
  };
  if (!job.dump_id.empty()) {
    // A crash rule: the dump is in the catalog already (the process is gone).
    auto meta = deps_.store->Get(job.dump_id);
    automation::Event e;
    e.rule = job.rule.name;
    e.pid = job.process.pid;
    e.runtime_cookie = job.process.listen_only ? job.process.runtime_cookie : "";
    e.uid = job.process.uid;
    e.process_name = job.process.name;
    e.dump_id = job.dump_id;
    if (!meta.ok()) {
      e.kind = automation::EventKind::kCollectFailed;
      e.ok = false;
      e.message = absl::StrCat("crash dump ", job.dump_id, ": ", meta.status().message());
      log(true, absl::StrCat("rule ", job.rule.name, ": ", e.message));
      Publish(std::move(e));
      return;
    }
    meta->rule = job.rule.name;
    meta->egress.clear();
    for (const auto& name : job.rule.action.egress) {
      dump::DumpMeta::Egress eg;
      eg.name = name;
      eg.state = "pending";
      meta->egress.push_back(eg);
    }
    if (absl::Status st = deps_.store->UpdateMeta(*meta); !st.ok()) {
      log(true, absl::StrCat("rule ", job.rule.name, ": cannot note the rule in dump ", meta->id,
                             ": ", st.message()));
    }
    e.kind = automation::EventKind::kDumpCollected;
    e.message = absl::StrCat(dump::DumpKindName(meta->kind), " crash dump, ", meta->size_bytes,
                             " bytes, sha256 ", meta->sha256, "; ", job.reason);
    log(false, absl::StrCat("rule ", job.rule.name, ": crash dump ", meta->id, " of pid ",
                            job.process.pid, " (", job.process.name, "): ", job.reason));
    Publish(std::move(e));
    Egress(job, *std::move(meta));
    return;
  }
  dump::CollectRequest req;
  req.pid = job.process.pid;
  auto kind = dump::ParseDumpKind(job.rule.action.collect.type);
  req.kind = kind.ok() ? *kind : dump::DumpKind::kFull;
  req.diag = job.rule.action.collect.diag;
  req.crash_report = job.rule.action.collect.crash_report;
  req.requested_by = 0;  // the daemon itself: root's (admins see it; owner-scoped users do not)
  // A listen-only runtime is reached by its cookie: its pid may be another runtime's too.
  const std::string cookie = job.process.listen_only ? job.process.runtime_cookie : "";
  log(false, absl::StrCat("rule ", job.rule.name, ": collecting a ", job.rule.action.collect.type,
                          " dump of pid ", job.process.pid,
                          cookie.empty() ? std::string() : " (runtime " + cookie + ")", " (",
                          job.process.name, "): ", job.reason));
  auto meta = deps_.collect(req, cookie);
  automation::Event e;
  e.rule = job.rule.name;
  e.pid = job.process.pid;
  e.runtime_cookie = job.process.listen_only ? job.process.runtime_cookie : "";
  e.uid = job.process.uid;
  e.process_name = job.process.name;
  if (!meta.ok()) {
    e.kind = automation::EventKind::kCollectFailed;
    e.ok = false;
    e.message = std::string(meta.status().message());
    log(true, absl::StrCat("rule ", job.rule.name, ": collection of pid ", job.process.pid,
                           " failed: ", e.message));
    Publish(std::move(e));
    return;
  }
  // The catalog says which rule took the dump, and which egress targets are still to come.
  meta->rule = job.rule.name;
  for (const auto& name : job.rule.action.egress) {
    dump::DumpMeta::Egress eg;
    eg.name = name;
    eg.state = "pending";
    meta->egress.push_back(eg);
  }
  if (absl::Status st = deps_.store->UpdateMeta(*meta); !st.ok()) {
    log(true, absl::StrCat("rule ", job.rule.name, ": cannot note the rule in dump ", meta->id,
                           ": ", st.message()));
  }
  e.kind = automation::EventKind::kDumpCollected;
  e.dump_id = meta->id;
  e.message = absl::StrCat(dump::DumpKindName(meta->kind), " dump, ", meta->size_bytes,
                           " bytes, sha256 ", meta->sha256);
  log(false, absl::StrCat("rule ", job.rule.name, ": stored ", meta->id));
  Publish(std::move(e));
  Egress(job, *std::move(meta));
}

void AutomationHost::Egress(const Job& job, dump::DumpMeta meta) {
  if (job.rule.action.egress.empty()) return;
  // Keeps retention from removing the dump while it is being sent.
  auto pin = deps_.store->Pin(meta.id, "an egress");
  automation::EgressItem item;
  item.dump_path = deps_.store->DumpPath(meta.id);
  item.file_name = meta.id + ".dmp";
  item.dump_id = meta.id;
  item.size_bytes = meta.size_bytes;
  item.sha256 = meta.sha256;
  item.process_name = job.process.name;
  item.pid = job.process.pid;
  item.type = absl::AsciiStrToLower(std::string(dump::DumpKindName(meta.kind)));
  item.pod = job.process.pod;
  item.k8s_namespace = job.process.k8s_namespace;
  item.container_id = job.process.container_id;
  item.time = meta.finished;
  for (size_t i = 0; i < job.rule.action.egress.size(); ++i) {
    const std::string& name = job.rule.action.egress[i];
    absl::StatusOr<std::string> where = absl::NotFoundError("no such egress target");
    if (!pin.ok()) {
      where = pin.status();
    } else if (auto it = egress_.find(name); it != egress_.end()) {
      where = it->second->Send(item);
    }
    automation::Event e;
    e.kind = automation::EventKind::kEgress;
    e.rule = job.rule.name;
    e.pid = job.process.pid;
    e.runtime_cookie = job.process.listen_only ? job.process.runtime_cookie : "";
    e.uid = job.process.uid;
    e.process_name = job.process.name;
    e.dump_id = meta.id;
    e.egress = name;
    e.ok = where.ok();
    e.message = where.ok() ? *where : std::string(where.status().message());
    dump::DumpMeta::Egress& rec = meta.egress[i];
    rec.state = where.ok() ? "ok" : "failed";
    rec.location = where.ok() ? *where : "";
    rec.error = where.ok() ? "" : e.message;
    rec.time = absl::Now();
    if (deps_.log) {
      deps_.log(!where.ok(),
                absl::StrCat("rule ", job.rule.name, ": egress ", name, " of ", meta.id,
                             where.ok() ? ": sent to " : " failed: ", e.message,
                             where.ok() ? "" : " (the dump stays in the catalog)"));
    }
    if (absl::Status st = deps_.store->UpdateMeta(meta); !st.ok() && deps_.log) {
      deps_.log(true, absl::StrCat("egress: cannot record the result in dump ", meta.id, ": ",
                                   st.message()));
    }
    Publish(std::move(e));
  }
}

}  // namespace clrdiag::daemon_automation
