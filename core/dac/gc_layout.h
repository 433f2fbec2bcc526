// The GC heap's layout as dotnet-dump (through ClrMD) sees it: per heap its generation table,
// and per segment (or, on .NET 7+, region) the range its objects occupy, its committed and
// reserved memory, and which generations it holds. eeheap -gc, gcheapstat, gcwhere, dumpgen
// and verifyheap all answer from this one picture, so they agree with each other and with the
// reference on every address.
//
// The rules follow the runtime's and ClrMD's: segments are listed per heap as LOH, gen 2, (with
// regions) gen 1 and gen 0, then POH, each chain deduplicated; the segment the allocator fills
// ends at the heap's alloc_allocated; committed memory starts a page (or, for regions, the
// region header) below the first object; reserved memory is what follows the committed end.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

// [start, end); empty when start >= end.
struct AddressRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t length() const { return end > start ? end - start : 0; }
  bool Contains(uint64_t a) const { return a >= start && a < end; }
};

// Which generation an address of a segment belongs to (ClrMD's Generation).
enum class GcGeneration { kGen0, kGen1, kGen2, kLarge, kPinned, kFrozen, kUnknown };

// The generation every object of a segment of `kind` belongs to; kUnknown for the ephemeral
// segment (split by generation starts: GcSegment::GenerationOf).
GcGeneration GenerationOfKind(SegmentKind kind);

struct GcSegment {
  uint64_t address = 0;  // heap_segment*
  SegmentKind kind = SegmentKind::kGen2;
  int heap = 0;
  AddressRange objects;    // first object .. allocated end
  AddressRange committed;  // a page (region header) below the first object .. committed
  AddressRange reserved;   // committed end .. reserved end
  // Generation ranges: the whole object range for regions, split at the generation starts for
  // the ephemeral segment, the whole range as gen 2 for other small object segments.
  AddressRange gen[3];
  uint64_t flags = 0;
  uint64_t background_allocated = 0;

  GcGeneration GenerationOf(uint64_t address) const;
  // Objects on small object heaps are at most this big (85000), elsewhere int.MaxValue.
  uint64_t MaxObjectSize() const;
};

struct GcGenerationEntry {
  uint64_t start_segment = 0;
  uint64_t allocation_start = 0;
  uint64_t alloc_context_ptr = 0;
  uint64_t alloc_context_limit = 0;
};

struct GcSubHeap {
  int index = 0;
  uint64_t address = 0;  // gc_heap* (server GC), 0 for workstation
  bool regions = false;
  std::vector<GcGenerationEntry> generations;  // gen0, gen1, gen2, LOH[, POH]
  uint64_t alloc_allocated = 0;
  uint64_t ephemeral_segment = 0;
  uint64_t mark_array = 0;
  uint64_t gc_state = 0;  // current_c_gc_state: 0 marking, 1 planning, 2 free
  uint64_t next_sweep_obj = 0;
  uint64_t saved_sweep_ephemeral_segment = 0;
  uint64_t saved_sweep_ephemeral_start = 0;
  uint64_t background_saved_lowest = 0;
  uint64_t background_saved_highest = 0;
  std::vector<GcSegment> segments;  // in the runtime's chain order (see above)
};

struct GcLayout {
  bool server = false;
  bool structures_valid = false;
  uint32_t max_generation = 0;
  bool has_datas = false;  // ISOSDacInterface16 answered
  int32_t datas_mode = 0;  // DOTNET_GCDynamicAdaptationMode as the runtime runs it
  std::vector<GcSubHeap> heaps;
  // Every segment of every heap, sorted by first object (what ClrMD's heap.Segments lists).
  std::vector<const GcSegment*> sorted;

  // The segment whose object range holds `address`, or null.
  const GcSegment* FindByObjectRange(uint64_t address) const;
};

// Reads the layout through the DAC. The result owns its segments; `sorted` points into it
// (the value is not copyable: move it).
absl::StatusOr<std::unique_ptr<GcLayout>> ReadGcLayout(DacProcess& dac);

}  // namespace clrdiag::dac
