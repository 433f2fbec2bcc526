// Who is on the other end of each local connection. The daemon accepts unix connections
// itself, reads SO_PEERCRED, then hands the fd to gRPC, whose peer string for such a channel is
// "fd:<n>"; handlers look the caller up by that string.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace clrdiag::service {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class PeerRegistry {
 public:
  void Set(int fd, const PeerCred& cred) {
    std::lock_guard<std::mutex> lock(mu_);
    by_fd_[fd] = cred;
  }
  // `peer` is grpc::ServerContext::peer(). Empty for TCP peers and unknown fds.
  std::optional<PeerCred> Lookup(const std::string& peer) const;

 private:
  mutable std::mutex mu_;
  std::map<int, PeerCred> by_fd_;
};

}  // namespace clrdiag::service
