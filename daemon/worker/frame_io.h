// Length-prefixed protobuf frames over a pipe: the daemon ↔ analysis worker channel.
// Frame = uint32 little-endian length + serialized message.
#pragma once

#include <google/protobuf/message_lite.h>

#include "absl/status/status.h"

namespace clrdiag::worker {

// Named limit: the largest frame either side accepts.
inline constexpr uint32_t kMaxFrameBytes = 16 << 20;

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg);
// NotFound at a clean end of stream (EOF before a frame starts), DataLoss for a torn or
// oversized frame, Unavailable for a read error.
absl::Status ReadFrame(int fd, google::protobuf::MessageLite* msg);

}  // namespace clrdiag::worker
