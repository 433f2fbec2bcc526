#include "core/ipc/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"

namespace clrdiag::ipc {
namespace {

// sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxSocketPathLength = sizeof(sockaddr_un::sun_path) - 1;
// Connect timeout for dump requests (the reply itself has no deadline). dotnet-dump uses 30 s.
constexpr absl::Duration kDumpConnectTimeout = absl::Seconds(30);
// While the runtime's listen backlog is full, a non-blocking connect fails with EAGAIN and
// has to be retried; this is the pause between tries.
constexpr absl::Duration kConnectRetryInterval = absl::Milliseconds(10);

constexpr absl::string_view kClosedBeforeReply =
    "the runtime closed the connection before replying (did the process exit?)";

// Waits until `fd` is ready for `events` or `deadline` passes.
absl::Status WaitFor(int fd, short events, absl::Time deadline, absl::string_view what) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat("timed out ", what));
      }
      timeout_ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX));
    }
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    // On POLLERR/POLLHUP the following read or write reports what happened.
    if (n > 0) return absl::OkStatus();
  }
}

absl::Status ConnectError(int err, const std::string& path) {
  switch (err) {
    case ECONNREFUSED:
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to ", path,
          ": connection refused; nothing listens on it, so the process has probably exited "
          "and left a stale socket behind"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot connect to ", path,
          ": permission denied; the runtime's socket is private to its user (mode 0600), so "
          "the daemon must run as root or as the target's user"));
    case ENOENT:
      return absl::NotFoundError(
          absl::StrCat("cannot connect to ", path,
                       ": no such socket (has the process exited, or does it run with "
                       "DOTNET_EnableDiagnostics=0?)"));
    default:
      return ErrnoStatus(err, absl::StrCat("cannot connect to ", path));
  }
}

// Reads exactly `out.size()` bytes.
absl::Status ReadFully(int fd, std::span<uint8_t> out, absl::Time deadline) {
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::recv(fd, out.data() + got, out.size() - got, MSG_DONTWAIT);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0 || errno == ECONNRESET) return absl::UnavailableError(kClosedBeforeReply);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return ErrnoStatus(errno, "reading the runtime's reply");
    }
    RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "waiting for the runtime's reply"));
  }
  return absl::OkStatus();
}

// Maps an error HRESULT from the runtime to a status code.
absl::StatusCode CodeForHresult(uint32_t hr) {
  switch (hr) {
    case hresult::kUnknownCommand:
    case hresult::kNotSupported:
      return absl::StatusCode::kUnimplemented;
    case hresult::kInvalidArg:
    case hresult::kBadEncoding:
      return absl::StatusCode::kInvalidArgument;
    default:
      // The runtime understood the request but could not do it (createdump failed, ...).
      return absl::StatusCode::kFailedPrecondition;
  }
}

// A classified reply: OK with its payload, or an Error.
struct Reply {
  bool ok = false;
  std::vector<uint8_t> payload;
  ErrorReply error;
};

// One request on its own connection, as the runtime serves one command per connection.
absl::StatusOr<Reply> Exchange(Endpoint& endpoint, CommandSet set, uint8_t id,
                               std::span<const uint8_t> payload, absl::Time connect_deadline,
                               absl::Time reply_deadline, absl::string_view command) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> request,
                   EncodeMessage(static_cast<uint8_t>(set), id, payload));
  ASSIGN_OR_RETURN(Connection conn,
                   endpoint.Open(std::max(connect_deadline - absl::Now(), absl::ZeroDuration())));
  const std::string socket_path = endpoint.Describe();
  const auto annotate = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(command, " via ", socket_path, ": ", s.message()));
  };
  if (absl::Status s = conn.Send(request, connect_deadline); !s.ok()) return annotate(s);
  absl::StatusOr<Message> msg = conn.Receive(reply_deadline);
  if (!msg.ok()) return annotate(msg.status());
  const Header& h = msg->header;
  if (h.command_set != static_cast<uint8_t>(CommandSet::kServer)) {
    return absl::DataLossError(
        absl::StrFormat("%s via %s: reply has command set 0x%02X, expected 0xFF (server)", command,
                        socket_path, h.command_set));
  }
  Reply reply;
  if (h.command_id == server_cmd::kOk) {
    reply.ok = true;
    reply.payload = std::move(msg->payload);
    return reply;
  }
  if (h.command_id != server_cmd::kError) {
    return absl::DataLossError(
        absl::StrFormat("%s via %s: reply has unknown id 0x%02X (expected 0x00 OK or 0xFF error)",
                        command, socket_path, h.command_id));
  }
  absl::StatusOr<ErrorReply> error = ParseErrorReply(msg->payload);
  if (!error.ok()) {
    return absl::DataLossError(absl::StrCat(command, " via ", socket_path,
                                            ": malformed error reply: ", error.status().message()));
  }
  reply.error = *std::move(error);
  reply.payload = std::move(msg->payload);
  return reply;
}

