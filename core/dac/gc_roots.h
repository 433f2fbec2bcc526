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
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

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
