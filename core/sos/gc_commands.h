// Private to the GC commands (cmd_gc*.cc): dotnet-dump's column formats and the handlers
// that live in the other files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "core/dac/gc_layout.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos::gc {

inline CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

// dotnet-dump's Pointer format: lower-case hex, at least 12 digits.
inline std::string Ptr(uint64_t v) { return absl::StrFormat("%012x", v); }

// Left/right alignment in a column of `width` (no truncation: values here always fit).
inline std::string Left(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}
inline std::string Right(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// "0x1000 (4096)", or `zero` for 0 (EEHeapCommand.FormatMemorySize).
inline std::string MemorySize(uint64_t v, const std::string& zero = "") {
  return v == 0 ? zero : absl::StrFormat("0x%x (%d)", v, v);
}

// eeheap's filters as they touch the loader part: only blocks that start or end in the range
// are shown; with any filter (also -heap or -segment) totals are "Partial".
struct LoaderFilter {
  bool partial = false;
  bool has_range = false;
  uint64_t start = 0, end = UINT64_MAX;
};

// The loader part of eeheap (cmd_gc_loader.cc): appends its text to *out and its JSON to
// *json; returns the bytes it counted.
absl::StatusOr<uint64_t> PrintLoaderHeaps(CommandContext& ctx, std::string* out, Json* json,
                                          const LoaderFilter& filter = {});

// cmd_gc_verify.cc
CommandResult VerifyHeap(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args);
CommandResult VerifyObj(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args);

}  // namespace clrdiag::sos::gc
