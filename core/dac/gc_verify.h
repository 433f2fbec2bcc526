// Heap verification (verifyheap, verifyobj) with dotnet-dump's rules (ClrMD's VerifyObject):
// per object its alignment, MethodTable, size against its segment, every reference its GCDesc
// names (aligned, to an object with a valid MethodTable, not to free space), and its header's
// sync block index and thin lock.
//
// The heap is walked the way ClrMD walks it "carefully" (after an unreadable or invalid
// MethodTable the walk scans forward a pointer at a time for the next valid one), but in two
// sequential passes with large reads: the first records where objects start (a bit per
// 8 bytes of the segments' object ranges), the second verifies, so a reference to an object
// the walk has seen costs a bit test instead of a read of the dump.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"
#include "core/dac/gc_layout.h"

namespace clrdiag::dac {

// ClrMD's ObjectCorruptionKind; the names are what the reference prints.
enum class CorruptionKind {
  kNone,
  kObjectNotOnTheHeap,
  kObjectNotPointerAligned,
  kObjectTooLarge,
  kInvalidMethodTable,
  kInvalidThinlock,
  kSyncBlockMismatch,
  kSyncBlockZero,
  kObjectReferenceNotPointerAligned,
  kInvalidObjectReference,
  kFreeObjectReference,
  kCouldNotReadObject,
  kCouldNotReadMethodTable,
  kCouldNotReadCardTable,
  kCouldNotReadGCDesc,
};
const char* CorruptionKindName(CorruptionKind kind);

struct Corruption {
  uint64_t object = 0;
  int64_t offset = 0;  // of the bad field from the object's start; -4 for the header
  CorruptionKind kind = CorruptionKind::kNone;
  int64_t sync_block_index = -1;      // what the header says (sync block kinds)
  int64_t clr_sync_block_index = -1;  // what the runtime's table says
  uint64_t size = 0;                  // the object's size as computed (ObjectTooLarge)
};

struct VerifyProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t objects = 0;
};

// Which objects verifyheap checks when filtered (-heap, -segment, a memory range): these
// segments in this order, and with `has_range` only objects starting in `range`.
struct VerifyScope {
  std::vector<const GcSegment*> segments;
  bool has_range = false;
  AddressRange range;
};

class HeapVerifier {
 public:
  HeapVerifier(DacProcess& dac, const GcLayout& layout);
  ~HeapVerifier();

  // Verifies every object of `segments` (all when empty), in address order; `report` gets the
  // first problem of each bad object. Returns the number of objects verified.
  absl::StatusOr<uint64_t> VerifyHeap(const std::function<void(const Corruption&)>& report,
                                      const std::function<void(const VerifyProgress&)>& progress,
                                      const CancellationToken* cancel,
                                      const VerifyScope* scope = nullptr);

  // Every problem of the object at `address` (empty: valid), ordered by offset.
  absl::StatusOr<std::vector<Corruption>> VerifyObject(uint64_t address);

  // The number of (non-free) entries in the runtime's sync block table.
  uint64_t sync_block_count();
  // The objects the sync block table names, by sync block index.
  std::vector<uint64_t> SyncBlockObjects();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clrdiag::dac
