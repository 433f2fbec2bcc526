// Which heap objects are reachable from the GC's roots, the way dotnet-dump's `dumpheap
// -live/-dead` decides it (its LiveObjectService over ClrMD):
//
//  - roots: the objects of the strong handles (every kind but weak short/long, weak native
//    COM and dependent; ref-counted ones only with a count above zero), the finalizer
//    queue's ready-for-finalization objects of every heap, and the GC references of the
//    stacks of the live threads (interior references count for the object that holds them);
//  - references of a reachable object: the pointer slots its type's GCDesc names, the
//    loader allocator object of a collectible type, and the secondaries of the dependent
//    handles whose primary it is.
//
// Marks live in a bitmap with one bit per 8-byte word of the segments' allocated ranges (and
// a second one for where objects start, from one heap walk), so the memory is bounded by
// heap size / 32; the marking is iterative (an explicit stack) and cancellable.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

// A type's GCDesc, read from the words just below its MethodTable: a signed series count N
// at mt-8; N > 0: N (size, offset) pairs below it, the highest first, each naming a run of
// pointers from `offset` for `size + object size` bytes; N < 0 (arrays of structs): the
// first element's offset at mt-16 and -N (pointer count, skip bytes) pairs of 32-bit halves
// from mt-24 downwards, repeated for each element.
struct GcDesc {
  bool repeating = false;
  std::vector<std::pair<int64_t, int64_t>> series;  // (size, offset), highest first
  int64_t start = 0;                                // repeating: first element's offset
  std::vector<std::pair<uint32_t, uint32_t>> runs;  // repeating: (pointers, skip bytes)

  bool empty() const { return series.empty() && runs.empty(); }
};

// The GCDesc of `mt` (empty if it cannot be read or the type has no pointers).
GcDesc ReadGcDesc(DacProcess& dac, uint64_t mt);

// Calls fn(offset, value) for every non-null pointer slot of an object of `size` bytes, in
// the order the GC (and ClrMD's GCDesc walk) visits them; `data` holds the object's first
// `have` bytes (slots past them are skipped).
template <typename Fn>
void ForEachPointerSlot(const GcDesc& desc, const uint8_t* data, uint64_t have, uint64_t size,
                        Fn&& fn) {
  constexpr uint64_t kSlot = 8;
  auto scan = [&](uint64_t begin, uint64_t end) {
    end = end < have ? end : have;
    for (uint64_t off = begin; off + kSlot <= end; off += kSlot) {
      uint64_t p;
      std::memcpy(&p, data + off, sizeof(p));
      if (p != 0) fn(off, p);
    }
  };
  if (!desc.repeating) {
    for (auto [series_size, offset] : desc.series) {
      const int64_t stop = offset + series_size + static_cast<int64_t>(size);
      if (offset < 0 || stop <= offset) continue;
      scan(static_cast<uint64_t>(offset), static_cast<uint64_t>(stop));
    }
    return;
  }
  if (desc.runs.empty()) return;
  uint64_t off = static_cast<uint64_t>(desc.start > 0 ? desc.start : 0);
  while (off + kSlot < size) {
    const uint64_t before = off;
    for (auto [pointers, skip] : desc.runs) {
      const uint64_t run = (pointers > 0 ? pointers : 1) * kSlot;
      scan(off, off + run);
      off += run + skip;
    }
    if (off <= before) break;
  }
}

// Handle kinds (SOSHandleData::Type, ClrMD's ClrHandleKind).
inline constexpr uint32_t kHandleWeakShort = 0;
inline constexpr uint32_t kHandleWeakLong = 1;
inline constexpr uint32_t kHandleStrong = 2;
inline constexpr uint32_t kHandlePinned = 3;
inline constexpr uint32_t kHandleRefCounted = 5;
inline constexpr uint32_t kHandleDependent = 6;
inline constexpr uint32_t kHandleAsyncPinned = 7;
inline constexpr uint32_t kHandleSizedRef = 8;
inline constexpr uint32_t kHandleWeakNativeCom = 9;

// True for the handles that keep their object alive (ClrMD's ClrHandle.IsStrong).
bool KeepsObjectAlive(const HandleEntry& h);

// One GC root, as dotnet-dump's gcroot lists them.
struct GcRoot {
  enum class Kind { kHandle, kFinalizer, kStack };
  Kind kind = Kind::kHandle;
  uint64_t address = 0;  // The handle, the finalizer queue slot, or the stack slot.
  uint64_t object = 0;   // For interior stack references: the object holding the address.
  uint32_t handle_type = 0;
  uint32_t ref_count = 0;
  uint32_t os_thread_id = 0;  // kStack
  StackReference stack;       // kStack: the DAC's record
};

struct GcRootOptions {
  bool stacks = true;     // The stack references of the live threads (the slow part).
  bool finalizer = true;  // The finalizer queue's ready-for-finalization objects.
};

// The roots in dotnet-dump's order (its RootCacheService): the strong handles in handle
// table order, the finalizer queue's ready objects, then each live thread's stack
// references. `resolve_interior` maps an interior stack reference to the start of the
// object holding it (0: none); without it interior references are kept as they are.
// Threads whose references cannot be read are skipped with a line in `warnings`.
absl::StatusOr<std::vector<GcRoot>> EnumerateGcRoots(
    DacProcess& dac, const GcRootOptions& options, const CancellationToken* cancel,
    const std::function<uint64_t(uint64_t)>& resolve_interior, std::vector<std::string>* warnings);

class LiveObjectSet {
 public:
  // Walks the heap, enumerates the roots and marks everything reachable.
  static absl::StatusOr<LiveObjectSet> Compute(DacProcess& dac,
                                               const CancellationToken* cancel = nullptr);

  // True if an object starts at `address` and is reachable.
  bool IsLive(uint64_t address) const;

  uint64_t roots() const { return roots_; }
  uint64_t live_objects() const { return live_; }
  // Things that made the answer less certain (a thread whose references could not be
  // enumerated, an object that could not be read), one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct Range {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t first_bit = 0;  // Index of `start`'s bit in the bitmaps.
  };
  // The bit of `address`, or -1 if no range holds it or it is not 8-byte aligned.
  int64_t BitOf(uint64_t address) const;
  bool Test(const std::vector<uint64_t>& bits, uint64_t bit) const {
    return (bits[bit >> 6] >> (bit & 63)) & 1;
  }
  // The start of the object holding `address` (an interior reference), or 0.
  uint64_t ContainingObject(uint64_t address) const;

  std::vector<Range> ranges_;  // Sorted by start, disjoint.
  std::vector<uint64_t> starts_;
  std::vector<uint64_t> marks_;
  uint64_t roots_ = 0;
  uint64_t live_ = 0;
  std::vector<std::string> warnings_;
  friend class LiveMarker;
};

}  // namespace clrdiag::dac
