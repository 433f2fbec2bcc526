// libFuzzer target: every decoder that sees bytes from a (possibly hostile) runtime.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/ipc/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ipc = clrdiag::ipc;
  const std::span<const uint8_t> bytes(data, size);

  if (size >= ipc::kHeaderSize) (void)ipc::DecodeHeader(bytes.first(ipc::kHeaderSize));
  (void)ipc::DecodeHeader(bytes);
  for (int version = 1; version <= 3; ++version) (void)ipc::ParseProcessInfo(version, bytes);
  (void)ipc::ParseErrorReply(bytes);
  (void)ipc::ParseAdvertise(bytes);
  if (size >= ipc::kAdvertiseSize) (void)ipc::ParseAdvertise(bytes.first(ipc::kAdvertiseSize));

  // Strings back to back until the reader fails or runs dry; each read must either
  // consume bytes or fail, so this terminates.
  ipc::PayloadReader reader(bytes);
  while (reader.remaining() > 0) {
    const size_t before = reader.remaining();
    absl::StatusOr<std::string> s = reader.String();
    if (!s.ok() || reader.remaining() >= before) break;
    // Decoded text is valid UTF-8 without NULs, so it must survive a write/read round trip.
    ipc::PayloadWriter writer;
    writer.String(*s);
    ipc::PayloadReader again(writer.bytes());
    absl::StatusOr<std::string> back = again.String();
    if (!back.ok() || *back != *s || again.remaining() != 0) __builtin_trap();
  }
  return 0;
}
