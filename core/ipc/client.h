// Diagnostics IPC client over a unix stream socket: one connection per command, as the
// runtime expects. Paths longer than sun_path are reached through an O_PATH directory fd.
#pragma once

#include <memory>
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
  // Wraps an already connected fd (listen mode: the runtime connected to us). `lease`, if
  // set, is released when the connection is destroyed (a pool's "in use" mark).
  explicit Connection(UniqueFd fd, std::shared_ptr<void> lease = nullptr)
      : fd_(std::move(fd)), lease_(std::move(lease)) {}

  absl::Status Send(const std::vector<uint8_t>& message, absl::Time deadline);
  // Reads one whole message; DeadlineExceeded past `deadline` (absl::InfiniteFuture() waits
  // forever), Unavailable if the peer closes mid-message, DataLoss for a malformed header.
  absl::StatusOr<Message> Receive(absl::Time deadline);

  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::shared_ptr<void> lease_;
};

// Where the connection for one command comes from. The runtime serves exactly one command per
// connection, so every command asks its endpoint for a fresh one.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // A connection ready for one request; the deadline bounds the wait for it.
  virtual absl::StatusOr<Connection> Open(absl::Duration timeout) = 0;
  // For messages: "/proc/42/root/tmp/dotnet-diagnostic-42-...-socket" or
  // "listen port /diag/clrdiag.sock".
  virtual std::string Describe() const = 0;
};

// The runtime's own (default, listening) socket: connect per command.
class SocketEndpoint final : public Endpoint {
 public:
  explicit SocketEndpoint(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<Connection> Open(absl::Duration timeout) override {
    return Connection::Connect(path_, timeout);
  }
  std::string Describe() const override { return path_; }

 private:
  std::string path_;
};

absl::StatusOr<ProcessInfo> QueryProcessInfo(Endpoint& endpoint, absl::Duration timeout);
// ResumeRuntime (Process 0x01): releases a runtime waiting at start-up for this diagnostic
// port. Answered OK by a runtime that was not waiting, too.
absl::Status ResumeRuntime(Endpoint& endpoint, absl::Duration timeout);

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
absl::Status GenerateCoreDump(Endpoint& endpoint, const DumpRequest& request);

// Human text for an IPC error HRESULT (e.g. "Command is not supported").
std::string DescribeHresult(uint32_t hr);

}  // namespace clrdiag::ipc

namespace clrdiag::ipc {
// True when `status` says nothing listens on the socket (ECONNREFUSED): a stale socket file
// left by a runtime that died, not a live process.
bool IsStaleSocket(const absl::Status& status);
}  // namespace clrdiag::ipc
