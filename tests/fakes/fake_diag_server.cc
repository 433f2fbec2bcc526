#include "tests/fakes/fake_diag_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/ipc/codec.h"

namespace clrdiag::testing {
namespace {

constexpr size_t kHeaderSize = 20;
constexpr char kMagic[14] = "DOTNET_IPC_V1";
constexpr uint8_t kServerSet = 0xFF;
constexpr uint8_t kOkId = 0x00;
constexpr uint8_t kErrorId = 0xFF;
constexpr int kListenBacklog = 16;

std::vector<uint8_t> Le32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}

// A reply frame; `declared_size` overrides the size field when set.
std::vector<uint8_t> Frame(uint8_t set, uint8_t id, const std::vector<uint8_t>& payload,
                           std::optional<uint16_t> declared_size = std::nullopt) {
  const uint16_t size = declared_size.value_or(static_cast<uint16_t>(kHeaderSize + payload.size()));
  std::vector<uint8_t> out(kMagic, kMagic + sizeof(kMagic));
  out.push_back(static_cast<uint8_t>(size));
  out.push_back(static_cast<uint8_t>(size >> 8));
  out.push_back(set);
  out.push_back(id);
  out.push_back(0);
  out.push_back(0);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

void WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away; nothing to report to
    done += static_cast<size_t>(n);
  }
}

}  // namespace

Behavior Behavior::Ok(std::vector<uint8_t> payload) {
  Behavior b = Of(Kind::kOk);
  b.payload = std::move(payload);
  return b;
}

Behavior Behavior::OkHresult() { return Ok(Le32(0)); }

Behavior Behavior::Error(uint32_t hresult) {
  Behavior b = Of(Kind::kError);
  b.hresult = hresult;
  return b;
}

Behavior Behavior::ErrorWithMessage(uint32_t hresult, std::string message) {
  Behavior b = Error(hresult);
  b.message = std::move(message);
  return b;
}

Behavior Behavior::UnknownCommand() { return Error(ipc::hresult::kUnknownCommand); }

Behavior Behavior::Raw(std::vector<uint8_t> bytes) {
  Behavior b = Of(Kind::kRaw);
  b.payload = std::move(bytes);
  return b;
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path) {
  UniqueFd dir_fd;
  std::string address = path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return absl::InvalidArgumentError("socket name too long");
    const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    dir_fd.Reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) return ErrnoStatus(errno, absl::StrCat("open ", dir));
    address = absl::StrCat("/proc/self/fd/", dir_fd.get(), "/", path.substr(slash + 1));
    if (address.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError("socket file name too long");
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  address.copy(addr.sun_path, address.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", path));
  }
  if (::listen(fd.get(), kListenBacklog) != 0) return ErrnoStatus(errno, "listen");
  return fd;
}

absl::StatusOr<std::unique_ptr<FakeDiagServer>> FakeDiagServer::Start(std::string socket_path,
                                                                      Script script) {
  ASSIGN_OR_RETURN(UniqueFd listen_fd, ListenUnix(socket_path));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::unlink(socket_path.c_str());
    return ErrnoStatus(errno, "pipe2");
  }
  std::unique_ptr<FakeDiagServer> server(new FakeDiagServer(
      std::move(socket_path), std::move(listen_fd), UniqueFd(pipe_fds[0]), UniqueFd(pipe_fds[1])));
  server->script_ = std::move(script);  // before the thread: no request sees an empty script
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

FakeDiagServer::FakeDiagServer(std::string path, UniqueFd listen_fd, UniqueFd wake_read,
                               UniqueFd wake_write)
    : path_(std::move(path)),
      listen_fd_(std::move(listen_fd)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)) {}

