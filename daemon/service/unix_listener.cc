#include "daemon/service/unix_listener.h"

#include <fcntl.h>
#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/fs.h"
#include "core/base/status_macros.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {

std::optional<PeerCred> PeerRegistry::Lookup(const std::string& peer) const {
  int fd = 0;
  if (peer.rfind("fd:", 0) != 0 || !absl::SimpleAtoi(peer.substr(3), &fd)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return it->second;
}

namespace {

bool SomeoneListens(const sockaddr_un& addr) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return probe &&
         ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Bind(const std::string& path,
                                                                 mode_t mode,
                                                                 const std::string& group) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty()) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) RETURN_IF_ERROR(MakeDirs(dir, 0755));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " exists and is not a socket; remove it or listen elsewhere"));
    }
    if (SomeoneListens(addr)) {
      return absl::AlreadyExistsError(
          absl::StrCat("another clrdiagd is already listening on ", path,
                       "; stop it first or give this one another --listen address"));
    }
    ::unlink(path.c_str());  // stale socket of a daemon that died
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  // Bind with a restrictive umask so there is no window with looser permissions.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::umask(old);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("cannot listen on ", path));
  if (!group.empty()) {
    struct group* gr = ::getgrnam(group.c_str());
    if (!gr) {
      ::unlink(path.c_str());
      return absl::InvalidArgumentError(
          absl::StrCat("socket.group: no group named '", group, "' on this host"));
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0) {
      err = errno;
      ::unlink(path.c_str());
      return ErrnoStatus(err, absl::StrCat("chown ", path));
    }
  }
  if (::chmod(path.c_str(), mode) != 0) {
    err = errno;
    ::unlink(path.c_str());
    return ErrnoStatus(err, absl::StrCat("chmod ", path));
  }
  if (::listen(fd.get(), 128) != 0) {
    err = errno;
    ::unlink(path.c_str());
    return ErrnoStatus(err, absl::StrCat("listen ", path));
  }
  auto l = std::unique_ptr<UnixListener>(new UnixListener(path, std::move(fd)));
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe");
  l->wake_[0].Reset(p[0]);
  l->wake_[1].Reset(p[1]);
  return l;
}

UnixListener::~UnixListener() { Stop(); }

void UnixListener::Start(grpc::Server* server, PeerRegistry* peers) {
  Start([server, peers](UniqueFd conn, const PeerCred& cred) {
    peers->Set(conn.get(), cred);
    grpc::AddInsecureChannelFromFd(server, conn.Release());  // gRPC owns the fd from here
  });
}

void UnixListener::Start(Handler handler) {
  thread_ = std::thread([this, handler = std::move(handler)] { AcceptLoop(handler); });
}

void UnixListener::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_[1]) (void)!::write(wake_[1].get(), "x", 1);
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void UnixListener::AcceptLoop(const Handler& handler) {
  while (!stopping_.load()) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_[0].get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll on {} failed: {}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("accept on {} failed: {}", path_, std::strerror(errno));
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(c);
      continue;
    }
    handler(UniqueFd(c), PeerCred{cred.pid, cred.uid, cred.gid});
  }
}

}  // namespace clrdiag::service
