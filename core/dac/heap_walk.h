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
  uint64_t size = 0;  // Aligned size the object occupies.
  const HeapSegment* segment = nullptr;
};

struct HeapWalkSummary {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  // Segments whose walk stopped early (unreadable memory, an invalid MethodTable), one line
  // each: the heap may hold more objects than were reported.
  std::vector<std::string> warnings;
};

// Calls `visit` for every object, segment by segment (see DacProcess::GetHeapSegments for
// the order). `visit` returns false to stop. Cancelled if `cancel` is set.
absl::StatusOr<HeapWalkSummary> WalkHeap(DacProcess& dac,
                                         const std::function<bool(const HeapObject&)>& visit,
                                         const CancellationToken* cancel = nullptr);

struct TypeStat {
  uint64_t mt = 0;
  uint64_t count = 0;
  uint64_t total_size = 0;
  std::string name;  // C#-like (PrettyTypeName); "Free" for free space.
};

struct HeapStats {
  std::vector<TypeStat> types;  // Ascending by total_size; ties keep first-seen order.
  uint64_t objects = 0;
  uint64_t bytes = 0;
  std::vector<std::string> warnings;
};

absl::StatusOr<HeapStats> ComputeHeapStats(DacProcess& dac,
                                           const CancellationToken* cancel = nullptr);

}  // namespace clrdiag::dac
