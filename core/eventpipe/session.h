// An EventPipe session over Diagnostics IPC: CollectTracing3 (rundown and stack walks off),
// falling back to CollectTracing2 when the runtime answers UNKNOWN_COMMAND; the nettrace
// stream then arrives on the same connection. StopTracing goes over a second connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/ipc/client.h"

namespace clrdiag::eventpipe {

inline constexpr uint8_t kStopTracing = 0x01, kCollectTracing2 = 0x03, kCollectTracing3 = 0x04;

struct Provider {
  std::string name;
  uint64_t keywords = 0;
  uint32_t level = 4;     // 0..5 (4 = Informational)
  std::string arguments;  // "key=value;key=value", e.g. "EventCounterIntervalSec=1"
};

struct SessionOptions {
  std::vector<Provider> providers;
  uint32_t buffer_mb = 16;
  bool rundown = false;
  bool stackwalk = false;  // CollectTracing2 always walks stacks
};

// The CollectTracing2 (with_stackwalk_flag = false) or CollectTracing3 payload.
std::vector<uint8_t> EncodeCollectTracingPayload(const SessionOptions& options, bool v3);

class Session {
 public:
  // Starts a session. InvalidArgument for bad options; the IPC errors of the runtime as
  // statuses naming the command and socket.
  static absl::StatusOr<std::unique_ptr<Session>> Start(std::shared_ptr<ipc::Endpoint> endpoint,
                                                        const SessionOptions& options,
                                                        absl::Duration timeout);
  uint64_t id() const { return id_; }
  // The command that started it: kCollectTracing3 or kCollectTracing2.
  uint8_t command() const { return command_; }
  int fd() const { return conn_.fd(); }
  const ipc::Endpoint& endpoint() const { return *endpoint_; }

  // Reads stream bytes: waits until some arrive, the stream ends (returns 0), or `deadline`
  // passes (DeadlineExceeded). A reset connection counts as the end of the stream.
  absl::StatusOr<size_t> Read(std::span<uint8_t> buffer, absl::Time deadline);

  // Sends StopTracing(id) on a new connection and reads its reply. The runtime then flushes,
  // writes the end tag and closes the stream: read it to EOF afterwards.
  absl::Status Stop(absl::Duration timeout);

 private:
  Session(std::shared_ptr<ipc::Endpoint> endpoint, ipc::Connection conn, uint64_t id,
          uint8_t command)
      : endpoint_(std::move(endpoint)), conn_(std::move(conn)), id_(id), command_(command) {}
  std::shared_ptr<ipc::Endpoint> endpoint_;
  ipc::Connection conn_;
  uint64_t id_;
  uint8_t command_;
};

}  // namespace clrdiag::eventpipe
