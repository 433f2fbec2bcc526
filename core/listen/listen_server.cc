#include "core/listen/listen_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace clrdiag::listen {
namespace {

// Named limits of the accept loop.
// Connections accepted but not yet advertised; more are closed at once.
constexpr size_t kMaxPendingConnections = 256;
// The loop wakes at least this often to notice runtimes that went away.
constexpr absl::Duration kHousekeepingInterval = absl::Milliseconds(250);
// sun_path holds 108 bytes with the NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

std::string ShortCookie(const Cookie& c) { return ipc::CookieHex(c).substr(0, 8); }

// Binds a listening socket at `path`; a stale socket file there (nothing accepts) is replaced.
absl::StatusOr<UniqueFd> BindPort(const PortOptions& p, ino_t* inode) {
  if (p.path.empty() || p.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("diagnostic port '", p.path, "' must be an absolute path"));
  }
  if (p.path.size() > kMaxSocketPath) {
    return absl::InvalidArgumentError(absl::StrCat("diagnostic port ", p.path, " is longer than ",
                                                   kMaxSocketPath,
                                                   " bytes, the limit of a unix socket path"));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  p.path.copy(addr.sun_path, p.path.size());
  struct stat st;
  if (::lstat(p.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("diagnostic port ", p.path,
                       " exists and is not a socket; remove it or choose another path"));
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("diagnostic port ", p.path, " is in use: another process listens on it"));
    }
    ::unlink(p.path.c_str());  // stale: left by a daemon that did not shut down
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot listen on diagnostic port ", p.path,
                                           " (does its directory exist?)"));
  }
  // bind() honours the umask; the app's user (often another uid) must be able to connect.
  if (::chmod(p.path.c_str(), p.mode) != 0 || ::lstat(p.path.c_str(), &st) != 0) {
    const int err = errno;
    ::unlink(p.path.c_str());
    return ErrnoStatus(err, absl::StrCat("chmod diagnostic port ", p.path));
  }
  *inode = st.st_ino;
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    const int err = errno;
    ::unlink(p.path.c_str());
    return ErrnoStatus(err, absl::StrCat("listen on diagnostic port ", p.path));
  }
  return fd;
}

}  // namespace

struct ListenServer::Runtime {
  Cookie cookie{};
  uint64_t pid = 0;
  size_t port = 0;
  absl::Time first_seen;
  absl::Time last_activity;
  std::vector<UniqueFd> idle;  // advertised connections waiting for a command
  int in_use = 0;              // connections handed out and not yet closed
  bool resume_sent = false;
  std::optional<ipc::ProcessInfo> info;
  std::string info_error;
};

struct ListenServer::Pending {
  UniqueFd fd;
  size_t port = 0;
  std::vector<uint8_t> bytes;
  absl::Time deadline;
};

struct ListenServer::State {
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::vector<PortOptions> ports;
  std::vector<UniqueFd> listen_fds;
  std::vector<ino_t> inodes;
  std::map<std::pair<size_t, Cookie>, Runtime> runtimes;
  UniqueFd wake_read, wake_write;
};

// Hands out the runtime's idle connections, one per command.
class ListenServer::PoolEndpoint final : public ipc::Endpoint {
 public:
  PoolEndpoint(std::shared_ptr<State> state, size_t port, Cookie cookie)
      : state_(std::move(state)), port_(port), cookie_(cookie) {}

