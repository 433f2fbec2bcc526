// The glue between the rules engine and the libraries that feed and serve it:
//   - EventPipeBridge holds one EventPipe session per process the engine's rules need runtime
//     events from (counters, exceptions), through the shared hub (core/eventpipe/hub.h), and
//     passes the samples to the engine;
//   - MakeS3Egress builds the S3 egress target (core/egress) of an `egress: {type: s3}` entry.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/automation/egress.h"
#include "core/automation/engine.h"
#include "core/automation/rules.h"
#include "core/eventpipe/hub.h"
#include "core/ipc/client.h"

namespace clrdiag::daemon_automation {

class EventPipeBridge {
 public:
  // How to reach a runtime known only through a listen port (by its runtime cookie); empty:
  // such runtimes get no session.
  using ListenEndpointFn = std::function<absl::StatusOr<std::shared_ptr<ipc::Endpoint>>(
      const automation::ProcessNeeds&)>;
  // `log(warning, line)`. Sessions are (re)checked when Sync() is called (on the engine's
  // needs-changed hook) and every `retry_interval` (a runtime that refused, or was not ready).
  // `crash` (may be null): crash capture way 2 — processes a crash rule with EventPipe capture
  // matches get the exception events with their catch/filter events, passed to it.
  // `on_crash_session(pid)` (may be empty) runs when such a session starts (the process is
  // alive: the daemon keeps its runtime files then). Sessions are held per target (the engine's
  // TargetKey): two listen runtimes advertising the same pid get one session each, through
  // `listen_endpoint`. Way 2 needs the process in /proc: listen-only runtimes get none.
  EventPipeBridge(automation::Engine* engine, eventpipe::Hub* hub,
                  std::function<void(bool, const std::string&)> log,
                  absl::Duration retry_interval = absl::Seconds(2),
                  class CrashWatcher* crash = nullptr,
                  std::function<void(pid_t)> on_crash_session = nullptr,
                  ListenEndpointFn listen_endpoint = nullptr);
  ~EventPipeBridge();  // ends every session
  EventPipeBridge(const EventPipeBridge&) = delete;
  EventPipeBridge& operator=(const EventPipeBridge&) = delete;

  // Wakes the bridge to compare the engine's needs with the sessions it holds.
  void Sync();

 private:
  void Loop();
  void Reconcile();

  automation::Engine* engine_;
  eventpipe::Hub* hub_;
  std::function<void(bool, const std::string&)> log_;
  absl::Duration retry_interval_;
  class CrashWatcher* crash_;
  std::function<void(pid_t)> on_crash_session_;
  ListenEndpointFn listen_endpoint_;

  struct Held {
    automation::ProcessNeeds needs;
    std::unique_ptr<eventpipe::Subscription> sub;
  };
  // By target key; only the loop thread touches them.
  std::map<std::string, Held> held_;
  std::map<std::string, std::string> failed_;  // last failure logged per target (logged once)

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  std::set<std::string> ended_;  // sessions whose process ended (set from callbacks)
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<automation::EgressTarget>> MakeS3Egress(
    const automation::EgressConfig& config);

}  // namespace clrdiag::daemon_automation
