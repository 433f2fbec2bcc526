// Walking the managed (GC) heap of a dump, object by object, and `dumpheap -stat`-like
// statistics on top of it.
//
// The walk follows the GC's own layout rules: objects are contiguous from a segment's (or
// region's) first object to its allocated end; an object's size is the MethodTable's base
// size plus, for arrays and strings, the u32 component count at obj+8 times the component
// size, aligned to 8 bytes and at least 24; allocation contexts (per thread, per heap and
// the global one) are gaps to jump over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

struct HeapObject {
  uint64_t address = 0;
  uint64_t mt = 0;
  // The object's size as .NET tools report it: base size + components, at least 24 bytes,
  // not rounded up to the 8-byte alignment.
  uint64_t size = 0;
  uint64_t footprint = 0;  // Bytes up to the next object: `size` aligned to 8.
  const HeapSegment* segment = nullptr;
};

struct HeapWalkSummary {
  uint64_t objects = 0;
  uint64_t bytes = 0;  // Sum of HeapObject::size.
  // Segments whose walk stopped early (unreadable memory, an invalid MethodTable), one line
  // each: the heap may hold more objects than were reported.
  std::vector<std::string> warnings;
};

// Calls `visit` for every object, in address order of the segments (as ClrMD, and therefore
// dotnet-dump, enumerates them). `visit` returns false to stop. Cancelled if `cancel` is set.
absl::StatusOr<HeapWalkSummary> WalkHeap(DacProcess& dac,
                                         const std::function<bool(const HeapObject&)>& visit,
                                         const CancellationToken* cancel = nullptr);
// The same walk over the segments `keep` accepts only (all when `keep` is empty).
absl::StatusOr<HeapWalkSummary> WalkHeapSegments(
    DacProcess& dac, const std::function<bool(const HeapSegment&)>& keep,
    const std::function<bool(const HeapObject&)>& visit, const CancellationToken* cancel = nullptr);

struct TypeStat {
  uint64_t mt = 0;
  uint64_t count = 0;
  uint64_t total_size = 0;
  std::string name;  // C#-like (PrettyTypeName); "Free" for free space.
};

struct HeapStats {
  // Ascending by total_size; ties keep first-seen order (dotnet-dump's `dumpheap -stat`).
  std::vector<TypeStat> types;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  std::vector<std::string> warnings;
};

absl::StatusOr<HeapStats> ComputeHeapStats(DacProcess& dac,
                                           const CancellationToken* cancel = nullptr);

}  // namespace clrdiag::dac
