// A unix-socket front door for the gRPC server that knows its callers (SO_PEERCRED).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "daemon/service/peer_registry.h"

namespace grpc {
class Server;
}

namespace clrdiag::service {

class UnixListener {
 public:
  // Binds `path` (removing a stale socket file, refusing if a live daemon answers there),
  // applies `mode` and `group` (empty: unchanged), and creates the parent directory (0755).
  static absl::StatusOr<std::unique_ptr<UnixListener>> Bind(const std::string& path, mode_t mode,
                                                            const std::string& group);
  ~UnixListener();

  // Starts accepting; every connection is registered in `peers` and given to `server`.
  void Start(grpc::Server* server, PeerRegistry* peers);
  // Starts accepting; every connection goes to `handler` with its peer's credentials (on the
  // accept thread: the handler must not block for long).
  using Handler = std::function<void(UniqueFd conn, const PeerCred& cred)>;
  void Start(Handler handler);
  // Stops accepting and removes the socket file.
  void Stop();
  const std::string& path() const { return path_; }

 private:
  UnixListener(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  void AcceptLoop(const Handler& handler);

  std::string path_;
  UniqueFd fd_;
  UniqueFd wake_[2];  // pipe to interrupt poll() on Stop
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace clrdiag::service