  absl::StatusOr<ipc::Connection> Open(absl::Duration timeout) override {
    const auto key = std::make_pair(port_, cookie_);
    const absl::Time deadline = absl::Now() + timeout;
    std::unique_lock<std::mutex> lock(state_->mu);
    for (;;) {
      if (state_->stopping) return absl::UnavailableError("the daemon is shutting down");
      auto it = state_->runtimes.find(key);
      if (it == state_->runtimes.end()) {
        return absl::UnavailableError(absl::StrCat("the runtime (cookie ", ShortCookie(cookie_),
                                                   ") is no longer connected to ", Describe(),
                                                   " (has the process exited?)"));
      }
      Runtime& rt = it->second;
      if (!rt.idle.empty()) {
        UniqueFd fd = std::move(rt.idle.back());
        rt.idle.pop_back();
        ++rt.in_use;
        std::weak_ptr<State> weak = state_;
        std::shared_ptr<void> lease(static_cast<void*>(nullptr), [weak, key](void*) {
          if (auto s = weak.lock()) {
            std::lock_guard<std::mutex> l(s->mu);
            auto r = s->runtimes.find(key);
            if (r != s->runtimes.end()) {
              --r->second.in_use;
              r->second.last_activity = absl::Now();
            }
          }
        });
        return ipc::Connection(std::move(fd), std::move(lease));
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("no connection from runtime pid ", rt.pid, " on ", Describe(), " within ",
                         absl::FormatDuration(timeout), " (is it busy with another command?)"));
      }
      state_->cv.wait_until(lock, absl::ToChronoTime(deadline));
    }
  }

  std::string Describe() const override {
    if (port_ >= state_->ports.size()) return "an unknown listen port";  // ports never change
    return absl::StrCat("listen port ", state_->ports[port_].path);
  }

 private:
  std::shared_ptr<State> state_;
  size_t port_;
  Cookie cookie_;
};

ListenServer::ListenServer(ServerOptions options)
    : options_(std::move(options)), state_(std::make_shared<State>()) {}

void ListenServer::Log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

absl::StatusOr<std::unique_ptr<ListenServer>> ListenServer::Start(std::vector<PortOptions> ports,
                                                                  ServerOptions options) {
  std::unique_ptr<ListenServer> server(new ListenServer(std::move(options)));
  State& s = *server->state_;
  for (auto& p : ports) {
    if (p.dump_dir.empty()) p.dump_dir = p.path.substr(0, std::max<size_t>(1, p.path.rfind('/')));
    if (p.dump_dir_in_app.empty()) p.dump_dir_in_app = p.dump_dir;
    ino_t inode = 0;
    absl::StatusOr<UniqueFd> fd = BindPort(p, &inode);
    if (!fd.ok()) {
      for (size_t i = 0; i < s.ports.size(); ++i) ::unlink(s.ports[i].path.c_str());
      return fd.status();
    }
    s.listen_fds.push_back(*std::move(fd));
    s.inodes.push_back(inode);
    s.ports.push_back(p);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe2");
  s.wake_read.Reset(pipe_fds[0]);
  s.wake_write.Reset(pipe_fds[1]);
  server->thread_ = std::thread([srv = server.get()] { srv->Run(); });
  return server;
}

ListenServer::~ListenServer() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (state_->wake_write) (void)!::write(state_->wake_write.get(), "x", 1);
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> welcomes;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    welcomes.swap(welcomes_);
  }
  for (auto& t : welcomes) t.join();
  std::lock_guard<std::mutex> lock(state_->mu);
  for (size_t i = 0; i < state_->ports.size(); ++i) {
    struct stat st;
    if (::lstat(state_->ports[i].path.c_str(), &st) == 0 && st.st_ino == state_->inodes[i]) {
      ::unlink(state_->ports[i].path.c_str());
    }
  }
  state_->runtimes.clear();  // closes the idle connections
  state_->listen_fds.clear();
}

std::vector<RuntimeSnapshot> ListenServer::List() const {
  std::vector<RuntimeSnapshot> out;
  std::lock_guard<std::mutex> lock(state_->mu);
  const absl::Time now = absl::Now();
  for (const auto& [key, rt] : state_->runtimes) {
    const bool connected = !rt.idle.empty() || rt.in_use > 0;
    if (!connected && now - rt.last_activity > options_.reconnect_grace) continue;
    RuntimeSnapshot s;
    s.cookie = rt.cookie;
    s.pid = rt.pid;
    s.port = state_->ports[rt.port];
    s.first_seen = rt.first_seen;
    s.resume_sent = rt.resume_sent;
    s.info = rt.info;
    s.info_error = rt.info_error;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const RuntimeSnapshot& a, const RuntimeSnapshot& b) {
    if (a.port.path != b.port.path) return a.port.path < b.port.path;
    return a.pid < b.pid;
  });
  return out;
}

std::unique_ptr<ipc::Endpoint> ListenServer::EndpointFor(const Cookie& cookie,
                                                         const std::string& port_path) {
  size_t port = 0;
  for (; port < state_->ports.size(); ++port) {
    if (state_->ports[port].path == port_path) break;
  }
  return std::make_unique<PoolEndpoint>(state_, port, cookie);
}

