// Decoders of the events the automation needs, by metadata field names (not offsets):
// - EventCounters (System.Runtime and any EventSource with counters): Mean counters give their
//   Mean, incrementing ("Sum") counters their Increment (the delta over the interval).
// - ExceptionThrown_V1 (Microsoft-Windows-DotNETRuntime, event 80, keyword 0x8000): a
//   first-chance exception's type and message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/eventpipe/nettrace.h"

namespace clrdiag::eventpipe {

inline constexpr char kRuntimeProvider[] = "Microsoft-Windows-DotNETRuntime";
inline constexpr uint64_t kExceptionKeyword = 0x8000;
inline constexpr int32_t kExceptionThrownEventId = 80;
inline constexpr char kSystemRuntimeProvider[] = "System.Runtime";

struct CounterSample {
  std::string provider;
  std::string name;          // "cpu-usage", "gc-heap-size", ...
  std::string display_name;  // "CPU Usage"
  std::string display_units;
  bool incrementing = false;  // CounterType "Sum": value is the increment over the interval
  double value = 0;
  double interval_sec = 0;
  std::string series;  // "Interval=1000"
  absl::Time timestamp;
};

// True if `md` is an EventCounters event.
bool IsCounterEvent(const EventMetadata& md);
// Decodes an EventCounters event. NotFound if it is not one; DataLoss if malformed.
absl::StatusOr<CounterSample> DecodeCounter(const Event& e, const TraceInfo& trace);
// The interval in milliseconds a sample's Series names ("Interval=1000" → 1000), if any.
std::optional<int64_t> SeriesIntervalMs(const std::string& series);

struct ExceptionThrown {
  std::string type;     // "System.InvalidOperationException"
  std::string message;  // the exception's Message
  uint32_t hresult = 0;
  uint16_t flags = 0;  // 0x01 inner, 0x02 nested, 0x04 rethrown, 0x08 corrupted state, 0x10 CLS
  uint64_t thread_id = 0;
  absl::Time timestamp;
};

bool IsExceptionThrownEvent(const EventMetadata& md);
absl::StatusOr<ExceptionThrown> DecodeExceptionThrown(const Event& e, const TraceInfo& trace);

// What became of a thrown exception (same keyword, level Informational (4)): the runtime logs
// ExceptionCatchStart (250) when a handler catches it, ExceptionFilterStart (254) when a
// `when` filter (or, on .NET 10, the thread's base frame deciding it is unhandled) looks at it,
// and ExceptionThrownStop (256) when the dispatch of a handled exception ends.
inline constexpr int32_t kExceptionCatchStartEventId = 250;
inline constexpr int32_t kExceptionFilterStartEventId = 254;
inline constexpr int32_t kExceptionThrownStopEventId = 256;

struct ExceptionFlow {
  enum class Kind { kCatch, kFilter, kThrownStop };
  Kind kind = Kind::kCatch;
  std::string method;  // catch/filter: the handler's method ("Ns.Type::Method(...)"); else ""
  uint64_t thread_id = 0;
  absl::Time timestamp;
};

bool IsExceptionFlowEvent(const EventMetadata& md);
absl::StatusOr<ExceptionFlow> DecodeExceptionFlow(const Event& e, const TraceInfo& trace);

}  // namespace clrdiag::eventpipe
