#include "daemon/auth/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace clrdiag::auth {
namespace {

std::string Json(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

// gRPC status code names: gRPC and absl number their codes alike, and absl names them.
std::string CodeName(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open the audit log ", path, ": ", std::strerror(errno)));
  }
  // Re-assert the mode: a file created earlier by hand may be looser.
  if (::fchmod(fd.get(), 0600) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot make the audit log ", path, " mode 0600: ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, std::move(fd)));
}

void AuditLog::Record(const Identity* who, const std::string& peer, const AuditEvent& ev, int code,
                      const std::string& message) {
  std::string line = absl::StrCat(
      "{\"time\":",
      Json(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())));
  if (who) {
    absl::StrAppend(&line, ",\"identity\":", Json(who->name),
                    ",\"auth\":", Json(who->method_name()),
                    ",\"role\":", Json(RoleName(who->role)));
    if (who->uid) absl::StrAppend(&line, ",\"uid\":", *who->uid);
  } else {
    absl::StrAppend(&line, ",\"identity\":null");
  }
  const char* result = code == 0 ? "ok" : (code == 7 || code == 16) ? "denied" : "error";
  absl::StrAppend(&line, ",\"peer\":", Json(who ? who->peer : peer),
                  ",\"action\":", Json(ev.action), ",\"target\":", Json(ev.target),
                  ",\"result\":", Json(result));
  if (code != 0) {
    absl::StrAppend(&line, ",\"code\":", Json(CodeName(code)), ",\"message\":", Json(message));
  }
  absl::StrAppend(&line, ",\"bytes\":", ev.bytes, "}\n");
  std::lock_guard<std::mutex> lock(mu_);
  // One write per line with O_APPEND: lines never interleave.
  if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    spdlog::error("audit log {}: write failed: {}", path_, std::strerror(errno));
  }
}

}  // namespace clrdiag::auth
