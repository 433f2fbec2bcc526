// The daemon's analysis sessions: who opened what, limits on how many, and a watchdog that
// closes idle sessions and cancels commands that run too long.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/config/config.h"

namespace clrdiag::service {

// One open session. The Analyze handler that owns it installs the callbacks; the registry
// (its watchdog, CloseSession) calls them, always under the session's lock, never after the
// handler detached them.
class Session {
 public:
  struct Callbacks {
    // End the session now: tell the client `reason`, stop the worker.
    std::function<void(const std::string& reason)> close;
    // Ask the worker to cancel the running command `id`.
    std::function<void(uint64_t id)> cancel;
    // The client did not go away after `close` told it to: end the call.
    std::function<void()> force;
  };

  struct Snapshot {
    std::string id;
    int64_t uid = -1;
    std::string owner;  // the identity's name, as in the audit log
    std::string dump, dump_path;
    absl::Time started;
    absl::Duration idle;
    std::string running_command;
    uint64_t commands = 0;
    pid_t worker_pid = -1;
  };

  Session(std::string id, int64_t uid, std::string dump, std::string dump_path,
          std::string owner = "")
      : id_(std::move(id)),
        uid_(uid),
        owner_(std::move(owner)),
        dump_(std::move(dump)),
        dump_path_(std::move(dump_path)) {}

  const std::string& id() const { return id_; }
  int64_t uid() const { return uid_; }

  void Attach(pid_t worker_pid, Callbacks callbacks);
  void Detach();  // after this no callback runs
  void CommandStarted(uint64_t id, const std::string& line);
  void CommandEnded(uint64_t id);
  Snapshot snapshot() const;

  // Watchdog and CloseSession.
  void Close(const std::string& reason);
  // Idle too long → close; command too long → cancel, and close if it did not stop after
  // `grace`. Returns true if the session was closed.
  bool Check(absl::Time now, const config::AnalysisLimits& limits, absl::Duration grace);

 private:
  mutable std::mutex mu_;
  const std::string id_;
  const int64_t uid_;
  const std::string owner_;
  const std::string dump_, dump_path_;
  const absl::Time started_ = absl::Now();
  pid_t worker_pid_ = -1;
  Callbacks callbacks_;
  bool attached_ = false;
  bool closed_ = false;
  absl::Time closed_at_;
  bool forced_ = false;
  absl::Time last_activity_ = absl::Now();
  uint64_t running_id_ = 0;
  std::string running_line_;
  absl::Time running_since_;
  bool cancel_sent_ = false;
  uint64_t commands_ = 0;
};

class SessionRegistry {
 public:
  explicit SessionRegistry(config::AnalysisLimits limits);
  ~SessionRegistry();  // stops the watchdog

  const config::AnalysisLimits& limits() const { return limits_; }

  // A new session for `uid` (-1: unknown), or RESOURCE_EXHAUSTED naming the limit reached.
  absl::StatusOr<std::shared_ptr<Session>> Open(int64_t uid, const std::string& dump,
                                                const std::string& dump_path,
                                                const std::string& owner = "");
  void Remove(const std::string& id);
  // All sessions (caller_uid 0 or -1 from a trusted TCP peer... see ListSessions), oldest first.
  std::vector<Session::Snapshot> List(std::optional<int64_t> only_uid) const;
  // NOT_FOUND, PERMISSION_DENIED (not root and not the owner), or OK once the session was told.
  absl::Status Close(const std::string& id, int64_t caller_uid);

  // How long a cancelled command may take to stop before its session is closed.
  static constexpr absl::Duration kCancelGrace = absl::Seconds(5);

 private:
  void Watchdog();

  const config::AnalysisLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::vector<std::shared_ptr<Session>> sessions_;
  std::thread watchdog_;
};

}  // namespace clrdiag::service
