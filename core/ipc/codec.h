// Diagnostics IPC wire codec (pure, no I/O; fuzzed). All integers little-endian.
// Message = 20-byte header ("DOTNET_IPC_V1\0", uint16 total size, uint8 command set,
// uint8 command id, uint16 reserved) + payload. Strings are uint32 length in UTF-16 units
// including the terminating NUL, then UTF-16LE; length 0 means a null string.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::ipc {

inline constexpr size_t kHeaderSize = 20;
inline constexpr size_t kMaxMessageSize = 0xFFFF;
inline constexpr size_t kMaxPayloadSize = kMaxMessageSize - kHeaderSize;

enum class CommandSet : uint8_t {
  kDump = 0x01,
  kEventPipe = 0x02,
  kProfiler = 0x03,
  kProcess = 0x04,
  kServer = 0xFF
};
namespace dump_cmd {
inline constexpr uint8_t kGenerateCoreDump = 0x01, kGenerateCoreDump2 = 0x02,
                         kGenerateCoreDump3 = 0x03;
}
namespace process_cmd {
inline constexpr uint8_t kProcessInfo = 0x00, kResumeRuntime = 0x01, kProcessEnvironment = 0x02,
                         kProcessInfo2 = 0x04, kProcessInfo3 = 0x08;
}
namespace server_cmd {
inline constexpr uint8_t kOk = 0x00, kError = 0xFF;
}
namespace hresult {
inline constexpr uint32_t kBadEncoding = 0x80131384, kUnknownCommand = 0x80131385,
                          kUnknownMagic = 0x80131386, kNotSupported = 0x80131515,
                          kFail = 0x80004005, kInvalidArg = 0x80070057;
}

struct Header {
  uint16_t size = 0;  // header + payload
  uint8_t command_set = 0;
  uint8_t command_id = 0;
  uint16_t reserved = 0;
};

// Encodes a request; InvalidArgument if the payload would exceed kMaxPayloadSize.
absl::StatusOr<std::vector<uint8_t>> EncodeMessage(uint8_t command_set, uint8_t command_id,
                                                   std::span<const uint8_t> payload);
// Decodes and validates a header (exactly kHeaderSize bytes): magic, size >= 20.
absl::StatusOr<Header> DecodeHeader(std::span<const uint8_t> bytes);

class PayloadWriter {
 public:
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  // UTF-8 in, UTF-16LE with NUL out. An empty string is written as length 1 + NUL.
  void String(const std::string& utf8);
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// Bounds-checked reader over a payload: every read fails with a Status (never reads past
// the end); a string's length must fit in what remains.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const uint8_t> data) : data_(data) {}
  absl::StatusOr<uint16_t> U16();
  absl::StatusOr<uint32_t> U32();
  absl::StatusOr<uint64_t> U64();
  absl::StatusOr<std::array<uint8_t, 16>> Bytes16();
  // UTF-16LE → UTF-8 (unpaired surrogates become U+FFFD); length 0 → "" (null string).
  absl::StatusOr<std::string> String();
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

// ProcessInfo (v1), ProcessInfo2 (v2) and ProcessInfo3 (v3) replies, one struct.
struct ProcessInfo {
  int version = 0;   // 1, 2 or 3: which command answered
  uint64_t pid = 0;  // pid in the target's namespace
  std::array<uint8_t, 16> cookie{};
  std::string command_line;
  std::string os;
  std::string arch;
  std::string entry_assembly;   // v2+
  std::string runtime_version;  // v2+ (clrProductVersion)
  std::string runtime_id;       // v3 with payload version >= 1 (e.g. "linux-x64")
};
absl::StatusOr<ProcessInfo> ParseProcessInfo(int version, std::span<const uint8_t> payload);

// An Error reply: the HRESULT and, for GenerateCoreDump3, the runtime's message.
struct ErrorReply {
  uint32_t hresult = 0;
  std::string message;
};
absl::StatusOr<ErrorReply> ParseErrorReply(std::span<const uint8_t> payload);

// Dump types and flags of GenerateCoreDump.
enum class DumpType : uint32_t { kNormal = 1, kWithHeap = 2, kTriage = 3, kFull = 4 };
namespace dump_flags {
inline constexpr uint32_t kLoggingEnabled = 0x01, kVerboseLogging = 0x02, kCrashReport = 0x04,
                          kCrashReportOnly = 0x08;
}
std::vector<uint8_t> EncodeDumpRequestPayload(const std::string& path, DumpType type,
                                              uint32_t flags);

// The advertise a runtime sends first on every connection it opens to a diagnostic port it
// was told to connect to (DOTNET_DiagnosticPorts): exactly 34 bytes, no reply expected.
// "ADVR_V1\0", the runtime instance cookie (16 bytes, the same value as ProcessInfo's cookie),
// the pid in the runtime's own pid namespace (uint64 LE), 2 reserved bytes.
inline constexpr size_t kAdvertiseSize = 34;
struct Advertise {
  std::array<uint8_t, 16> cookie{};
  uint64_t pid = 0;
};
// DataLoss for a wrong size or magic, or a pid that cannot be a process id.
absl::StatusOr<Advertise> ParseAdvertise(std::span<const uint8_t> bytes);
// The 34 bytes a runtime would send (for tests and fakes).
std::vector<uint8_t> EncodeAdvertise(const Advertise& advertise);
// A cookie as 32 lowercase hex digits, byte order as on the wire.
std::string CookieHex(const std::array<uint8_t, 16>& cookie);

}  // namespace clrdiag::ipc
