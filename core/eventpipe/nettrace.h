// Streaming parser of the NetTrace format a .NET runtime writes on an EventPipe session
// (format 1, "Nettrace" magic, FastSerialization V4 object framing): the Trace object, then
// MetadataBlock / EventBlock / StackBlock / SPBlock objects, then a lone NullReference tag.
// Bytes are fed as they arrive; every complete object is decoded at once and its events are
// handed to a callback. Input is untrusted: every length is checked against what is left, a
// malformed stream gives a DataLoss status (and the parser stays failed), never a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace clrdiag::eventpipe {

// EventPipe field type codes (metadata).
enum class TypeCode : uint32_t {
  kObject = 1,
  kBoolean = 3,  // 4 bytes
  kChar = 4,     // UTF-16 unit
  kSByte = 5,
  kByte = 6,
  kInt16 = 7,
  kUInt16 = 8,
  kInt32 = 9,
  kUInt32 = 10,
  kInt64 = 11,
  kUInt64 = 12,
  kSingle = 13,
  kDouble = 14,
  kDecimal = 15,
  kDateTime = 16,
  kGuid = 17,
  kString = 18,  // NUL-terminated UTF-16LE
  kArray = 19,   // V2 params only: uint16 count, then the elements
};

struct FieldDef {
  std::string name;
  TypeCode type = TypeCode::kInt32;
  TypeCode element_type = TypeCode::kInt32;  // kArray only
  std::vector<FieldDef> fields;              // kObject (or an array of objects)
};

struct EventMetadata {
  int32_t metadata_id = 0;
  std::string provider;
  int32_t event_id = 0;
  std::string event_name;  // empty for native runtime events of older runtimes
  int64_t keywords = 0;
  int32_t version = 0;
  int32_t level = 0;
  uint8_t opcode = 0;
  std::vector<FieldDef> fields;
};

// The Trace object: the clock of the session.
struct TraceInfo {
  absl::Time start_time = absl::UnixEpoch();  // wall clock (UTC) at sync_time_qpc
  int64_t sync_time_qpc = 0;
  int64_t qpc_frequency = 1;
  int32_t pointer_size = 8;
  int32_t process_id = 0;
  int32_t processor_count = 0;
  int32_t cpu_sampling_rate = 0;
  int32_t version = 0;  // Trace object version (4 from current runtimes)

  // Wall-clock time of an event timestamp (QPC ticks).
  absl::Time ToTime(int64_t qpc) const;
};

struct Event {
  const EventMetadata* metadata = nullptr;  // never null in a callback
  uint32_t sequence = 0;
  uint64_t thread_id = 0;
  uint64_t capture_thread_id = 0;
  uint32_t processor = 0;
  uint32_t stack_id = 0;
  int64_t timestamp = 0;             // QPC ticks; TraceInfo::ToTime converts
  std::span<const uint8_t> payload;  // valid during the callback only
};

class NettraceParser {
 public:
  struct Callbacks {
    std::function<void(const TraceInfo&)> on_trace;
    // Called for each event blob of an EventBlock (metadata blobs are kept, not passed).
    std::function<void(const Event&)> on_event;
  };
  explicit NettraceParser(Callbacks callbacks) : callbacks_(std::move(callbacks)) {}

  // Consumes `bytes`; decodes every object that is now complete. After an error the parser
  // stays failed and returns the same status.
  absl::Status Feed(std::span<const uint8_t> bytes);

  // The stream's end tag has been seen (the runtime ended the session in order).
  bool ended() const { return ended_; }
  // Bytes fed but not yet decoded (an incomplete object).
  size_t buffered() const { return buffer_.size() - pos_; }
  // Where the stream stands at EOF: OK if ended; otherwise a status that says the stream was
  // cut (OutOfRange, "truncated ... after N bytes") — normal when the target exits.
  absl::Status AtEof() const;

  const TraceInfo& trace() const { return trace_; }
  const EventMetadata* FindMetadata(int32_t id) const;
  uint64_t events() const { return events_; }
  uint64_t total_bytes() const { return offset_ + buffer_.size(); }

  // Refuses objects larger than this (runtime blocks are ~100 KB).
  static constexpr uint32_t kMaxBlockSize = 16u << 20;

 private:
  // One complete object starting at pos_: consumes it and returns true, or returns false if
  // more bytes are needed.
  absl::StatusOr<bool> ParseOne();
  absl::Status ParseTrace(std::span<const uint8_t> body, int32_t version);
  absl::Status ParseEventBlock(std::span<const uint8_t> block, bool metadata);
  absl::Status ParseMetadata(std::span<const uint8_t> payload);
  absl::Status Fail(absl::Status s);

  Callbacks callbacks_;
  std::vector<uint8_t> buffer_;
  size_t pos_ = 0;       // next undecoded byte of buffer_
  uint64_t offset_ = 0;  // stream offset of buffer_[0]
  enum class State { kMagic, kObjects, kEnded } state_ = State::kMagic;
  bool ended_ = false;
  bool saw_trace_ = false;
  absl::Status error_;
  TraceInfo trace_;
  std::unordered_map<int32_t, EventMetadata> metadata_;
  uint64_t events_ = 0;
};

// A decoded payload value.
using Value = std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string>;
struct NamedValue {
  std::string name;  // the field's own name (nested objects are flattened in order)
  Value value;
};
// Decodes `payload` by `fields`; arrays, GUIDs, decimals and DateTimes are skipped over (their
// value is std::monostate). DataLoss if the payload is shorter than the fields need.
absl::StatusOr<std::vector<NamedValue>> DecodePayload(const std::vector<FieldDef>& fields,
                                                      std::span<const uint8_t> payload,
                                                      int pointer_size = 8);
// The first value named `name`, or nullptr.
const Value* FindValue(const std::vector<NamedValue>& values, std::string_view name);

// A NUL-terminated UTF-16LE string at the start of `bytes`: the UTF-8 text and the bytes it
// took (including the NUL). DataLoss without a terminator.
absl::StatusOr<std::pair<std::string, size_t>> ReadUtf16z(std::span<const uint8_t> bytes);

}  // namespace clrdiag::eventpipe
