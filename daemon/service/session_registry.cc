#include "daemon/service/session_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {

void Session::Attach(pid_t worker_pid, Callbacks callbacks) {
  std::lock_guard<std::mutex> lock(mu_);
  worker_pid_ = worker_pid;
  callbacks_ = std::move(callbacks);
  attached_ = true;
}

void Session::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  attached_ = false;
  callbacks_ = {};
}

void Session::CommandStarted(uint64_t id, const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  running_id_ = id;
  running_line_ = line;
  running_since_ = absl::Now();
  cancel_sent_ = false;
  ++commands_;
}

void Session::CommandEnded(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_id_ != id) return;
  running_id_ = 0;
  running_line_.clear();
  last_activity_ = absl::Now();
}

Session::Snapshot Session::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  s.id = id_;
  s.uid = uid_;
  s.owner = owner_;
  s.dump = dump_;
  s.dump_path = dump_path_;
  s.started = started_;
  s.idle = running_id_ != 0 ? absl::ZeroDuration() : absl::Now() - last_activity_;
  s.running_command = running_line_;
  s.commands = commands_;
  s.worker_pid = worker_pid_;
  return s;
}

void Session::Close(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!attached_ || closed_) return;
  closed_ = true;
  closed_at_ = absl::Now();
  spdlog::info("analyze: closing session {} on {}: {}", id_, dump_path_, reason);
  if (callbacks_.close) callbacks_.close(reason);
}

bool Session::Check(absl::Time now, const config::AnalysisLimits& limits, absl::Duration grace) {
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!attached_) return false;
    if (closed_) {
      // Told to go, the client normally hangs up at once; if not, end the call.
      if (!forced_ && now - closed_at_ >= absl::Seconds(5)) {
        forced_ = true;
        if (callbacks_.force) callbacks_.force();
      }
      return false;
    }
    if (running_id_ == 0) {
      if (now - last_activity_ >= limits.idle_timeout) {
        reason =
            absl::StrCat("the session was idle for ", absl::FormatDuration(limits.idle_timeout),
                         " (analysis.idle_timeout in the daemon's config); start a new one");
      }
    } else if (now - running_since_ >= limits.command_timeout) {
      if (!cancel_sent_) {
        cancel_sent_ = true;
        spdlog::warn("analyze: session {}: '{}' ran longer than {}: cancelling", id_, running_line_,
                     absl::FormatDuration(limits.command_timeout));
        if (callbacks_.cancel) callbacks_.cancel(running_id_);
      } else if (now - running_since_ >= limits.command_timeout + grace) {
        reason = absl::StrCat("'", running_line_, "' ran longer than ",
                              absl::FormatDuration(limits.command_timeout),
                              " (analysis.command_timeout) and did not stop when cancelled");
      }
    }
  }
  if (reason.empty()) return false;
  Close(reason);
  return true;
}

SessionRegistry::SessionRegistry(config::AnalysisLimits limits)
    : limits_(limits), watchdog_([this] { Watchdog(); }) {}

SessionRegistry::~SessionRegistry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  watchdog_.join();
}

absl::StatusOr<std::shared_ptr<Session>> SessionRegistry::Open(int64_t uid, const std::string& dump,
                                                               const std::string& dump_path,
                                                               const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(sessions_.size()) >= limits_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the daemon already has ", sessions_.size(),
        " analysis sessions open (analysis.max_sessions); close one (`clrdiag sessions`) or "
        "try again later"));
  }
  int mine = static_cast<int>(std::count_if(sessions_.begin(), sessions_.end(),
                                            [&](const auto& s) { return s->uid() == uid; }));
  if (mine >= limits_.max_sessions_per_user) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "you already have ", mine,
        " analysis sessions open (analysis.max_sessions_per_user); close one (`clrdiag "
        "sessions`, `clrdiag sessions --close ID`) first"));
  }
  auto s = std::make_shared<Session>(absl::StrCat("s", next_id_++), uid, dump, dump_path, owner);
  sessions_.push_back(s);
  return s;
}

void SessionRegistry::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                 [&](const auto& s) { return s->id() == id; }),
                  sessions_.end());
}

std::vector<Session::Snapshot> SessionRegistry::List(std::optional<int64_t> only_uid) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Session::Snapshot> out;
  for (const auto& s : sessions_) {
    if (!only_uid || s->uid() == *only_uid) out.push_back(s->snapshot());
  }
  return out;
}

absl::Status SessionRegistry::Close(const std::string& id, int64_t caller_uid) {
  std::shared_ptr<Session> target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : sessions_) {
      if (s->id() == id) target = s;
    }
  }
  if (!target) {
    return absl::NotFoundError(
        absl::StrCat("no analysis session ", id, " (see `clrdiag sessions`)"));
  }
  if (caller_uid != 0 && caller_uid != target->uid()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "session ", id,
        " belongs to another user; only root and the admin group (auth.admin_group) may close it"));
  }
  target->Close(caller_uid == 0 && target->uid() != 0
                    ? "the session was closed by an administrator"
                    : "the session was closed (clrdiag sessions --close)");
  return absl::OkStatus();
}

void SessionRegistry::Watchdog() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (stopping_) break;
    std::vector<std::shared_ptr<Session>> all = sessions_;
    lock.unlock();
    absl::Time now = absl::Now();
    for (const auto& s : all) s->Check(now, limits_, kCancelGrace);
    lock.lock();
  }
}

}  // namespace clrdiag::service
