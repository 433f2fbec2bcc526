// The audit log: one JSON object per line for every collect, download, analyze session (open
// and close) and delete, denied and failed attempts included. Written with O_APPEND, mode 0600.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "daemon/auth/auth.h"

namespace clrdiag::auth {

struct AuditEvent {
  std::string action;  // collect, download, analyze.open, analyze.close, delete
  std::string target;  // "pid:123", a dump id, a path on the daemon's host, a session id
  uint64_t bytes = 0;
};

class AuditLog {
 public:
  // Opens (creating, 0600) `path` for appending; refuses a file others may read.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  const std::string& path() const { return path_; }

  // One line: time, identity (name, method, role, uid), peer, action, target, result
  // ("ok", "denied", or "error" with the gRPC code name and message), bytes.
  // `who` may be null when the caller could not be identified (then `peer` names it).
  void Record(const Identity* who, const std::string& peer, const AuditEvent& ev, int grpc_code,
              const std::string& message);

 private:
  AuditLog(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  std::mutex mu_;
  UniqueFd fd_;
};

}  // namespace clrdiag::auth