// dotnet-dump's wording for a failed dump, unless the runtime (v3) said something itself.
std::string DumpFailureText(const ErrorReply& e, size_t payload_size) {
  std::string text(absl::StripTrailingAsciiWhitespace(e.message));
  if (!text.empty()) return text;
  const bool v3_format = payload_size >= 8;
  switch (e.hresult) {
    case hresult::kUnknownCommand:
      return "Write dump failed - Command is not supported.";
    case hresult::kInvalidArg:
      return "Write dump failed - Invalid command argument.";
    case hresult::kNotSupported:
      if (!v3_format) return "Write dump - Not supported by this runtime.";
      break;
    case hresult::kBadEncoding:
      return "Write dump failed - the target runtime rejected the request as invalid (bad "
             "encoding).";
    default:
      break;
  }
  return absl::StrFormat("Write dump failed - HRESULT: 0x%08X.", e.hresult);
}

}  // namespace

absl::StatusOr<Connection> Connection::Connect(const std::string& socket_path,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (socket_path.empty()) return absl::InvalidArgumentError("empty socket path");

  // A path too long for sun_path is reached through its directory: open the directory with
  // O_PATH and name the socket as /proc/self/fd/<dirfd>/<name>, which the kernel resolves.
  UniqueFd dir_fd;
  std::string address = socket_path;
  if (socket_path.size() > kMaxSocketPathLength) {
    const size_t slash = socket_path.rfind('/');
    if (slash == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "socket name ", socket_path, " is longer than ", kMaxSocketPathLength, " bytes"));
    }
    const std::string dir = slash == 0 ? "/" : socket_path.substr(0, slash);
    dir_fd.Reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) return ConnectError(errno, socket_path);
    address = absl::StrCat("/proc/self/fd/", dir_fd.get(), "/", socket_path.substr(slash + 1));
    if (address.size() > kMaxSocketPathLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("socket file name in ", socket_path, " is too long to connect to"));
    }
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  address.copy(addr.sun_path, address.size());
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());

  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      // Backlog full: the runtime is busy; try again until the deadline.
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat("timed out connecting to ", socket_path,
                                                        " (the runtime is not "
                                                        "accepting connections)"));
      }
      absl::SleepFor(std::min(left, kConnectRetryInterval));
      continue;
    }
    if (err != EINPROGRESS) return ConnectError(err, socket_path);
    RETURN_IF_ERROR(
        WaitFor(fd.get(), POLLOUT, deadline, absl::StrCat("connecting to ", socket_path)));
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
      return ErrnoStatus(errno, "getsockopt(SO_ERROR)");
    }
    if (so_error != 0) return ConnectError(so_error, socket_path);
    break;
  }
  return Connection(std::move(fd));
}

