#include "daemon/worker/frame_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/fs.h"

namespace clrdiag::worker {
namespace {

// Returns bytes read before EOF (== n when complete), or -1 on error.
ssize_t ReadAll(int fd, char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// Frames of up to a few MiB pass every few milliseconds while a large output streams: each
// thread keeps one buffer for them rather than a fresh allocation (fresh pages) per frame.
// A buffer that grew past this is let go after use.
constexpr size_t kKeptBufferBytes = size_t{2} << 20;

std::string& FrameBuffer() {
  thread_local std::string buffer;
  return buffer;
}

void ReleaseIfLarge(std::string& buffer) {
  if (buffer.capacity() > kKeptBufferBytes) std::string().swap(buffer);
}

}  // namespace

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg) {
  std::string& body = FrameBuffer();
  if (!msg.SerializeToString(&body)) return absl::InternalError("cannot serialize frame");
  if (body.size() > kMaxFrameBytes) return absl::ResourceExhaustedError("frame too large");
  uint32_t len = static_cast<uint32_t>(body.size());
  char hdr[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                 static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  const bool written = WriteFully(fd, hdr, 4) && WriteFully(fd, body.data(), body.size());
  const int err = errno;
  ReleaseIfLarge(body);
  if (!written) {
    return absl::UnavailableError(absl::StrCat("write to peer failed: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status ReadFrame(int fd, google::protobuf::MessageLite* msg) {
  unsigned char hdr[4];
  ssize_t n = ReadAll(fd, reinterpret_cast<char*>(hdr), 4);
  if (n == 0) return absl::NotFoundError("end of stream");
  if (n < 0) return absl::UnavailableError(absl::StrCat("read failed: ", std::strerror(errno)));
  if (n != 4) return absl::DataLossError("torn frame header");
  uint32_t len = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (uint32_t{hdr[3]} << 24);
  if (len > kMaxFrameBytes) return absl::DataLossError("oversized frame");
  std::string& body = FrameBuffer();
  body.resize(len);
  const bool complete = ReadAll(fd, body.data(), len) == static_cast<ssize_t>(len);
  const bool parsed = complete && msg->ParseFromString(body);
  ReleaseIfLarge(body);
  if (!complete) return absl::DataLossError("torn frame");
  if (!parsed) return absl::DataLossError("unparsable frame");
  return absl::OkStatus();
}

}  // namespace clrdiag::worker