// A new runtime: release it if it waits at start-up, then ask who it is.
void ListenServer::Welcome(const std::string& port_path, Cookie cookie) {
  size_t port = 0;
  while (port + 1 < state_->ports.size() && state_->ports[port].path != port_path) ++port;
  const bool resume = state_->ports[port].resume;  // ports never change after Start
  PoolEndpoint endpoint(state_, port, cookie);
  const auto key = std::make_pair(port, cookie);
  std::string resumed_text = "not resumed (resume: false)";
  if (resume) {
    absl::Status st = ipc::ResumeRuntime(endpoint, options_.command_timeout);
    std::lock_guard<std::mutex> lock(state_->mu);
    if (auto it = state_->runtimes.find(key); it != state_->runtimes.end()) {
      it->second.resume_sent = st.ok();
    }
    resumed_text = st.ok() ? "resumed" : absl::StrCat("ResumeRuntime failed: ", st.message());
  }
  absl::StatusOr<ipc::ProcessInfo> info = ipc::QueryProcessInfo(endpoint, options_.command_timeout);
  uint64_t pid = 0;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->runtimes.find(key);
    if (it == state_->runtimes.end()) return;
    pid = it->second.pid;
    if (info.ok()) {
      it->second.info = *info;
    } else {
      it->second.info_error = std::string(info.status().message());
    }
  }
  if (info.ok()) {
    Log(LogLevel::kInfo,
        absl::StrCat("listen port ", port_path, ": runtime pid ", pid, " (cookie ",
                     ShortCookie(cookie), ") connected: ", info->command_line, " (",
                     info->runtime_version.empty() ? "version unknown" : info->runtime_version,
                     "); ", resumed_text));
  } else {
    Log(LogLevel::kWarning, absl::StrCat("listen port ", port_path, ": runtime pid ", pid,
                                         " connected but did not answer ProcessInfo: ",
                                         info.status().message(), "; ", resumed_text));
  }
  if (options_.on_runtime_welcomed) options_.on_runtime_welcomed();
}

