// Diagnostics IPC client over a unix stream socket: one connection per command, as the
// runtime expects. Paths longer than sun_path are reached through an O_PATH directory fd.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "core/ipc/codec.h"

namespace clrdiag::ipc {

struct Message {
  Header header;
  std::vector<uint8_t> payload;
};

class Connection {
 public:
  // Connects to a runtime's socket. Unavailable for ECONNREFUSED (stale socket),
  // PermissionDenied for EACCES, NotFound for ENOENT.
  static absl::StatusOr<Connection> Connect(const std::string& socket_path, absl::Duration timeout);
  // Wraps an already connected fd (listen mode: the runtime connected to us).
  explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}

  absl::Status Send(const std::vector<uint8_t>& message, absl::Time deadline);
  // Reads one whole message; DeadlineExceeded past `deadline` (absl::InfiniteFuture() waits
  // forever), Unavailable if the peer closes mid-message, DataLoss for a malformed header.
  absl::StatusOr<Message> Receive(absl::Time deadline);

  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

// Asks ProcessInfo3, falling back to ProcessInfo2 then ProcessInfo only on UNKNOWN_COMMAND.
absl::StatusOr<ProcessInfo> QueryProcessInfo(const std::string& socket_path,
                                             absl::Duration timeout);

struct DumpRequest {
  std::string path;  // absolute, as the target sees it
  DumpType type = DumpType::kFull;
  uint32_t flags = 0;  // dump_flags
};

// Asks the runtime to write a dump (GenerateCoreDump3, falling back to 2 then 1 only on
// UNKNOWN_COMMAND) and waits for the reply (no deadline: createdump takes as long as it takes).
// On failure the Status carries the runtime's own text (v3) or a message naming the HRESULT,
// in the words dotnet-dump uses.
absl::Status GenerateCoreDump(const std::string& socket_path, const DumpRequest& request);

// Human text for an IPC error HRESULT (e.g. "Command is not supported").
std::string DescribeHresult(uint32_t hr);

}  // namespace clrdiag::ipc

namespace clrdiag::ipc {
// True when `status` says nothing listens on the socket (ECONNREFUSED): a stale socket file
// left by a runtime that died, not a live process.
bool IsStaleSocket(const absl::Status& status);
}  // namespace clrdiag::ipc