FakeDiagServer::~FakeDiagServer() {
  const char byte = 0;
  while (::write(wake_write_.get(), &byte, 1) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
  hung_.clear();
  listen_fd_.Reset();
  ::unlink(path_.c_str());
}

void FakeDiagServer::Set(uint8_t command_set, uint8_t command_id, Behavior behavior) {
  std::lock_guard lock(mu_);
  script_[{command_set, command_id}] = std::move(behavior);
}

std::vector<RecordedRequest> FakeDiagServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

int FakeDiagServer::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

bool FakeDiagServer::WaitReadable(int fd) {
  for (;;) {
    pollfd fds[2] = {{.fd = fd, .events = POLLIN, .revents = 0},
                     {.fd = wake_read_.get(), .events = POLLIN, .revents = 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) return false;
    if (fds[0].revents != 0) return true;
  }
}

bool FakeDiagServer::ReadRequest(int fd, RecordedRequest& out) {
  const auto read_exactly = [&](uint8_t* buf, size_t len) {
    size_t got = 0;
    while (got < len) {
      if (!WaitReadable(fd)) return false;
      const ssize_t n = ::recv(fd, buf + got, len - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  };
  uint8_t header[kHeaderSize];
  if (!read_exactly(header, sizeof(header))) return false;
  const uint16_t size = static_cast<uint16_t>(header[14] | (header[15] << 8));
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    WriteAll(fd, Frame(kServerSet, kErrorId, Le32(ipc::hresult::kUnknownMagic)));
    return false;
  }
  if (size < kHeaderSize) {
    WriteAll(fd, Frame(kServerSet, kErrorId, Le32(ipc::hresult::kBadEncoding)));
    return false;
  }
  out.command_set = header[16];
  out.command_id = header[17];
  out.payload.resize(size - kHeaderSize);
  return read_exactly(out.payload.data(), out.payload.size());
}

void FakeDiagServer::Run() {
  for (;;) {
    if (!WaitReadable(listen_fd_.get())) return;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    {
      std::lock_guard lock(mu_);
      ++connections_;
    }
    RecordedRequest request;
    if (!ReadRequest(conn.get(), request)) continue;
    Behavior behavior = Behavior::UnknownCommand();
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      auto it = script_.find({request.command_set, request.command_id});
      if (it != script_.end()) behavior = it->second;
    }
    if (behavior.before_reply) behavior.before_reply(request);
    Answer(std::move(conn), behavior);
  }
}

void FakeDiagServer::Answer(UniqueFd conn, const Behavior& behavior) {
  using Kind = Behavior::Kind;
  switch (behavior.kind) {
    case Kind::kOk:
      WriteAll(conn.get(), Frame(kServerSet, kOkId, behavior.payload));
      break;
    case Kind::kError: {
      std::vector<uint8_t> payload = Le32(behavior.hresult);
      if (behavior.message) {
        ipc::PayloadWriter w;
        w.String(*behavior.message);
        payload.insert(payload.end(), w.bytes().begin(), w.bytes().end());
      }
      WriteAll(conn.get(), Frame(kServerSet, kErrorId, payload));
      break;
    }
    case Kind::kCloseNoReply:
      break;
    case Kind::kCloseMidReply: {
      std::vector<uint8_t> frame = Frame(kServerSet, kOkId, Le32(0));
      frame.resize(kHeaderSize / 2);
      WriteAll(conn.get(), frame);
      break;
    }
    case Kind::kMalformedHeader: {
      std::vector<uint8_t> frame = Frame(kServerSet, kOkId, Le32(0));
      frame[0] = 'X';
      WriteAll(conn.get(), frame);
      break;
    }
    case Kind::kOversizedSize:
      WriteAll(conn.get(), Frame(kServerSet, kOkId, Le32(0), uint16_t{0xFFFF}));
      break;
    case Kind::kHang:
      hung_.push_back(std::move(conn));
      break;
    case Kind::kRaw:
      WriteAll(conn.get(), behavior.payload);
      break;
  }
  // `conn` closes here unless kHang kept it.
}

}  // namespace clrdiag::testing
