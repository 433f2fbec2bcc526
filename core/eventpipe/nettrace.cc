#include "core/eventpipe/nettrace.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "core/base/status_macros.h"

namespace clrdiag::eventpipe {
namespace {

constexpr uint8_t kMagic[] = {'N', 'e', 't', 't', 'r', 'a', 'c', 'e'};
constexpr char kSerializationName[] = "!FastSerialization.1";
constexpr size_t kPreambleSize = 8 + 4 + 20;
constexpr uint8_t kTagNullReference = 1;
constexpr uint8_t kTagBeginPrivateObject = 5;
constexpr uint8_t kTagEndObject = 6;
constexpr uint32_t kMaxTypeNameLength = 256;
constexpr size_t kTraceDataSize = 48;
// Nesting limit for Object fields in metadata (the runtime nests two or three deep).
constexpr int kMaxFieldDepth = 16;
constexpr int32_t kMaxFieldCount = 4096;

// Bounds-checked little-endian reader over a span; every read fails cleanly past the end.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> data) : data_(data) {}
  size_t remaining() const { return data_.size() - pos_; }
  size_t pos() const { return pos_; }

  template <typename T>
  absl::StatusOr<T> Read(const char* what) {
    if (remaining() < sizeof(T)) return Short(what, sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::span<const uint8_t>> Bytes(size_t n, const char* what) {
    if (remaining() < n) return Short(what, n);
    std::span<const uint8_t> s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  absl::Status Skip(size_t n, const char* what) { return Bytes(n, what).status(); }
  absl::StatusOr<uint64_t> VarUInt(int max_bits, const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < max_bits + 7; shift += 7) {
      if (remaining() < 1) return Short(what, 1);
      const uint8_t b = data_[pos_++];
      if (shift < 64) v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return absl::DataLossError(absl::StrCat("variable-length integer too long in ", what));
  }
  absl::StatusOr<std::string> Utf16z(const char* what) {
    absl::StatusOr<std::pair<std::string, size_t>> s = ReadUtf16z(data_.subspan(pos_));
    if (!s.ok()) return absl::DataLossError(absl::StrCat(what, ": ", s.status().message()));
    pos_ += s->second;
    return std::move(s->first);
  }

 private:
  absl::Status Short(const char* what, size_t need) const {
    return absl::DataLossError(
        absl::StrFormat("%s: needs %d bytes, %d left", what, need, remaining()));
  }
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

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

bool ValidTypeCode(uint32_t t) { return t == 1 || (t >= 3 && t <= 19); }

// A V1 field list: i32 count, then per field i32 type, [nested list if Object], UTF-16z name.
absl::Status ReadV1Fields(Cursor& c, int depth, std::vector<FieldDef>& out) {
  if (depth > kMaxFieldDepth) return absl::DataLossError("metadata fields nested too deep");
  ASSIGN_OR_RETURN(int32_t count, c.Read<int32_t>("metadata field count"));
  if (count < 0 || count > kMaxFieldCount) {
    return absl::DataLossError(absl::StrCat("metadata field count ", count, " out of range"));
  }
  for (int32_t i = 0; i < count; ++i) {
    FieldDef f;
    ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>("metadata field type"));
    if (!ValidTypeCode(type) || type == static_cast<uint32_t>(TypeCode::kArray)) {
      return absl::DataLossError(absl::StrCat("metadata field type code ", type, " unknown"));
    }
    f.type = static_cast<TypeCode>(type);
    if (f.type == TypeCode::kObject) RETURN_IF_ERROR(ReadV1Fields(c, depth + 1, f.fields));
    ASSIGN_OR_RETURN(f.name, c.Utf16z("metadata field name"));
    out.push_back(std::move(f));
  }
  return absl::OkStatus();
}

absl::Status ReadV2Fields(Cursor& c, int depth, std::vector<FieldDef>& out);

// One V2 field: i32 size (inclusive), UTF-16z name, i32 type, [i32 element type if array],
// [nested V2 list if the (element) type is Object], padding up to size.
absl::Status ReadV2Field(Cursor& c, int depth, FieldDef& f) {
  const size_t start = c.pos();
  ASSIGN_OR_RETURN(int32_t size, c.Read<int32_t>("V2 field size"));
  if (size < 4 || static_cast<size_t>(size) - 4 > c.remaining()) {
    return absl::DataLossError(absl::StrCat("V2 field size ", size, " out of range"));
  }
  ASSIGN_OR_RETURN(f.name, c.Utf16z("V2 field name"));
  ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>("V2 field type"));
  if (!ValidTypeCode(type)) {
    return absl::DataLossError(absl::StrCat("V2 field type code ", type, " unknown"));
  }
  f.type = static_cast<TypeCode>(type);
  TypeCode described = f.type;
  if (f.type == TypeCode::kArray) {
    ASSIGN_OR_RETURN(uint32_t element, c.Read<uint32_t>("V2 array element type"));
    if (!ValidTypeCode(element) || element == static_cast<uint32_t>(TypeCode::kArray)) {
      return absl::DataLossError(absl::StrCat("V2 array element type code ", element, " unknown"));
    }
    f.element_type = static_cast<TypeCode>(element);
    described = f.element_type;
  }
  if (described == TypeCode::kObject) RETURN_IF_ERROR(ReadV2Fields(c, depth + 1, f.fields));
  const size_t used = c.pos() - start;
  if (used > static_cast<size_t>(size)) {
    return absl::DataLossError("V2 field definition overruns its size");
  }
  return c.Skip(static_cast<size_t>(size) - used, "V2 field padding");
}

absl::Status ReadV2Fields(Cursor& c, int depth, std::vector<FieldDef>& out) {
  if (depth > kMaxFieldDepth) return absl::DataLossError("metadata fields nested too deep");
  ASSIGN_OR_RETURN(int32_t count, c.Read<int32_t>("V2 field count"));
  if (count < 0 || count > kMaxFieldCount) {
    return absl::DataLossError(absl::StrCat("V2 field count ", count, " out of range"));
  }
  for (int32_t i = 0; i < count; ++i) {
    FieldDef f;
    RETURN_IF_ERROR(ReadV2Field(c, depth, f));
    out.push_back(std::move(f));
  }
  return absl::OkStatus();
}

// Fixed size of a primitive type code, 0 for variable (string, object, array).
size_t FixedSize(TypeCode t, int pointer_size) {
  switch (t) {
    case TypeCode::kBoolean:
      return 4;
    case TypeCode::kChar:
      return 2;
    case TypeCode::kSByte:
    case TypeCode::kByte:
      return 1;
    case TypeCode::kInt16:
    case TypeCode::kUInt16:
      return 2;
    case TypeCode::kInt32:
    case TypeCode::kUInt32:
    case TypeCode::kSingle:
      return 4;
    case TypeCode::kInt64:
    case TypeCode::kUInt64:
    case TypeCode::kDouble:
    case TypeCode::kDateTime:
      return 8;
    case TypeCode::kDecimal:
    case TypeCode::kGuid:
      return 16;
    default:
      return 0;
  }
}

absl::Status DecodeFields(const std::vector<FieldDef>& fields, Cursor& c, int pointer_size,
                          int depth, std::vector<NamedValue>& out);

// One value of type `t` (for an Object, its `fields`); appended to `out` if `emit`.
absl::Status DecodeOne(const FieldDef& f, TypeCode t, Cursor& c, int pointer_size, int depth,
                       bool emit, std::vector<NamedValue>& out) {
  if (depth > kMaxFieldDepth) return absl::DataLossError("payload nested too deep");
  Value v;
  switch (t) {
    case TypeCode::kObject:
      if (emit) return DecodeFields(f.fields, c, pointer_size, depth + 1, out);
      {
        std::vector<NamedValue> ignored;
        return DecodeFields(f.fields, c, pointer_size, depth + 1, ignored);
      }
    case TypeCode::kString: {
      ASSIGN_OR_RETURN(std::string s, c.Utf16z("string field"));
      v = std::move(s);
      break;
    }
    case TypeCode::kArray: {
      ASSIGN_OR_RETURN(uint16_t n, c.Read<uint16_t>("array length"));
      std::vector<NamedValue> ignored;
      for (uint16_t i = 0; i < n; ++i) {
        RETURN_IF_ERROR(DecodeOne(f, f.element_type, c, pointer_size, depth + 1, false, ignored));
      }
      break;
    }
    case TypeCode::kBoolean: {
      ASSIGN_OR_RETURN(uint32_t b, c.Read<uint32_t>("boolean field"));
      v = b != 0;
      break;
    }
    case TypeCode::kSByte: {
      ASSIGN_OR_RETURN(int8_t x, c.Read<int8_t>("sbyte field"));
      v = static_cast<int64_t>(x);
      break;
    }
    case TypeCode::kByte: {
      ASSIGN_OR_RETURN(uint8_t x, c.Read<uint8_t>("byte field"));
      v = static_cast<uint64_t>(x);
      break;
    }
    case TypeCode::kInt16: {
      ASSIGN_OR_RETURN(int16_t x, c.Read<int16_t>("int16 field"));
      v = static_cast<int64_t>(x);
      break;
    }
    case TypeCode::kChar:
    case TypeCode::kUInt16: {
      ASSIGN_OR_RETURN(uint16_t x, c.Read<uint16_t>("uint16 field"));
      v = static_cast<uint64_t>(x);
      break;
    }
    case TypeCode::kInt32: {
      ASSIGN_OR_RETURN(int32_t x, c.Read<int32_t>("int32 field"));
      v = static_cast<int64_t>(x);
      break;
    }
    case TypeCode::kUInt32: {
      ASSIGN_OR_RETURN(uint32_t x, c.Read<uint32_t>("uint32 field"));
      v = static_cast<uint64_t>(x);
      break;
    }
    case TypeCode::kInt64: {
      ASSIGN_OR_RETURN(int64_t x, c.Read<int64_t>("int64 field"));
      v = x;
      break;
    }
    case TypeCode::kUInt64: {
      ASSIGN_OR_RETURN(uint64_t x, c.Read<uint64_t>("uint64 field"));
      v = x;
      break;
    }
    case TypeCode::kSingle: {
      ASSIGN_OR_RETURN(float x, c.Read<float>("float field"));
      v = static_cast<double>(x);
      break;
    }
    case TypeCode::kDouble: {
      ASSIGN_OR_RETURN(double x, c.Read<double>("double field"));
      v = x;
      break;
    }
    default: {
      const size_t n = FixedSize(t, pointer_size);
      if (n == 0) return absl::DataLossError("field of unknown size");
      RETURN_IF_ERROR(c.Skip(n, "field"));
      break;
    }
  }
  if (emit) out.push_back(NamedValue{f.name, std::move(v)});
  return absl::OkStatus();
}

absl::Status DecodeFields(const std::vector<FieldDef>& fields, Cursor& c, int pointer_size,
                          int depth, std::vector<NamedValue>& out) {
  for (const FieldDef& f : fields) {
    RETURN_IF_ERROR(DecodeOne(f, f.type, c, pointer_size, depth, true, out));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::pair<std::string, size_t>> ReadUtf16z(std::span<const uint8_t> bytes) {
  std::string out;
  size_t i = 0;
  for (;;) {
    if (i + 2 > bytes.size()) return absl::DataLossError("UTF-16 string without terminator");
    uint32_t u = bytes[i] | (bytes[i + 1] << 8);
    i += 2;
    if (u == 0) return std::make_pair(std::move(out), i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 2 <= bytes.size()) {
      const uint32_t lo = bytes[i] | (bytes[i + 1] << 8);
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        i += 2;
        AppendUtf8(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00), out);
        continue;
      }
    }
    if (u >= 0xD800 && u <= 0xDFFF) u = 0xFFFD;
    AppendUtf8(u, out);
  }
}

absl::StatusOr<std::vector<NamedValue>> DecodePayload(const std::vector<FieldDef>& fields,
                                                      std::span<const uint8_t> payload,
                                                      int pointer_size) {
  Cursor c(payload);
  std::vector<NamedValue> out;
  RETURN_IF_ERROR(DecodeFields(fields, c, pointer_size, 0, out));
  return out;
}

const Value* FindValue(const std::vector<NamedValue>& values, std::string_view name) {
  for (const NamedValue& v : values) {
    if (v.name == name) return &v.value;
  }
  return nullptr;
}

absl::Time TraceInfo::ToTime(int64_t qpc) const {
  if (qpc_frequency <= 0) return start_time;
  const long double seconds =
      static_cast<long double>(qpc - sync_time_qpc) / static_cast<long double>(qpc_frequency);
  return start_time + absl::Nanoseconds(static_cast<int64_t>(seconds * 1e9L));
}

const EventMetadata* NettraceParser::FindMetadata(int32_t id) const {
  auto it = metadata_.find(id);
  return it == metadata_.end() ? nullptr : &it->second;
}

absl::Status NettraceParser::Fail(absl::Status s) {
  error_ = absl::DataLossError(
      absl::StrCat("nettrace stream at byte ", offset_ + pos_, ": ", s.message()));
  return error_;
}

absl::Status NettraceParser::AtEof() const {
  if (!error_.ok()) return error_;
  if (ended_) return absl::OkStatus();
  return absl::OutOfRangeError(
      absl::StrCat("the nettrace stream was cut after ", total_bytes(), " bytes (", events_,
                   " events) without its end tag; the process probably exited"));
}

absl::Status NettraceParser::Feed(std::span<const uint8_t> bytes) {
  if (!error_.ok()) return error_;
  if (state_ == State::kEnded) {
    if (bytes.empty()) return absl::OkStatus();
    return Fail(absl::DataLossError("bytes after the end of the stream"));
  }
  // Drop what is decoded before growing the buffer.
  if (pos_ > 0 && pos_ == buffer_.size()) {
    offset_ += pos_;
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > (64u << 10) && pos_ * 2 > buffer_.size()) {
    offset_ += pos_;
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  for (;;) {
    absl::StatusOr<bool> progressed = ParseOne();
    if (!progressed.ok()) return Fail(progressed.status());
    if (!*progressed) break;
    if (state_ == State::kEnded) {
      if (buffered() != 0) return Fail(absl::DataLossError("bytes after the end of the stream"));
      break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> NettraceParser::ParseOne() {
  std::span<const uint8_t> avail(buffer_.data() + pos_, buffer_.size() - pos_);
  if (state_ == State::kMagic) {
    if (avail.size() < kPreambleSize) {
      // Check what is there already, so that garbage fails early.
      const size_t n = std::min(avail.size(), sizeof(kMagic));
      if (std::memcmp(avail.data(), kMagic, n) != 0) {
        return absl::DataLossError("not a nettrace stream (no \"Nettrace\" magic)");
      }
      return false;
    }
    if (std::memcmp(avail.data(), kMagic, sizeof(kMagic)) != 0) {
      return absl::DataLossError("not a nettrace stream (no \"Nettrace\" magic)");
    }
    uint32_t len;
    std::memcpy(&len, avail.data() + 8, 4);
    if (len == 0) {
      return absl::UnimplementedError(
          "nettrace format V6 (a zero after the magic) is not supported");
    }
    if (len != 20 || std::memcmp(avail.data() + 12, kSerializationName, 20) != 0) {
      return absl::DataLossError("missing \"!FastSerialization.1\" header");
    }
    pos_ += kPreambleSize;
    state_ = State::kObjects;
    return true;
  }

  if (avail.empty()) return false;
  if (avail[0] == kTagNullReference) {
    if (!saw_trace_) return absl::DataLossError("stream ends before its Trace object");
    pos_ += 1;
    state_ = State::kEnded;
    ended_ = true;
    return true;
  }
  if (avail[0] != kTagBeginPrivateObject) {
    return absl::DataLossError(
        absl::StrFormat("expected an object (tag 5), found byte 0x%02X", avail[0]));
  }
  // Type header: 5, 5, 1, i32 version, i32 min version, u32 length, name, 6.
  if (avail.size() < 15) return false;
  if (avail[1] != kTagBeginPrivateObject || avail[2] != kTagNullReference) {
    return absl::DataLossError("malformed object type header");
  }
  int32_t version, min_version;
  uint32_t name_len;
  std::memcpy(&version, avail.data() + 3, 4);
  std::memcpy(&min_version, avail.data() + 7, 4);
  std::memcpy(&name_len, avail.data() + 11, 4);
  if (name_len == 0 || name_len > kMaxTypeNameLength) {
    return absl::DataLossError(absl::StrCat("object type name length ", name_len, " out of range"));
  }
  size_t at = 15;
  if (avail.size() < at + name_len + 1) return false;
  const std::string type(reinterpret_cast<const char*>(avail.data() + at), name_len);
  at += name_len;
  if (avail[at] != kTagEndObject) return absl::DataLossError("object type header not closed");
  at += 1;

  if (type == "Trace") {
    if (saw_trace_) return absl::DataLossError("a second Trace object");
    if (avail.size() < at + kTraceDataSize + 1) return false;
    if (avail[at + kTraceDataSize] != kTagEndObject) {
      return absl::DataLossError("Trace object not closed after its 48 bytes");
    }
    RETURN_IF_ERROR(ParseTrace(avail.subspan(at, kTraceDataSize), version));
    pos_ += at + kTraceDataSize + 1;
    return true;
  }
  if (!saw_trace_) {
    return absl::DataLossError(absl::StrCat("object \"", type, "\" before the Trace object"));
  }
  // A block: i32 size, padding to a 4-byte stream offset, size bytes, end tag.
  if (avail.size() < at + 4) return false;
  int32_t block_size;
  std::memcpy(&block_size, avail.data() + at, 4);
  if (block_size < 0 || static_cast<uint32_t>(block_size) > kMaxBlockSize) {
    return absl::DataLossError(absl::StrCat(type, " size ", block_size, " out of range"));
  }
  at += 4;
  const uint64_t stream_at = offset_ + pos_ + at;
  const size_t pad = static_cast<size_t>((4 - stream_at % 4) % 4);
  if (avail.size() < at + pad + static_cast<size_t>(block_size) + 1) return false;
  for (size_t i = 0; i < pad; ++i) {
    if (avail[at + i] != 0) return absl::DataLossError("non-zero block alignment padding");
  }
  at += pad;
  const std::span<const uint8_t> block = avail.subspan(at, static_cast<size_t>(block_size));
  at += static_cast<size_t>(block_size);
  if (avail[at] != kTagEndObject) {
    return absl::DataLossError(absl::StrCat(type, " object not closed after its block"));
  }
  at += 1;
  if (type == "EventBlock" || type == "MetadataBlock") {
    RETURN_IF_ERROR(ParseEventBlock(block, type == "MetadataBlock"));
  } else if (type == "StackBlock" || type == "SPBlock") {
    // Stacks and sequence points are not needed by the decoders; their framing is checked.
    Cursor b(block);
    if (type == "SPBlock") {
      RETURN_IF_ERROR(b.Skip(8, "sequence point timestamp"));
      ASSIGN_OR_RETURN(int32_t threads, b.Read<int32_t>("sequence point thread count"));
      if (threads < 0 || static_cast<size_t>(threads) * 12 != b.remaining()) {
        return absl::DataLossError(
            absl::StrCat("sequence point with ", threads, " threads does not fill its block"));
      }
    } else {
      RETURN_IF_ERROR(b.Skip(4, "stack block first id"));
      ASSIGN_OR_RETURN(int32_t count, b.Read<int32_t>("stack block count"));
      if (count < 0) return absl::DataLossError("negative stack count");
      for (int32_t i = 0; i < count; ++i) {
        ASSIGN_OR_RETURN(uint32_t size, b.Read<uint32_t>("stack size"));
        RETURN_IF_ERROR(b.Skip(size, "stack"));
      }
    }
  }
  // Unknown object types are skipped by their size.
  pos_ += at;
  return true;
}

absl::Status NettraceParser::ParseTrace(std::span<const uint8_t> body, int32_t version) {
  Cursor c(body);
  int16_t st[8];
  for (int16_t& v : st) {
    ASSIGN_OR_RETURN(v, c.Read<int16_t>("Trace start time"));
  }
  TraceInfo t;
  t.version = version;
  // SYSTEMTIME: year, month, day of week, day, hour, minute, second, millisecond (UTC).
  const absl::CivilSecond cs(st[0], st[1], st[3], st[4], st[5], st[6]);
  t.start_time = absl::FromCivil(cs, absl::UTCTimeZone()) + absl::Milliseconds(st[7]);
  ASSIGN_OR_RETURN(t.sync_time_qpc, c.Read<int64_t>("Trace sync time"));
  ASSIGN_OR_RETURN(t.qpc_frequency, c.Read<int64_t>("Trace QPC frequency"));
  ASSIGN_OR_RETURN(t.pointer_size, c.Read<int32_t>("Trace pointer size"));
  ASSIGN_OR_RETURN(t.process_id, c.Read<int32_t>("Trace process id"));
  ASSIGN_OR_RETURN(t.processor_count, c.Read<int32_t>("Trace processor count"));
  ASSIGN_OR_RETURN(t.cpu_sampling_rate, c.Read<int32_t>("Trace sampling rate"));
  if (t.qpc_frequency <= 0) return absl::DataLossError("Trace QPC frequency is not positive");
  if (t.pointer_size != 4 && t.pointer_size != 8) {
    return absl::DataLossError(absl::StrCat("Trace pointer size ", t.pointer_size));
  }
  trace_ = t;
  saw_trace_ = true;
  if (callbacks_.on_trace) callbacks_.on_trace(trace_);
  return absl::OkStatus();
}

absl::Status NettraceParser::ParseEventBlock(std::span<const uint8_t> block, bool metadata) {
  Cursor c(block);
  ASSIGN_OR_RETURN(int16_t header_size, c.Read<int16_t>("block header size"));
  ASSIGN_OR_RETURN(int16_t flags, c.Read<int16_t>("block flags"));
  if (header_size < 20 || static_cast<size_t>(header_size) > block.size()) {
    return absl::DataLossError(absl::StrCat("block header size ", header_size, " out of range"));
  }
  RETURN_IF_ERROR(c.Skip(static_cast<size_t>(header_size) - 4, "block header"));
  const bool compressed = (flags & 1) != 0;

  // Header-compression state, all zero at the start of each block.
  Event prev;
  int32_t prev_metadata_id = 0;
  uint32_t prev_payload_size = 0;
  while (c.remaining() > 0) {
    Event e;
    int32_t metadata_id = 0;
    uint32_t payload_size = 0;
    if (compressed) {
      ASSIGN_OR_RETURN(uint8_t f, c.Read<uint8_t>("event flags"));
      metadata_id = prev_metadata_id;
      if (f & 1) {
        ASSIGN_OR_RETURN(uint64_t id, c.VarUInt(32, "metadata id"));
        metadata_id = static_cast<int32_t>(id & 0x7FFFFFFF);
      }
      e.sequence = prev.sequence;
      e.capture_thread_id = prev.capture_thread_id;
      e.processor = prev.processor;
      if (f & 2) {
        ASSIGN_OR_RETURN(uint64_t delta, c.VarUInt(32, "sequence delta"));
        e.sequence += static_cast<uint32_t>(delta);
        ASSIGN_OR_RETURN(e.capture_thread_id, c.VarUInt(64, "capture thread"));
        ASSIGN_OR_RETURN(uint64_t proc, c.VarUInt(32, "processor"));
        e.processor = static_cast<uint32_t>(proc);
      }
      if (metadata_id != 0) e.sequence += 1;
      e.thread_id = prev.thread_id;
      if (f & 4) {
        ASSIGN_OR_RETURN(e.thread_id, c.VarUInt(64, "thread id"));
      }
      e.stack_id = prev.stack_id;
      if (f & 8) {
        ASSIGN_OR_RETURN(uint64_t s, c.VarUInt(32, "stack id"));
        e.stack_id = static_cast<uint32_t>(s);
      }
      ASSIGN_OR_RETURN(uint64_t dt, c.VarUInt(64, "timestamp delta"));
      e.timestamp = static_cast<int64_t>(static_cast<uint64_t>(prev.timestamp) + dt);
      if (f & 16) RETURN_IF_ERROR(c.Skip(16, "activity id"));
      if (f & 32) RETURN_IF_ERROR(c.Skip(16, "related activity id"));
      payload_size = prev_payload_size;
      if (f & 128) {
        ASSIGN_OR_RETURN(uint64_t p, c.VarUInt(32, "payload size"));
        payload_size = static_cast<uint32_t>(p);
      }
      ASSIGN_OR_RETURN(e.payload, c.Bytes(payload_size, "event payload"));
    } else {
      const size_t start = c.pos();
      ASSIGN_OR_RETURN(int32_t event_size, c.Read<int32_t>("event size"));
      if (event_size < 76 || static_cast<size_t>(event_size) > c.remaining()) {
        return absl::DataLossError(absl::StrCat("event size ", event_size, " out of range"));
      }
      ASSIGN_OR_RETURN(uint32_t id, c.Read<uint32_t>("metadata id"));
      metadata_id = static_cast<int32_t>(id & 0x7FFFFFFF);
      ASSIGN_OR_RETURN(e.sequence, c.Read<uint32_t>("sequence"));
      ASSIGN_OR_RETURN(e.thread_id, c.Read<uint64_t>("thread id"));
      ASSIGN_OR_RETURN(e.capture_thread_id, c.Read<uint64_t>("capture thread"));
      ASSIGN_OR_RETURN(e.processor, c.Read<uint32_t>("processor"));
      ASSIGN_OR_RETURN(e.stack_id, c.Read<uint32_t>("stack id"));
      ASSIGN_OR_RETURN(e.timestamp, c.Read<int64_t>("timestamp"));
      RETURN_IF_ERROR(c.Skip(32, "activity ids"));
      ASSIGN_OR_RETURN(payload_size, c.Read<uint32_t>("payload size"));
      if (payload_size > static_cast<uint32_t>(event_size) - 76) {
        return absl::DataLossError("event payload larger than the event");
      }
      ASSIGN_OR_RETURN(e.payload, c.Bytes(payload_size, "event payload"));
      // The blob is event_size + 4 bytes, padded to 4 (blocks start 4-aligned).
      size_t end = start + 4 + static_cast<size_t>(event_size);
      end = (end + 3) & ~static_cast<size_t>(3);
      if (end > block.size()) end = block.size();
      RETURN_IF_ERROR(c.Skip(end - c.pos(), "event padding"));
    }
    prev = e;
    prev_metadata_id = metadata_id;
    prev_payload_size = payload_size;

    if (metadata) {
      RETURN_IF_ERROR(ParseMetadata(e.payload));
      continue;
    }
    const EventMetadata* md = FindMetadata(metadata_id);
    if (md == nullptr) {
      return absl::DataLossError(
          absl::StrCat("event refers to undefined metadata id ", metadata_id));
    }
    e.metadata = md;
    ++events_;
    if (callbacks_.on_event) callbacks_.on_event(e);
  }
  return absl::OkStatus();
}

absl::Status NettraceParser::ParseMetadata(std::span<const uint8_t> payload) {
  Cursor c(payload);
  EventMetadata md;
  ASSIGN_OR_RETURN(md.metadata_id, c.Read<int32_t>("metadata id"));
  if (md.metadata_id <= 0) {
    return absl::DataLossError(absl::StrCat("metadata defines id ", md.metadata_id));
  }
  ASSIGN_OR_RETURN(md.provider, c.Utf16z("provider name"));
  ASSIGN_OR_RETURN(md.event_id, c.Read<int32_t>("event id"));
  ASSIGN_OR_RETURN(md.event_name, c.Utf16z("event name"));
  ASSIGN_OR_RETURN(md.keywords, c.Read<int64_t>("keywords"));
  ASSIGN_OR_RETURN(md.version, c.Read<int32_t>("event version"));
  ASSIGN_OR_RETURN(md.level, c.Read<int32_t>("event level"));
  // Some runtime events carry no field list at all.
  if (c.remaining() > 0) RETURN_IF_ERROR(ReadV1Fields(c, 0, md.fields));
  while (c.remaining() > 0) {
    ASSIGN_OR_RETURN(int32_t size, c.Read<int32_t>("metadata tag size"));
    ASSIGN_OR_RETURN(uint8_t kind, c.Read<uint8_t>("metadata tag kind"));
    if (size < 0) return absl::DataLossError("negative metadata tag size");
    ASSIGN_OR_RETURN(std::span<const uint8_t> tag, c.Bytes(static_cast<size_t>(size), "tag"));
    Cursor t(tag);
    if (kind == 1) {
      ASSIGN_OR_RETURN(md.opcode, t.Read<uint8_t>("opcode tag"));
    } else if (kind == 2) {
      std::vector<FieldDef> v2;
      RETURN_IF_ERROR(ReadV2Fields(t, 0, v2));
      md.fields = std::move(v2);
    }
  }
  metadata_[md.metadata_id] = std::move(md);
  return absl::OkStatus();
}

}  // namespace clrdiag::eventpipe
