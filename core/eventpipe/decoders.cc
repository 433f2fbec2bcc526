#include "core/eventpipe/decoders.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/status_macros.h"

namespace clrdiag::eventpipe {
namespace {

std::string AsString(const Value* v) {
  if (v == nullptr) return "";
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  return "";
}

std::optional<double> AsDouble(const Value* v) {
  if (v == nullptr) return std::nullopt;
  if (const auto* d = std::get_if<double>(v)) return *d;
  if (const auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(v)) return static_cast<double>(*u);
  return std::nullopt;
}

}  // namespace

bool IsCounterEvent(const EventMetadata& md) { return md.event_name == "EventCounters"; }

std::optional<int64_t> SeriesIntervalMs(const std::string& series) {
  for (absl::string_view part : absl::StrSplit(series, ';')) {
    if (absl::ConsumePrefix(&part, "Interval=")) {
      int64_t ms;
      if (absl::SimpleAtoi(part, &ms)) return ms;
    }
  }
  return std::nullopt;
}

absl::StatusOr<CounterSample> DecodeCounter(const Event& e, const TraceInfo& trace) {
  if (e.metadata == nullptr || !IsCounterEvent(*e.metadata)) {
    return absl::NotFoundError("not an EventCounters event");
  }
  ASSIGN_OR_RETURN(std::vector<NamedValue> values,
                   DecodePayload(e.metadata->fields, e.payload, trace.pointer_size));
  CounterSample s;
  s.provider = e.metadata->provider;
  s.name = AsString(FindValue(values, "Name"));
  if (s.name.empty()) return absl::DataLossError("EventCounters payload without a Name");
  s.display_name = AsString(FindValue(values, "DisplayName"));
  s.display_units = AsString(FindValue(values, "DisplayUnits"));
  s.series = AsString(FindValue(values, "Series"));
  const std::string type = AsString(FindValue(values, "CounterType"));
  std::optional<double> value;
  if (type == "Sum") {
    s.incrementing = true;
    value = AsDouble(FindValue(values, "Increment"));
  } else if (type == "Mean") {
    value = AsDouble(FindValue(values, "Mean"));
  } else {
    // No CounterType (very old runtimes): whichever value field is there.
    value = AsDouble(FindValue(values, "Mean"));
    if (!value) {
      value = AsDouble(FindValue(values, "Increment"));
      s.incrementing = value.has_value();
    }
  }
  if (!value) {
    return absl::DataLossError(absl::StrCat("counter ", s.name, " has no Mean or Increment"));
  }
  s.value = *value;
  s.interval_sec = AsDouble(FindValue(values, "IntervalSec")).value_or(0);
  s.timestamp = trace.ToTime(e.timestamp);
  return s;
}

bool IsExceptionThrownEvent(const EventMetadata& md) {
  return md.provider == kRuntimeProvider && md.event_id == kExceptionThrownEventId;
}

absl::StatusOr<ExceptionThrown> DecodeExceptionThrown(const Event& e, const TraceInfo& trace) {
  if (e.metadata == nullptr || !IsExceptionThrownEvent(*e.metadata)) {
    return absl::NotFoundError("not an ExceptionThrown event");
  }
  ExceptionThrown x;
  x.thread_id = e.thread_id;
  x.timestamp = trace.ToTime(e.timestamp);
  if (!e.metadata->fields.empty()) {
    ASSIGN_OR_RETURN(std::vector<NamedValue> values,
                     DecodePayload(e.metadata->fields, e.payload, trace.pointer_size));
    x.type = AsString(FindValue(values, "ExceptionType"));
    x.message = AsString(FindValue(values, "ExceptionMessage"));
    if (std::optional<double> hr = AsDouble(FindValue(values, "ExceptionHRESULT"))) {
      x.hresult = static_cast<uint32_t>(*hr);
    }
    if (std::optional<double> f = AsDouble(FindValue(values, "ExceptionFlags"))) {
      x.flags = static_cast<uint16_t>(*f);
    }
    return x;
  }
  // Metadata without fields: the manifest's layout (two strings, pointer, u32, u16, u16).
  std::span<const uint8_t> p = e.payload;
  ASSIGN_OR_RETURN(auto type, ReadUtf16z(p));
  p = p.subspan(type.second);
  ASSIGN_OR_RETURN(auto message, ReadUtf16z(p));
  p = p.subspan(message.second);
  x.type = std::move(type.first);
  x.message = std::move(message.first);
  const size_t ptr = static_cast<size_t>(trace.pointer_size);
  if (p.size() >= ptr + 6) {
    x.hresult =
        p[ptr] | (p[ptr + 1] << 8) | (p[ptr + 2] << 16) | (static_cast<uint32_t>(p[ptr + 3]) << 24);
    x.flags = static_cast<uint16_t>(p[ptr + 4] | (p[ptr + 5] << 8));
  }
  return x;
}

bool IsExceptionFlowEvent(const EventMetadata& md) {
  return md.provider == kRuntimeProvider && (md.event_id == kExceptionCatchStartEventId ||
                                             md.event_id == kExceptionFilterStartEventId ||
                                             md.event_id == kExceptionThrownStopEventId);
}

absl::StatusOr<ExceptionFlow> DecodeExceptionFlow(const Event& e, const TraceInfo& trace) {
  if (e.metadata == nullptr || !IsExceptionFlowEvent(*e.metadata)) {
    return absl::NotFoundError("not an exception catch/filter/stop event");
  }
  ExceptionFlow f;
  f.thread_id = e.thread_id;
  f.timestamp = trace.ToTime(e.timestamp);
  switch (e.metadata->event_id) {
    case kExceptionCatchStartEventId:
      f.kind = ExceptionFlow::Kind::kCatch;
      break;
    case kExceptionFilterStartEventId:
      f.kind = ExceptionFlow::Kind::kFilter;
      break;
    default:
      f.kind = ExceptionFlow::Kind::kThrownStop;
      return f;
  }
  if (!e.metadata->fields.empty()) {
    ASSIGN_OR_RETURN(std::vector<NamedValue> values,
                     DecodePayload(e.metadata->fields, e.payload, trace.pointer_size));
    f.method = AsString(FindValue(values, "MethodName"));
    return f;
  }
  // The manifest's layout: EntryEIP (u64), MethodID (u64), MethodName (UTF-16), ClrInstanceID.
  std::span<const uint8_t> p = e.payload;
  if (p.size() < 16) return absl::DataLossError("exception handling event too short");
  ASSIGN_OR_RETURN(auto name, ReadUtf16z(p.subspan(16)));
  f.method = std::move(name.first);
  return f;
}

}  // namespace clrdiag::eventpipe
