// The references an object holds, in the order ClrMD's ClrObject.EnumerateReferences gives
// them (dotnet-dump's traverseheap writes them in that order): the secondaries of the
// dependent handles whose primary the object is, the LoaderAllocator object of a collectible
// type, then the non-null pointer slots its type's GCDesc names (highest series first).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dac/dac_process.h"

namespace clrdiag::dac {

class ObjectReferenceReader {
 public:
  // `dependents`: (primary, secondary) of every dependent handle with both set.
  ObjectReferenceReader(DacProcess& dac, std::vector<std::pair<uint64_t, uint64_t>> dependents);

  // Appends the references of the object at `obj` (of MethodTable `mt`, `size` bytes as
  // HeapObject::size) to `out`. Returns false if the object could not be read.
  bool References(uint64_t obj, uint64_t mt, uint64_t size, std::vector<uint64_t>* out);

 private:
  struct GcDesc {
    bool repeating = false;
    std::vector<std::pair<int64_t, int64_t>> series;  // (size, offset), highest first
    int64_t start = 0;                                // repeating: first element's offset
    std::vector<std::pair<uint32_t, uint32_t>> runs;  // repeating: (pointers, skip bytes)
  };
  const GcDesc& DescOf(uint64_t mt);
  uint64_t LoaderAllocatorOf(uint64_t mt);
  void Scan(uint64_t begin, uint64_t end, std::vector<uint64_t>* out) const;

  DacProcess& dac_;
  std::vector<std::pair<uint64_t, uint64_t>> dependents_;  // sorted
  std::unordered_map<uint64_t, GcDesc> descs_;
  std::unordered_map<uint64_t, uint64_t> loader_allocators_;
  std::vector<uint8_t> buf_;
};

}  // namespace clrdiag::dac
