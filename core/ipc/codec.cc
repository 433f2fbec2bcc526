#include "core/ipc/codec.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"

namespace clrdiag::ipc {
namespace {

// The magic is compared with its NUL: the runtime compares it as a C string.
constexpr char kMagic[14] = "DOTNET_IPC_V1";
static_assert(sizeof(kMagic) == 14);

constexpr uint32_t kReplacementChar = 0xFFFD;

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes one code point starting at s[i]; advances i. Invalid sequences (stray
// continuation bytes, overlong forms, surrogates, > U+10FFFF, truncation) consume one byte
// and yield U+FFFD.
uint32_t NextCodePoint(const std::string& s, size_t& i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t lead = byte(i);
  size_t len;
  uint32_t cp;
  uint32_t min;
  if (lead < 0x80) {
    ++i;
    return lead;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    ++i;
    return kReplacementChar;
  }
  if (s.size() - i < len) {
    ++i;
    return kReplacementChar;
  }
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return kReplacementChar;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return kReplacementChar;
  }
  i += len;
  return cp;
}

absl::Status Truncated(absl::string_view what, size_t need, size_t have) {
  return absl::DataLossError(absl::StrCat("IPC payload truncated: ", what, " needs ", need,
                                          " bytes but only ", have, " remain"));
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> EncodeMessage(uint8_t command_set, uint8_t command_id,
                                                   std::span<const uint8_t> payload) {
  if (payload.size() > kMaxPayloadSize) {
    return absl::InvalidArgumentError(absl::StrCat("IPC payload of ", payload.size(),
                                                   " bytes exceeds the protocol limit of ",
                                                   kMaxPayloadSize));
  }
  const auto size = static_cast<uint16_t>(kHeaderSize + payload.size());
  std::vector<uint8_t> out(kMagic, kMagic + sizeof(kMagic));
  out.reserve(size);
  out.push_back(static_cast<uint8_t>(size & 0xFF));
  out.push_back(static_cast<uint8_t>(size >> 8));
  out.push_back(command_set);
  out.push_back(command_id);
  out.push_back(0);  // reserved
  out.push_back(0);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

absl::StatusOr<Header> DecodeHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() != kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("an IPC header is ", kHeaderSize, " bytes, got ", bytes.size()));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("IPC reply does not start with the magic \"DOTNET_IPC_V1\"");
  }
  Header h;
  h.size = static_cast<uint16_t>(bytes[14] | (bytes[15] << 8));
  h.command_set = bytes[16];
  h.command_id = bytes[17];
  h.reserved = static_cast<uint16_t>(bytes[18] | (bytes[19] << 8));
  if (h.size < kHeaderSize) {
    return absl::DataLossError(absl::StrCat("IPC header declares a message size of ", h.size,
                                            " bytes, smaller than the header itself (", kHeaderSize,
                                            ")"));
  }
  return h;
}

void PayloadWriter::U16(uint16_t v) {
  for (int i = 0; i < 2; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PayloadWriter::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PayloadWriter::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PayloadWriter::String(const std::string& utf8) {
  std::vector<uint16_t> units;
  units.reserve(utf8.size() + 1);
  for (size_t i = 0; i < utf8.size();) {
    const uint32_t cp = NextCodePoint(utf8, i);
    if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      units.push_back(static_cast<uint16_t>(0xD800 | (v >> 10)));
      units.push_back(static_cast<uint16_t>(0xDC00 | (v & 0x3FF)));
    } else {
      units.push_back(static_cast<uint16_t>(cp));
    }
  }
  units.push_back(0);
  U32(static_cast<uint32_t>(units.size()));
  for (uint16_t u : units) U16(u);
}

absl::StatusOr<uint16_t> PayloadReader::U16() {
  if (remaining() < 2) return Truncated("a uint16", 2, remaining());
  const uint16_t v = static_cast<uint16_t>(data_[pos_] | (data_[pos_ + 1] << 8));
  pos_ += 2;
  return v;
}

absl::StatusOr<uint32_t> PayloadReader::U32() {
  if (remaining() < 4) return Truncated("a uint32", 4, remaining());
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | data_[pos_ + i];
  pos_ += 4;
  return v;
}

absl::StatusOr<uint64_t> PayloadReader::U64() {
  if (remaining() < 8) return Truncated("a uint64", 8, remaining());
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | data_[pos_ + i];
  pos_ += 8;
  return v;
}

absl::StatusOr<std::array<uint8_t, 16>> PayloadReader::Bytes16() {
  std::array<uint8_t, 16> out;
  if (remaining() < out.size()) return Truncated("a 16-byte cookie", out.size(), remaining());
  std::memcpy(out.data(), data_.data() + pos_, out.size());
  pos_ += out.size();
  return out;
}

absl::StatusOr<std::string> PayloadReader::String() {
  const size_t start = pos_;
  ASSIGN_OR_RETURN(const uint32_t units, U32());
  if (units == 0) return std::string();  // null string
  // 64-bit arithmetic: units * 2 cannot overflow.
  const uint64_t bytes = uint64_t{units} * 2;
  if (bytes > remaining()) {
    pos_ = start;
    return absl::DataLossError(absl::StrCat("IPC string of ", units,
                                            " UTF-16 units overruns the payload (", remaining(),
                                            " bytes remain)"));
  }
  const auto unit_at = [&](size_t k) {
    return static_cast<uint16_t>(data_[pos_ + 2 * k] | (data_[pos_ + 2 * k + 1] << 8));
  };
  if (unit_at(units - 1) != 0) {
    pos_ = start;
    return absl::DataLossError("IPC string is not NUL-terminated");
  }
  std::string out;
  out.reserve(units);
  // Stops at the first NUL: the runtime treats these as C strings, so anything after an
  // embedded NUL is not part of the value.
  for (size_t k = 0; k + 1 < units;) {
    const uint16_t u = unit_at(k++);
    if (u == 0) break;
    uint32_t cp = u;
    if (u >= 0xD800 && u <= 0xDBFF) {
      const uint16_t next = k + 1 < units ? unit_at(k) : 0;
      if (next >= 0xDC00 && next <= 0xDFFF) {
        cp = 0x10000 + ((uint32_t{u} - 0xD800) << 10) + (next - 0xDC00);
        ++k;
      } else {
        cp = kReplacementChar;
      }
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      cp = kReplacementChar;
    }
    AppendUtf8(cp, out);
  }
  pos_ += static_cast<size_t>(bytes);
  return out;
}

absl::StatusOr<ProcessInfo> ParseProcessInfo(int version, std::span<const uint8_t> payload) {
  if (version < 1 || version > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown ProcessInfo version ", version, " (expected 1, 2 or 3)"));
  }
  PayloadReader r(payload);
  ProcessInfo info;
  info.version = version;
  uint32_t payload_version = 0;
  if (version == 3) {
    ASSIGN_OR_RETURN(payload_version, r.U32());
  }
  ASSIGN_OR_RETURN(info.pid, r.U64());
  ASSIGN_OR_RETURN(info.cookie, r.Bytes16());
  ASSIGN_OR_RETURN(info.command_line, r.String());
  ASSIGN_OR_RETURN(info.os, r.String());
  ASSIGN_OR_RETURN(info.arch, r.String());
  if (version >= 2) {
    ASSIGN_OR_RETURN(info.entry_assembly, r.String());
    ASSIGN_OR_RETURN(info.runtime_version, r.String());
  }
  if (version == 3 && payload_version >= 1) {
    ASSIGN_OR_RETURN(info.runtime_id, r.String());
  }
  // Newer runtimes may append fields; whatever remains is deliberately ignored.
  return info;
}

absl::StatusOr<ErrorReply> ParseErrorReply(std::span<const uint8_t> payload) {
  PayloadReader r(payload);
  ErrorReply reply;
  ASSIGN_OR_RETURN(reply.hresult, r.U32());
  // Only a failed GenerateCoreDump3 appends a message. Like dotnet-dump, look for it only
  // when there is room for one (>= 8 bytes in all). A malformed message is dropped rather
  // than failing the parse: the HRESULT alone still explains the failure.
  if (payload.size() >= 8) {
    absl::StatusOr<std::string> message = r.String();
    if (message.ok()) reply.message = *std::move(message);
  }
  return reply;
}

std::vector<uint8_t> EncodeDumpRequestPayload(const std::string& path, DumpType type,
                                              uint32_t flags) {
  PayloadWriter w;
  w.String(path);
  w.U32(static_cast<uint32_t>(type));
  w.U32(flags);
  return w.bytes();
}

namespace {
constexpr char kAdvertiseMagic[8] = "ADVR_V1";  // 7 characters and the NUL
// Linux pids are below 2^22 (PID_MAX_LIMIT); anything larger is not a runtime's advertise.
constexpr uint64_t kMaxPid = 1u << 22;
}  // namespace

absl::StatusOr<Advertise> ParseAdvertise(std::span<const uint8_t> bytes) {
  if (bytes.size() != kAdvertiseSize) {
    return absl::DataLossError(
        absl::StrCat("advertise has ", bytes.size(), " bytes, expected ", kAdvertiseSize));
  }
  if (std::memcmp(bytes.data(), kAdvertiseMagic, sizeof(kAdvertiseMagic)) != 0) {
    return absl::DataLossError("advertise does not start with the magic \"ADVR_V1\\0\"");
  }
  Advertise a;
  std::memcpy(a.cookie.data(), bytes.data() + 8, a.cookie.size());
  PayloadReader r(bytes.subspan(24, 8));
  ASSIGN_OR_RETURN(a.pid, r.U64());
  if (a.pid == 0 || a.pid >= kMaxPid) {
    return absl::DataLossError(
        absl::StrCat("advertise names pid ", a.pid, ", which is not a valid process id"));
  }
  return a;
}

std::vector<uint8_t> EncodeAdvertise(const Advertise& advertise) {
  std::vector<uint8_t> out(kAdvertiseMagic, kAdvertiseMagic + sizeof(kAdvertiseMagic));
  out.insert(out.end(), advertise.cookie.begin(), advertise.cookie.end());
  PayloadWriter w;
  w.U64(advertise.pid);
  w.U16(0);
  out.insert(out.end(), w.bytes().begin(), w.bytes().end());
  return out;
}

std::string CookieHex(const std::array<uint8_t, 16>& cookie) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : cookie) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace clrdiag::ipc
