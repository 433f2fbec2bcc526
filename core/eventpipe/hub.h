// One EventPipe session per process, shared by every subscriber that needs events from it.
//
//   Hub hub;
//   auto sub = hub.Subscribe(Target::Pid(pid), Needs{.counter_interval_sec = 1,
//                                                    .exceptions = true},
//                            {.on_counter = ..., .on_exception = ..., .on_ended = ...});
//   ...
//   sub->reset();  // or let it go out of scope: unsubscribes
//
// The session's providers are the union of its subscribers' needs: System.Runtime (and any
// other counter providers asked for) with EventCounterIntervalSec = the smallest interval asked
// for, and Microsoft-Windows-DotNETRuntime's exception keyword if anyone wants exceptions. When
// the union changes the session is re-opened (new session first, then the old one stopped, so
// no interval is lost), and it is stopped when the last subscriber leaves. Each session has one
// reader thread; callbacks run on it, one at a time per process: keep them short.
//
// When the target exits (or the stream breaks) every subscriber of that process gets
// on_ended(status) once, and nothing more; it should then drop its subscription. The status is
// OK when the runtime ended the stream in order, OutOfRange when the stream was cut (process
// gone), other codes for a malformed stream.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/eventpipe/decoders.h"
#include "core/eventpipe/session.h"
#include "core/ipc/client.h"

namespace clrdiag::eventpipe {

// Which process: a host pid (its socket is found through /proc), a socket path directly, or
// an endpoint given by the caller (a runtime connected to a listen port) under the caller's
// key (e.g. its runtime cookie: such runtimes may advertise the same pid).
struct Target {
  pid_t pid = 0;
  std::string socket_path;
  std::shared_ptr<ipc::Endpoint> endpoint;
  std::string key;  // with `endpoint`: what tells this process's session apart
  static Target Pid(pid_t pid) { return Target{pid, "", nullptr, ""}; }
  static Target Socket(std::string path) { return Target{0, std::move(path), nullptr, ""}; }
  static Target Endpoint(std::string key, std::shared_ptr<ipc::Endpoint> endpoint) {
    return Target{0, "", std::move(endpoint), std::move(key)};
  }
  std::string Key() const;
};

struct Needs {
  int counter_interval_sec = 0;  // 0: no counters
  std::vector<std::string> counter_providers = {kSystemRuntimeProvider};
  bool exceptions = false;
  // Also what became of each exception (catch, filter, thrown-stop events; level 4). Implies
  // `exceptions`.
  bool exception_flow = false;
};

struct Callbacks {
  std::function<void(const CounterSample&)> on_counter;
  std::function<void(const ExceptionThrown&)> on_exception;
  std::function<void(const ExceptionFlow&)> on_exception_flow;
  std::function<void(const absl::Status&)> on_ended;
};

class Hub;
struct ProcessState;

// Unsubscribes on destruction. After the destructor returns no callback of it runs any more
// (destroying it from inside one of its own callbacks is allowed).
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  uint64_t id() const { return id_; }

 private:
  friend class Hub;
  Subscription(Hub* hub, std::shared_ptr<ProcessState> state, uint64_t id)
      : hub_(hub), state_(std::move(state)), id_(id) {}
  Hub* hub_;
  std::shared_ptr<ProcessState> state_;
  uint64_t id_;
};

class Hub {
 public:
  struct Options {
    // Finds the endpoint of a pid; default: procfs::FindDiagnosticSocket under /proc.
    std::function<absl::StatusOr<std::shared_ptr<ipc::Endpoint>>(pid_t)> resolve;
    absl::Duration start_timeout = absl::Seconds(5);
    absl::Duration stop_timeout = absl::Seconds(5);  // StopTracing reply + drain to EOF
    uint32_t buffer_mb = 16;
  };
  Hub();
  explicit Hub(Options options);
  ~Hub();  // stops every session (subscriptions must not outlive the hub)
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Subscribes; starts or re-opens the process's session as needed. Errors: the target cannot
  // be found, or the runtime refused the session (the subscription is then not made).
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Target& target, const Needs& needs,
                                                          Callbacks callbacks);

  struct Stats {
    size_t processes = 0;           // processes with subscribers
    size_t live_sessions = 0;       // sessions whose stream is open
    uint64_t sessions_started = 0;  // since the hub was made
    uint64_t events = 0;            // events decoded
  };
  Stats stats() const;
  // The runtime's id of the process's current session (0 if none): subscribers of one process
  // see the same one. Not from inside a callback (it waits for a re-open in progress).
  uint64_t SessionId(const Target& target) const;

 private:
  friend class Subscription;
  void Unsubscribe(const std::shared_ptr<ProcessState>& state, uint64_t id);

  Options options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ProcessState>> processes_;
  uint64_t next_id_ = 1;
  std::shared_ptr<struct HubCounters> counters_;
};

// For consumers keyed by pid (the rules engine): the same subscription with the pid passed
// back in every callback, counters flattened to (provider, counter, time, value), and the end of
// the stream reported as on_process_exit(pid, status) — exactly once, for a target that exited
// or crashed (status OutOfRange: stream cut) or whose runtime ended the session (OK).
struct PidSink {
  std::function<void(pid_t pid, const std::string& provider, const std::string& counter,
                     absl::Time ts, double value)>
      on_counter_sample;
  std::function<void(pid_t pid, const std::string& type, const std::string& message, absl::Time ts)>
      on_exception;
  std::function<void(pid_t pid, const absl::Status& why)> on_process_exit;
  // With Needs::exception_flow: the whole ExceptionThrown (its thread) and the catch/filter/stop
  // events (crash capture's way 2).
  std::function<void(pid_t pid, const ExceptionThrown&)> on_exception_thrown;
  std::function<void(pid_t pid, const ExceptionFlow&)> on_exception_flow;
};
absl::StatusOr<std::unique_ptr<Subscription>> SubscribePid(Hub& hub, pid_t pid, const Needs& needs,
                                                           PidSink sink);
// The same for any target; `pid` is what the sink's callbacks are given.
absl::StatusOr<std::unique_ptr<Subscription>> SubscribeSink(Hub& hub, const Target& target,
                                                            pid_t pid, const Needs& needs,
                                                            PidSink sink);

// The providers a session needs for `needs` (exposed for tests and tools).
SessionOptions SessionOptionsFor(const Needs& needs, uint32_t buffer_mb);

}  // namespace clrdiag::eventpipe
