#include "core/dac/object_refs.h"

#include <algorithm>
#include <cstring>

namespace clrdiag::dac {
namespace {
constexpr uint64_t kPointerSize = 8;
}  // namespace

ObjectReferenceReader::ObjectReferenceReader(DacProcess& dac,
                                             std::vector<std::pair<uint64_t, uint64_t>> dependents)
    : dac_(dac), dependents_(std::move(dependents)) {
  std::sort(dependents_.begin(), dependents_.end());
}

// A GCDesc sits just below its MethodTable: a signed series count N at mt-8. N > 0: N
// (size, offset) pairs below it, the highest series nearest the count; each covers pointers
// from `offset` for `size + object size` bytes. N < 0 (arrays of structs): the first
// element's offset at mt-16, then -N (pointers, skip) pairs of 32-bit halves from mt-24 down,
// repeated per element.
const ObjectReferenceReader::GcDesc& ObjectReferenceReader::DescOf(uint64_t mt) {
  auto it = descs_.find(mt);
  if (it != descs_.end()) return it->second;
  GcDesc d;
  int64_t n = 0;
  if (dac_.ReadTargetMemory(mt - 8, &n, sizeof(n)) == sizeof(n) && n != 0 && n > -65536 &&
      n < 65536) {
    if (n > 0) {
      std::vector<int64_t> raw(2 * static_cast<size_t>(n));
      const uint64_t from = mt - 8 - raw.size() * 8;
      if (dac_.ReadTargetMemory(from, raw.data(), raw.size() * 8) == raw.size() * 8) {
        for (int64_t k = n - 1; k >= 0; --k) d.series.emplace_back(raw[2 * k], raw[2 * k + 1]);
      }
    } else {
      d.repeating = true;
      const size_t m = static_cast<size_t>(-n);
      std::vector<uint32_t> raw(2 * m);
      if (dac_.ReadTargetMemory(mt - 16, &d.start, sizeof(d.start)) == sizeof(d.start) &&
          dac_.ReadTargetMemory(mt - 16 - m * 8, raw.data(), raw.size() * 4) == raw.size() * 4) {
        for (size_t i = 0; i < m; ++i) {
          const size_t at = 2 * (m - 1 - i);
          d.runs.emplace_back(raw[at], raw[at + 1]);
        }
      }
    }
  }
  return descs_.emplace(mt, std::move(d)).first->second;
}

uint64_t ObjectReferenceReader::LoaderAllocatorOf(uint64_t mt) {
  auto it = loader_allocators_.find(mt);
  if (it != loader_allocators_.end()) return it->second;
  uint64_t obj = 0;
  absl::StatusOr<uint64_t> handle = dac_.GetLoaderAllocatorHandle(mt);
  if (handle.ok() && *handle != 0) {
    if (dac_.ReadTargetMemory(*handle, &obj, sizeof(obj)) != sizeof(obj)) obj = 0;
  }
  loader_allocators_.emplace(mt, obj);
  return obj;
}

void ObjectReferenceReader::Scan(uint64_t begin, uint64_t end, std::vector<uint64_t>* out) const {
  end = std::min<uint64_t>(end, buf_.size());
  for (uint64_t off = begin; off + kPointerSize <= end; off += kPointerSize) {
    uint64_t p;
    std::memcpy(&p, buf_.data() + off, sizeof(p));
    if (p != 0) out->push_back(p);
  }
}

bool ObjectReferenceReader::References(uint64_t obj, uint64_t mt, uint64_t size,
                                       std::vector<uint64_t>* out) {
  for (auto it = std::lower_bound(dependents_.begin(), dependents_.end(),
                                  std::pair<uint64_t, uint64_t>{obj, 0});
       it != dependents_.end() && it->first == obj; ++it) {
    out->push_back(it->second);
  }
  if (uint64_t la = LoaderAllocatorOf(mt); la != 0) out->push_back(la);
  absl::StatusOr<MethodTableInfo> info = dac_.GetMethodTable(mt);
  if (!info.ok()) return false;
  if (!info->contains_pointers) return true;
  const GcDesc& desc = DescOf(mt);
  if (desc.series.empty() && desc.runs.empty()) return true;
  if (size > (uint64_t{1} << 31)) return false;
  buf_.resize(size);
  size_t got = dac_.core().ReadDumpedMemory(obj, buf_.data(), size);
  if (got < size) got = dac_.ReadTargetMemory(obj, buf_.data(), size);
  if (got <= kPointerSize) return false;
  buf_.resize(got);
  if (!desc.repeating) {
    for (auto [series_size, offset] : desc.series) {
      const int64_t stop = offset + series_size + static_cast<int64_t>(size);
      if (offset < 0 || stop <= offset) continue;
      Scan(static_cast<uint64_t>(offset), static_cast<uint64_t>(stop), out);
    }
  } else {
    uint64_t off = static_cast<uint64_t>(std::max<int64_t>(desc.start, 0));
    while (off + kPointerSize < size) {
      const uint64_t before = off;
      for (auto [pointers, skip] : desc.runs) {
        const uint64_t run = std::max<uint64_t>(pointers, 1) * kPointerSize;
        Scan(off, off + run, out);
        off += run + skip;
      }
      if (off <= before) break;
    }
  }
  return true;
}

}  // namespace clrdiag::dac
