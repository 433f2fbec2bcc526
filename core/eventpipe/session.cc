#include "core/eventpipe/session.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace clrdiag::eventpipe {
namespace {

constexpr uint32_t kFormatNetTrace = 1;
constexpr size_t kMaxProviders = 1000;

// Appends little-endian integers and IPC strings.
struct Writer {
  std::vector<uint8_t> out;
  void U8(uint8_t v) { out.push_back(v); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void String(const std::string& utf8) {
    ipc::PayloadWriter w;
    w.String(utf8);
    out.insert(out.end(), w.bytes().begin(), w.bytes().end());
  }
};

absl::Status Validate(const SessionOptions& o) {
  if (o.providers.empty())
    return absl::InvalidArgumentError("an EventPipe session needs a provider");
  if (o.providers.size() > kMaxProviders) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxProviders, " providers"));
  }
  if (o.buffer_mb == 0) return absl::InvalidArgumentError("buffer size must be at least 1 MB");
  for (const Provider& p : o.providers) {
    if (p.name.empty()) return absl::InvalidArgumentError("provider with an empty name");
    if (p.level > 5) {
      return absl::InvalidArgumentError(
          absl::StrCat("provider ", p.name, ": level ", p.level, " is not in 0..5"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<uint8_t> EncodeCollectTracingPayload(const SessionOptions& options, bool v3) {
  Writer w;
  w.U32(options.buffer_mb);
  w.U32(kFormatNetTrace);
  w.U8(options.rundown ? 1 : 0);
  if (v3) w.U8(options.stackwalk ? 1 : 0);
  w.U32(static_cast<uint32_t>(options.providers.size()));
  for (const Provider& p : options.providers) {
    w.U64(p.keywords);
    w.U32(p.level);
    w.String(p.name);
    w.String(p.arguments);
  }
  return std::move(w.out);
}

absl::StatusOr<std::unique_ptr<Session>> Session::Start(std::shared_ptr<ipc::Endpoint> endpoint,
                                                        const SessionOptions& options,
                                                        absl::Duration timeout) {
  RETURN_IF_ERROR(Validate(options));
  const absl::Time deadline = absl::Now() + timeout;
  const std::string where = endpoint->Describe();
  for (const uint8_t command : {kCollectTracing3, kCollectTracing2}) {
    const char* name = command == kCollectTracing3 ? "CollectTracing3" : "CollectTracing2";
    ASSIGN_OR_RETURN(
        std::vector<uint8_t> message,
        ipc::EncodeMessage(static_cast<uint8_t>(ipc::CommandSet::kEventPipe), command,
                           EncodeCollectTracingPayload(options, command == kCollectTracing3)));
    ASSIGN_OR_RETURN(ipc::Connection conn,
                     endpoint->Open(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    const auto annotate = [&](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat(name, " via ", where, ": ", s.message()));
    };
    if (absl::Status s = conn.Send(message, deadline); !s.ok()) return annotate(s);
    absl::StatusOr<ipc::Message> reply = conn.Receive(deadline);
    if (!reply.ok()) return annotate(reply.status());
    if (reply->header.command_set != static_cast<uint8_t>(ipc::CommandSet::kServer)) {
      return annotate(absl::DataLossError("reply is not from the server command set"));
    }
    if (reply->header.command_id == ipc::server_cmd::kOk) {
      ipc::PayloadReader r(reply->payload);
      absl::StatusOr<uint64_t> id = r.U64();
      if (!id.ok()) return annotate(absl::DataLossError("OK reply without a session id"));
      return std::unique_ptr<Session>(
          new Session(std::move(endpoint), std::move(conn), *id, command));
    }
    absl::StatusOr<ipc::ErrorReply> error = ipc::ParseErrorReply(reply->payload);
    if (!error.ok()) return annotate(absl::DataLossError("malformed error reply"));
    if (error->hresult == ipc::hresult::kUnknownCommand && command == kCollectTracing3) continue;
    return annotate(absl::FailedPreconditionError(
        absl::StrFormat("the runtime refused the session: HRESULT 0x%08X (%s)", error->hresult,
                        ipc::DescribeHresult(error->hresult))));
  }
  return absl::InternalError("unreachable");
}

absl::StatusOr<size_t> Session::Read(std::span<uint8_t> buffer, absl::Time deadline) {
  for (;;) {
    const ssize_t n = ::recv(conn_.fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return 0;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, "reading the stream");
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("no stream data");
      timeout_ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX));
    }
    pollfd p{.fd = conn_.fd(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, timeout_ms) < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
  }
}

absl::Status Session::Stop(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string where = endpoint_->Describe();
  ipc::PayloadWriter w;
  w.U64(id_);
  ASSIGN_OR_RETURN(std::vector<uint8_t> message,
                   ipc::EncodeMessage(static_cast<uint8_t>(ipc::CommandSet::kEventPipe),
                                      kStopTracing, w.bytes()));
  ASSIGN_OR_RETURN(ipc::Connection conn, endpoint_->Open(timeout));
  const auto annotate = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("StopTracing via ", where, ": ", s.message()));
  };
  if (absl::Status s = conn.Send(message, deadline); !s.ok()) return annotate(s);
  absl::StatusOr<ipc::Message> reply = conn.Receive(deadline);
  if (!reply.ok()) return annotate(reply.status());
  if (reply->header.command_id == ipc::server_cmd::kOk) return absl::OkStatus();
  absl::StatusOr<ipc::ErrorReply> error = ipc::ParseErrorReply(reply->payload);
  return annotate(absl::FailedPreconditionError(
      absl::StrFormat("the runtime refused to stop session %d: HRESULT 0x%08X", id_,
                      error.ok() ? error->hresult : 0)));
}

}  // namespace clrdiag::eventpipe