void ListenServer::Run() {
  State& s = *state_;
  std::list<Pending> pending;
  struct Welcomer {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Welcomer> welcomers;
  for (;;) {
    // The poll set: wake pipe, listening sockets, pending connections, idle connections.
    std::vector<pollfd> fds;
    fds.push_back({s.wake_read.get(), POLLIN, 0});
    for (const auto& l : s.listen_fds) fds.push_back({l.get(), POLLIN, 0});
    const size_t pending_begin = fds.size();
    absl::Time next_deadline = absl::Now() + kHousekeepingInterval;
    for (const auto& p : pending) {
      fds.push_back({p.fd.get(), POLLIN, 0});
      next_deadline = std::min(next_deadline, p.deadline);
    }
    const size_t idle_begin = fds.size();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.stopping) break;
      for (const auto& [key, rt] : s.runtimes) {
        for (const auto& fd : rt.idle) fds.push_back({fd.get(), POLLIN, 0});
      }
    }
    const int timeout_ms = static_cast<int>(std::max<int64_t>(
        0,
        absl::ToInt64Milliseconds(absl::Ceil(next_deadline - absl::Now(), absl::Milliseconds(1)))));
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      Log(LogLevel::kWarning, absl::StrCat("listen ports: poll failed: ", std::strerror(errno)));
      absl::SleepFor(kHousekeepingInterval);
    }
    const absl::Time now = absl::Now();
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) break;

    // An idle connection that becomes readable was closed by its runtime (it sends nothing
    // unasked); one handed out meanwhile is no longer in the idle list and is left alone.
    for (size_t i = idle_begin; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      for (auto& [key, rt] : s.runtimes) {
        auto it = std::find_if(rt.idle.begin(), rt.idle.end(),
                               [&](const UniqueFd& f) { return f.get() == fds[i].fd; });
        if (it == rt.idle.end()) continue;
        rt.idle.erase(it);
        rt.last_activity = now;
        break;
      }
    }

    // Advertises.
    size_t index = pending_begin;
    for (auto it = pending.begin(); it != pending.end(); ++index) {
      Pending& p = *it;
      const std::string& port_path = s.ports[p.port].path;
      std::string drop;
      if (fds[index].revents != 0) {
        uint8_t buf[ipc::kAdvertiseSize];
        const ssize_t got =
            ::recv(p.fd.get(), buf, ipc::kAdvertiseSize - p.bytes.size(), MSG_DONTWAIT);
        if (got > 0) {
          p.bytes.insert(p.bytes.end(), buf, buf + got);
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          drop = absl::StrCat("closed after ", p.bytes.size(), " of the advertise's ",
                              ipc::kAdvertiseSize, " bytes");
        }
      }
      if (drop.empty() && p.bytes.size() == ipc::kAdvertiseSize) {
        absl::StatusOr<ipc::Advertise> ad = ipc::ParseAdvertise(p.bytes);
        if (!ad.ok()) {
          drop = std::string(ad.status().message());
        } else {
          const auto key = std::make_pair(p.port, ad->cookie);
          auto rt = s.runtimes.find(key);
          if (rt == s.runtimes.end() &&
              static_cast<int>(s.runtimes.size()) >= options_.max_runtimes) {
            drop = absl::StrCat("already ", s.runtimes.size(),
                                " runtimes connected (limit max_runtimes)");
          } else {
            const bool is_new = rt == s.runtimes.end();
            if (is_new) {
              Runtime r;
              r.cookie = ad->cookie;
              r.pid = ad->pid;
              r.port = p.port;
              r.first_seen = now;
              rt = s.runtimes.emplace(key, std::move(r)).first;
            }
            rt->second.idle.push_back(std::move(p.fd));
            rt->second.last_activity = now;
            s.cv.notify_all();
            if (is_new) {
              auto done = std::make_shared<std::atomic<bool>>(false);
              welcomers.push_back({std::thread([this, port_path, cookie = ad->cookie, done] {
                                     Welcome(port_path, cookie);
                                     *done = true;
                                   }),
                                   done});
            }
            it = pending.erase(it);
            continue;
          }
        }
      }
      if (drop.empty() && now >= p.deadline) {
        drop =
            absl::StrCat("no advertise within ", absl::FormatDuration(options_.advertise_timeout),
                         " (", p.bytes.size(), " bytes)");
      }
      if (!drop.empty()) {
        Log(LogLevel::kWarning,
            absl::StrCat("listen port ", port_path,
                         ": dropped a connection that is not a .NET runtime: ", drop));
        it = pending.erase(it);
        continue;
      }
      ++it;
    }

    // New connections.
    for (size_t i = 0; i < s.listen_fds.size(); ++i) {
      if (fds[1 + i].revents == 0) continue;
      for (;;) {
        UniqueFd conn(
            ::accept4(s.listen_fds[i].get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!conn) break;
        if (pending.size() >= kMaxPendingConnections) {
          Log(LogLevel::kWarning,
              absl::StrCat("listen port ", s.ports[i].path, ": ", kMaxPendingConnections,
                           " connections await their advertise; dropped one"));
          continue;
        }
        pending.push_back({std::move(conn), i, {}, now + options_.advertise_timeout});
      }
    }

    // Runtimes that went away and did not come back.
    for (auto it = s.runtimes.begin(); it != s.runtimes.end();) {
      Runtime& rt = it->second;
      if (rt.idle.empty() && rt.in_use == 0 && now - rt.last_activity > options_.reconnect_grace) {
        Log(LogLevel::kInfo,
            absl::StrCat("listen port ", s.ports[rt.port].path, ": runtime pid ", rt.pid,
                         " (cookie ", ShortCookie(rt.cookie), ") disconnected"));
        it = s.runtimes.erase(it);
        s.cv.notify_all();
      } else {
        ++it;
      }
    }
    // Finished welcomes.
    for (auto it = welcomers.begin(); it != welcomers.end();) {
      if (*it->done) {
        it->thread.join();
        it = welcomers.erase(it);
      } else {
        ++it;
      }
    }
    if (fds[0].revents != 0) {
      char drain[64];
      while (::read(s.wake_read.get(), drain, sizeof(drain)) > 0) {
      }
    }
  }
  // Stopping: hand the unfinished welcomes to the destructor, which joins them.
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& w : welcomers) welcomes_.push_back(std::move(w.thread));
}

}  // namespace clrdiag::listen