absl::Status Connection::Send(const std::vector<uint8_t>& message, absl::Time deadline) {
  size_t sent = 0;
  while (sent < message.size()) {
    const ssize_t n = ::send(fd_.get(), message.data() + sent, message.size() - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      return absl::UnavailableError(
          "the runtime closed the connection before the request was sent (did the process "
          "exit?)");
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return ErrnoStatus(errno, "sending the request");
    }
    RETURN_IF_ERROR(WaitFor(fd_.get(), POLLOUT, deadline, "sending the request"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Message> Connection::Receive(absl::Time deadline) {
  std::array<uint8_t, kHeaderSize> header_bytes;
  RETURN_IF_ERROR(ReadFully(fd_.get(), header_bytes, deadline));
  Message msg;
  absl::StatusOr<Header> header = DecodeHeader(header_bytes);
  if (!header.ok()) {
    return absl::DataLossError(
        absl::StrCat("malformed reply from the runtime: ", header.status().message()));
  }
  msg.header = *header;
  msg.payload.resize(msg.header.size - kHeaderSize);
  RETURN_IF_ERROR(ReadFully(fd_.get(), std::span(msg.payload), deadline));
  return msg;
}

absl::StatusOr<ProcessInfo> QueryProcessInfo(const std::string& socket_path,
                                             absl::Duration timeout) {
  SocketEndpoint endpoint(socket_path);
  return QueryProcessInfo(endpoint, timeout);
}

absl::StatusOr<ProcessInfo> QueryProcessInfo(Endpoint& endpoint, absl::Duration timeout) {
  const std::string socket_path = endpoint.Describe();
  struct Attempt {
    uint8_t id;
    int version;
    absl::string_view name;
  };
  static constexpr Attempt kAttempts[] = {{process_cmd::kProcessInfo3, 3, "ProcessInfo3"},
                                          {process_cmd::kProcessInfo2, 2, "ProcessInfo2"},
                                          {process_cmd::kProcessInfo, 1, "ProcessInfo"}};
  const absl::Time deadline = absl::Now() + timeout;
  for (size_t i = 0; i < std::size(kAttempts); ++i) {
    const Attempt& a = kAttempts[i];
    ASSIGN_OR_RETURN(Reply reply, Exchange(endpoint, CommandSet::kProcess, a.id, {}, deadline,
                                           deadline, a.name));
    if (reply.ok) {
      absl::StatusOr<ProcessInfo> info = ParseProcessInfo(a.version, reply.payload);
      if (!info.ok()) {
        return absl::DataLossError(absl::StrCat("malformed ", a.name, " reply via ", socket_path,
                                                ": ", info.status().message()));
      }
      return info;
    }
    const bool last = i + 1 == std::size(kAttempts);
    if (reply.error.hresult == hresult::kUnknownCommand && !last) continue;
    return absl::Status(
        CodeForHresult(reply.error.hresult),
        absl::StrFormat("%s via %s failed: HRESULT 0x%08X (%s)", a.name, socket_path,
                        reply.error.hresult, DescribeHresult(reply.error.hresult)));
  }
  return absl::InternalError("unreachable");
}

absl::Status ResumeRuntime(Endpoint& endpoint, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(Reply reply,
                   Exchange(endpoint, CommandSet::kProcess, process_cmd::kResumeRuntime, {},
                            deadline, deadline, "ResumeRuntime"));
  if (reply.ok) return absl::OkStatus();
  return absl::Status(
      CodeForHresult(reply.error.hresult),
      absl::StrFormat("ResumeRuntime via %s failed: HRESULT 0x%08X (%s)", endpoint.Describe(),
                      reply.error.hresult, DescribeHresult(reply.error.hresult)));
}

absl::Status GenerateCoreDump(const std::string& socket_path, const DumpRequest& request) {
  SocketEndpoint endpoint(socket_path);
  return GenerateCoreDump(endpoint, request);
}

absl::Status GenerateCoreDump(Endpoint& endpoint, const DumpRequest& request) {
  const std::string socket_path = endpoint.Describe();
  struct Attempt {
    uint8_t id;
    absl::string_view name;
  };
  static constexpr Attempt kAttempts[] = {{dump_cmd::kGenerateCoreDump3, "GenerateCoreDump3"},
                                          {dump_cmd::kGenerateCoreDump2, "GenerateCoreDump2"},
                                          {dump_cmd::kGenerateCoreDump, "GenerateCoreDump"}};
  for (size_t i = 0; i < std::size(kAttempts); ++i) {
    const Attempt& a = kAttempts[i];
    uint32_t third = request.flags;
    if (a.id == dump_cmd::kGenerateCoreDump) {
      // v1 carries a "diagnostics" boolean, not flags: only LoggingEnabled fits.
      if ((request.flags & ~dump_flags::kLoggingEnabled) != 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "the runtime behind %s only supports GenerateCoreDump v1, which cannot carry dump "
            "flags 0x%X (crash report, verbose logging); retry without them",
            socket_path, request.flags & ~dump_flags::kLoggingEnabled));
      }
      third = (request.flags & dump_flags::kLoggingEnabled) != 0 ? 1 : 0;
    }
    const std::vector<uint8_t> payload =
        EncodeDumpRequestPayload(request.path, request.type, third);
    ASSIGN_OR_RETURN(Reply reply,
                     Exchange(endpoint, CommandSet::kDump, a.id, payload,
                              absl::Now() + kDumpConnectTimeout, absl::InfiniteFuture(), a.name));
    if (reply.ok) return absl::OkStatus();
    const bool last = i + 1 == std::size(kAttempts);
    if (reply.error.hresult == hresult::kUnknownCommand && !last) continue;
    return absl::Status(CodeForHresult(reply.error.hresult),
                        DumpFailureText(reply.error, reply.payload.size()));
  }
  return absl::InternalError("unreachable");
}

std::string DescribeHresult(uint32_t hr) {
  switch (hr) {
    case hresult::kBadEncoding:
      return "the runtime rejected the request as malformed (bad encoding)";
    case hresult::kUnknownCommand:
      return "Command is not supported";
    case hresult::kUnknownMagic:
      return "the runtime did not recognise the IPC magic";
    case hresult::kNotSupported:
      return "Not supported by this runtime";
    case hresult::kFail:
      return "unspecified failure (E_FAIL)";
    case hresult::kInvalidArg:
      return "Invalid command argument";
    case 0x8013135B:
      return "not yet available (the runtime is still starting)";
    case 0x80131371:
      return "the runtime is not initialized yet";
    case 0:
      return "the runtime reported a failure without an HRESULT";
    default:
      return "unknown HRESULT";
  }
}

}  // namespace clrdiag::ipc

namespace clrdiag::ipc {
bool IsStaleSocket(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         absl::StrContains(status.message(), "connection refused");
}
}  // namespace clrdiag::ipc
