// The daemon's side of automation: runs the rules engine (core/automation) over the inventory,
// performs rule actions (a collection through the same path as the CollectDump RPC, then each
// egress target), and publishes what happens on the event bus.
//
// Wiring for the parts other libraries provide:
//   - EventPipe samples: the reader calls engine().OnCounterSample / OnException / OnCrash /
//     OnProcessExit; engine().Needs() (and AutomationDeps::on_needs_changed) says which
//     sessions to hold.
//   - S3 egress: AutomationDeps::make_s3 builds an automation::EgressTarget from an s3
//     EgressConfig (core/automation/egress.h).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/automation/egress.h"
#include "core/automation/engine.h"
#include "core/automation/events.h"
#include "core/automation/rules.h"
#include "core/dump/collector.h"
#include "core/dump/dump_store.h"
#include "core/inventory/inventory.h"

namespace clrdiag::daemon_automation {

struct AutomationDeps {
  inventory::Inventory* inventory = nullptr;
  dump::DumpStore* store = nullptr;
  // The CollectDump RPC's collection path (DiagnosticsService::CollectForRule): the catalog,
  // listen-mode targets, max_concurrent_collections, metrics, shutdown's wait.
  // The second argument: the runtime cookie (hex) of a runtime known only through a listen
  // port ("" otherwise), which picks it among runtimes advertising the same pid.
  std::function<absl::StatusOr<dump::DumpMeta>(const dump::CollectRequest&, const std::string&)>
      collect;
  automation::S3Factory make_s3;           // may be empty (s3 egress then fails with a message)
  std::function<void()> on_needs_changed;  // may be empty (see Engine::Needs)
  std::string proc_root = "/proc";
  // Log lines (info or warning).
  std::function<void(bool warning, const std::string&)> log;
};

class AutomationHost : public automation::ActionRunner {
 public:
  // Builds the egress targets (errors name the target) and the engine. Nothing runs yet.
  static absl::StatusOr<std::unique_ptr<AutomationHost>> Create(
      const automation::AutomationConfig& config, AutomationDeps deps);
  ~AutomationHost() override;

  // Starts polling (unless deps.inventory is null) and the action thread.
  void Start();
  // Stops polling, lets the running action finish (queued ones are dropped, with an event),
  // and closes the event bus.
  void Stop();

  automation::EventBus& bus() { return bus_; }
  automation::Engine& engine() { return *engine_; }

  // ActionRunner: queues the action (collect, then egress) for the action thread.
  void Run(const automation::Rule& rule, const automation::ProcessInfo& process,
           const std::string& reason) override;
  // ActionRunner: queues the egress of a crash dump already in the catalog.
  void Deliver(const automation::Rule& rule, const automation::ProcessInfo& process,
               const std::string& reason, const std::string& dump_id) override;

  // Crash capture way 1: the crash ingester put `meta` (origin "crash") into the catalog;
  // offers it to the crash rules (Engine::OnCrashDump).
  void OfferCrashDump(const dump::DumpMeta& meta);

 private:
  struct Job {
    automation::Rule rule;
    automation::ProcessInfo process;
    std::string reason;
    std::string dump_id;  // a crash dump to deliver: no collection
  };
  AutomationHost(const automation::AutomationConfig& config, AutomationDeps deps);
  void ActionLoop();
  void Perform(const Job& job);
  void Egress(const Job& job, dump::DumpMeta meta);
  std::vector<automation::ProcessInfo> ListProcesses();
  void Publish(automation::Event e) { bus_.Publish(std::move(e)); }

  automation::AutomationConfig config_;
  AutomationDeps deps_;
  automation::EventBus bus_;
  std::map<std::string, std::unique_ptr<automation::EgressTarget>> egress_;
  std::unique_ptr<automation::Engine> engine_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread action_thread_;
  bool started_ = false;
};

// Conversions for the RPC layer and the engine.
automation::ProcessInfo ToAutomationProcess(const inventory::DotnetProcess& p);
// What a catalogued dump says of its process (for filters on a process that is gone).
automation::ProcessInfo ProcessFromMeta(const dump::DumpMeta& m);
// The unhandled exception's type a runtime crash report (<dump>.crashreport.json) names: the
// crashed thread's managed_exception_type, else the first thread's that has one; "" if none.
std::string CrashReportExceptionType(const std::string& json_text);
// "collect Mini → local, s3-main"; "action_count 1 per 1h, cooldown 10m".
std::string DescribeAction(const automation::Action& a);
std::string DescribeLimits(const automation::Limits& l);

}  // namespace clrdiag::daemon_automation
