#include "core/dac/gc_roots.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/heap_walk.h"

namespace clrdiag::dac {
namespace {

constexpr uint64_t kPointerSize = 8;
constexpr uint64_t kMinObjectSize = 3 * kPointerSize;
constexpr uint64_t kMethodTableFlagBits = 7;
constexpr uint32_t kBatch = 512;

// Handle kinds (SOSHandleData::Type).
constexpr uint32_t kHandleWeakShort = 0;
constexpr uint32_t kHandleWeakLong = 1;
constexpr uint32_t kHandleRefCounted = 5;
constexpr uint32_t kHandleDependent = 6;
constexpr uint32_t kHandleWeakNativeCom = 9;

bool IsStrongHandle(const HandleEntry& h) {
  switch (h.type) {
    case kHandleRefCounted:
      return h.ref_count > 0;
    case kHandleWeakShort:
    case kHandleWeakLong:
    case kHandleDependent:
    case kHandleWeakNativeCom:
      return false;
    default:
      return true;
  }
}

// A type's GCDesc, read from the words just below its MethodTable: a signed series count N
// at mt-8; N > 0: N (size, offset) pairs below it, the highest first, each naming a run of
// pointers from `offset` for `size + object size` bytes; N < 0 (arrays of structs): the
// first element's offset at mt-16 and -N (pointer count, skip bytes) pairs of 32-bit halves
// from mt-24 downwards, repeated for each element.
struct GcDesc {
  bool repeating = false;
  std::vector<std::pair<int64_t, int64_t>> series;  // (size, offset)
  int64_t start = 0;                                // repeating: first element's offset
  std::vector<std::pair<uint32_t, uint32_t>> runs;  // repeating: (pointers, skip bytes)
};

}  // namespace

absl::StatusOr<std::vector<HandleEntry>> DacProcess::GetHandles(const CancellationToken* cancel) {
  std::vector<HandleEntry> out;
  {
    std::lock_guard<std::mutex> lock(DacMutex());
    IUnknown* raw = nullptr;
    HRESULT hr = sos_->GetHandleEnum(&raw);
    if (Failed(hr) || raw == nullptr) return DacError("GetHandleEnum", hr);
    auto handles = ComPtr<ISOSHandleEnum>::Adopt(static_cast<ISOSHandleEnum*>(raw));
    std::vector<SOSHandleData> buf(kBatch);
    for (;;) {
      if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("handle table");
      uint32_t fetched = 0;
      hr = handles->Next(kBatch, buf.data(), &fetched);
      if (Failed(hr)) return DacError("ISOSHandleEnum::Next", hr);
      if (fetched == 0 || fetched > kBatch) break;
      for (uint32_t i = 0; i < fetched; ++i) {
        out.push_back(
            {buf[i].Handle, 0, buf[i].Secondary, buf[i].Type, buf[i].RefCount, buf[i].AppDomain});
      }
    }
  }
  for (HandleEntry& h : out) {
    if (ReadTargetMemory(h.handle, &h.object, sizeof(h.object)) != sizeof(h.object)) h.object = 0;
  }
  return out;
}

absl::StatusOr<std::vector<StackReference>> DacProcess::GetStackReferences(uint32_t os_thread_id) {
  std::lock_guard<std::mutex> lock(DacMutex());
  IUnknown* raw = nullptr;
  HRESULT hr = sos_->GetStackReferences(os_thread_id, &raw);
  if (Failed(hr) || raw == nullptr) {
    return DacError(absl::StrCat("GetStackReferences(", os_thread_id, ")"), hr);
  }
  auto refs = ComPtr<ISOSStackRefEnum>::Adopt(static_cast<ISOSStackRefEnum*>(raw));
  std::vector<StackReference> out;
  std::vector<SOSStackRefData> buf(kBatch);
  for (;;) {
    uint32_t fetched = 0;
    hr = refs->Next(kBatch, buf.data(), &fetched);
    if (Failed(hr)) return DacError("ISOSStackRefEnum::Next", hr);
    if (fetched == 0 || fetched > kBatch) break;
    for (uint32_t i = 0; i < fetched; ++i) {
      out.push_back(
          {buf[i].Address, buf[i].Object, (buf[i].Flags & 1) != 0, (buf[i].Flags & 2) != 0});
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> DacProcess::GetFinalizerReadyRanges() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpGcHeapData gc{};
  HRESULT hr = sos_->GetGCHeapData(&gc);
  if (Failed(hr)) return DacError("GetGCHeapData", hr);
  std::vector<CLRDATA_ADDRESS> heaps{0};
  if (gc.bServerMode != 0) {
    if (gc.HeapCount == 0 || gc.HeapCount > 4096) {
      return absl::DataLossError(absl::StrCat("implausible server GC heap count ", gc.HeapCount));
    }
    heaps.assign(gc.HeapCount, 0);
    uint32_t needed = 0;
    hr = sos_->GetGCHeapList(gc.HeapCount, heaps.data(), &needed);
    if (Failed(hr)) return DacError("GetGCHeapList", hr);
  }
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (CLRDATA_ADDRESS heap : heaps) {
    // The fill pointers: 6 with segments (ready = [3], [5]), 7 with regions ([4], [6]).
    CLRDATA_ADDRESS fp[16] = {};
    uint32_t n = 0;
    if (sos8_) {
      hr = gc.bServerMode != 0 ? sos8_->GetFinalizationFillPointersSvr(heap, 16, fp, &n)
                               : sos8_->GetFinalizationFillPointers(16, fp, &n);
      if (Failed(hr)) n = 0;
    }
    if (n == 0) {
      DacpGcHeapDetails d{};
      hr = gc.bServerMode != 0 ? sos_->GetGCHeapDetails(heap, &d) : sos_->GetGCHeapStaticData(&d);
      if (Failed(hr)) return DacError("GetGCHeapDetails", hr);
      std::memcpy(fp, d.finalization_fill_pointers, sizeof(d.finalization_fill_pointers));
      n = 7;
    }
    if (n == 6) {
      out.emplace_back(fp[3], fp[5]);
    } else if (n >= 7) {
      out.emplace_back(fp[4], fp[6]);
    }
  }
  return out;
}

// The marking, over a LiveObjectSet's bitmaps.
class LiveMarker {
 public:
  LiveMarker(DacProcess& dac, LiveObjectSet& set, const CancellationToken* cancel)
      : dac_(dac), set_(set), cancel_(cancel) {}

  absl::Status Run() {
    ASSIGN_OR_RETURN(UsefulGlobals globals, dac_.GetUsefulGlobals());
    string_mt_ = globals.string_mt;
    ASSIGN_OR_RETURN(std::vector<HandleEntry> handles, dac_.GetHandles(cancel_));
    for (const HandleEntry& h : handles) {
      if (h.type == kHandleDependent && h.object != 0 && h.secondary != 0) {
        dependents_.emplace_back(h.object, h.secondary);
      }
    }
    std::sort(dependents_.begin(), dependents_.end());
    for (const HandleEntry& h : handles) {
      if (IsStrongHandle(h)) Root(h.object);
    }
    // The finalizer queue's ready objects.
    ASSIGN_OR_RETURN(auto ranges, dac_.GetFinalizerReadyRanges());
    for (auto [begin, end] : ranges) {
      if (end <= begin || end - begin > (uint64_t{1} << 32)) continue;
      std::vector<uint64_t> slots((end - begin) / kPointerSize);
      size_t got = dac_.ReadTargetMemory(begin, slots.data(), slots.size() * kPointerSize);
      slots.resize(got / kPointerSize);
      for (uint64_t obj : slots) Root(obj);
    }
    // The stacks of the live threads.
    ASSIGN_OR_RETURN(ThreadStore ts, dac_.GetThreadStore());
    for (const ManagedThread& t : ts.threads) {
      if (t.os_id == 0 || (t.state & (kThreadStateUnstarted | kThreadStateDead)) != 0) continue;
      if (cancel_ != nullptr && cancel_->cancelled()) return absl::CancelledError("stack roots");
      absl::StatusOr<std::vector<StackReference>> refs = dac_.GetStackReferences(t.os_id);
      if (!refs.ok()) {
        set_.warnings_.push_back(absl::StrCat("thread 0x", absl::Hex(t.os_id),
                                              ": stack references: ", refs.status().message()));
        continue;
      }
      for (const StackReference& r : *refs) {
        if (r.object == 0) continue;
        if (!r.interior) {
          Root(r.object);
          continue;
        }
        // An interior reference keeps the object that holds the address alive; failing
        // that, it may be the address of a slot holding an object reference.
        uint64_t obj = set_.ContainingObject(r.object);
        if (obj == 0 && set_.BitOf(r.object & ~(kPointerSize - 1)) < 0) {
          uint64_t target = 0;
          if (dac_.ReadTargetMemory(r.object, &target, sizeof(target)) == sizeof(target)) {
            obj = set_.ContainingObject(target);
          }
        }
        if (obj != 0) Root(obj);
      }
    }
    return Mark();
  }

 private:
  void Root(uint64_t obj) {
    ++set_.roots_;
    Visit(obj);
  }

  // Marks `obj` and queues it for scanning, if it is an unmarked heap object.
  void Visit(uint64_t obj) {
    int64_t bit = set_.BitOf(obj);
    if (bit < 0 || !set_.Test(set_.starts_, bit) || set_.Test(set_.marks_, bit)) return;
    set_.marks_[bit >> 6] |= uint64_t{1} << (bit & 63);
    ++set_.live_;
    todo_.push_back(obj);
  }

  const GcDesc* DescOf(uint64_t mt) {
    auto it = descs_.find(mt);
    if (it != descs_.end()) return &it->second;
    GcDesc d;
    int64_t n = 0;
    if (dac_.ReadTargetMemory(mt - 8, &n, sizeof(n)) == sizeof(n) && n != 0 && n > -65536 &&
        n < 65536) {
      if (n > 0) {
        std::vector<int64_t> raw(2 * static_cast<size_t>(n));
        const uint64_t from = mt - 8 - raw.size() * 8;
        if (dac_.ReadTargetMemory(from, raw.data(), raw.size() * 8) == raw.size() * 8) {
          // raw holds the lowest series first; scan from the highest down.
          for (int64_t k = n - 1; k >= 0; --k) d.series.emplace_back(raw[2 * k], raw[2 * k + 1]);
        }
      } else {
        d.repeating = true;
        const size_t m = static_cast<size_t>(-n);
        std::vector<uint32_t> raw(2 * m);
        const uint64_t from = mt - 16 - m * 8;
        if (dac_.ReadTargetMemory(mt - 16, &d.start, sizeof(d.start)) == sizeof(d.start) &&
            dac_.ReadTargetMemory(from, raw.data(), raw.size() * 4) == raw.size() * 4) {
          // Run i sits at mt-24-8*i: its pointer count in the low half, skip in the high.
          for (size_t i = 0; i < m; ++i) {
            const size_t at = 2 * (m - 1 - i);
            d.runs.emplace_back(raw[at], raw[at + 1]);
          }
        } else {
          d.runs.clear();
        }
      }
    }
    return &descs_.emplace(mt, std::move(d)).first->second;
  }

  uint64_t LoaderAllocatorOf(uint64_t mt) {
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

  void ScanPointers(uint64_t begin, uint64_t end) {
    end = std::min<uint64_t>(end, buf_.size());
    for (uint64_t off = begin; off + kPointerSize <= end; off += kPointerSize) {
      uint64_t p;
      std::memcpy(&p, buf_.data() + off, sizeof(p));
      if (p != 0) Visit(p);
    }
  }

  absl::Status Mark() {
    uint64_t steps = 0;
    while (!todo_.empty()) {
      if ((++steps & 0xfff) == 0 && cancel_ != nullptr && cancel_->cancelled()) {
        return absl::CancelledError("marking live objects");
      }
      const uint64_t obj = todo_.back();
      todo_.pop_back();
      // Dependent handles whose primary this is.
      for (auto it = std::lower_bound(dependents_.begin(), dependents_.end(),
                                      std::pair<uint64_t, uint64_t>{obj, 0});
           it != dependents_.end() && it->first == obj; ++it) {
        Visit(it->second);
      }
      uint64_t header[2] = {};
      if (dac_.core().ReadDumpedMemory(obj, header, sizeof(header)) != sizeof(header) &&
          dac_.ReadTargetMemory(obj, header, sizeof(header)) != sizeof(header)) {
        ++unreadable_;
        continue;
      }
      const uint64_t mt = header[0] & ~kMethodTableFlagBits;
      absl::StatusOr<MethodTableInfo> info = dac_.GetMethodTable(mt);
      if (!info.ok()) {
        ++unreadable_;
        continue;
      }
      if (uint64_t la = LoaderAllocatorOf(mt); la != 0) Visit(la);
      if (!info->contains_pointers) continue;
      uint64_t size = info->base_size;
      if (info->component_size != 0) {
        const uint64_t count = static_cast<uint32_t>(header[1]) + (mt == string_mt_ ? 1 : 0);
        size += count * info->component_size;
      }
      size = std::max(size, kMinObjectSize);
      const GcDesc* desc = DescOf(mt);
      if (desc->series.empty() && desc->runs.empty()) continue;
      buf_.resize(size);
      size_t got = dac_.core().ReadDumpedMemory(obj, buf_.data(), size);
      if (got < size) got = dac_.ReadTargetMemory(obj, buf_.data(), size);
      if (got <= kPointerSize) {
        ++unreadable_;
        continue;
      }
      buf_.resize(got);
      if (!desc->repeating) {
        for (auto [series_size, offset] : desc->series) {
          const int64_t stop = offset + series_size + static_cast<int64_t>(size);
          if (offset < 0 || stop <= offset) continue;
          ScanPointers(static_cast<uint64_t>(offset), static_cast<uint64_t>(stop));
        }
      } else {
        uint64_t off = static_cast<uint64_t>(std::max<int64_t>(desc->start, 0));
        while (off + kPointerSize < size) {
          const uint64_t before = off;
          for (auto [pointers, skip] : desc->runs) {
            const uint64_t run = std::max<uint64_t>(pointers, 1) * kPointerSize;
            ScanPointers(off, off + run);
            off += run + skip;
          }
          if (off <= before) break;
        }
      }
    }
    if (unreadable_ != 0) {
      set_.warnings_.push_back(
          absl::StrCat(unreadable_, " live objects could not be read to follow their references"));
    }
    return absl::OkStatus();
  }

  DacProcess& dac_;
  LiveObjectSet& set_;
  const CancellationToken* cancel_;
  uint64_t string_mt_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> dependents_;  // (primary, secondary), sorted
  std::vector<uint64_t> todo_;
  std::vector<uint8_t> buf_;
  std::unordered_map<uint64_t, GcDesc> descs_;
  std::unordered_map<uint64_t, uint64_t> loader_allocators_;
  uint64_t unreadable_ = 0;
};

int64_t LiveObjectSet::BitOf(uint64_t address) const {
  if ((address & (kPointerSize - 1)) != 0) return -1;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.start; });
  if (it == ranges_.begin()) return -1;
  --it;
  if (address >= it->end) return -1;
  return static_cast<int64_t>(it->first_bit + (address - it->start) / kPointerSize);
}

uint64_t LiveObjectSet::ContainingObject(uint64_t address) const {
  const uint64_t aligned = address & ~(kPointerSize - 1);
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), aligned,
                             [](uint64_t a, const Range& r) { return a < r.start; });
  if (it == ranges_.begin()) return 0;
  --it;
  if (aligned >= it->end) return 0;
  uint64_t bit = it->first_bit + (aligned - it->start) / kPointerSize;
  for (;;) {
    if (Test(starts_, bit)) return it->start + (bit - it->first_bit) * kPointerSize;
    if (bit == it->first_bit) return 0;
    --bit;
  }
}

bool LiveObjectSet::IsLive(uint64_t address) const {
  int64_t bit = BitOf(address);
  return bit >= 0 && Test(marks_, bit);
}

absl::StatusOr<LiveObjectSet> LiveObjectSet::Compute(DacProcess& dac,
                                                     const CancellationToken* cancel) {
  LiveObjectSet set;
  ASSIGN_OR_RETURN(std::vector<HeapSegment> segments, dac.GetHeapSegments());
  std::sort(segments.begin(), segments.end(),
            [](const HeapSegment& a, const HeapSegment& b) { return a.start < b.start; });
  uint64_t bits = 0;
  for (const HeapSegment& seg : segments) {
    if (seg.end <= seg.start) continue;
    if (!set.ranges_.empty() && seg.start < set.ranges_.back().end) continue;  // overlap
    const uint64_t start = seg.start & ~(kPointerSize - 1);
    set.ranges_.push_back({start, seg.end, bits});
    bits += (seg.end - start + kPointerSize - 1) / kPointerSize;
  }
  set.starts_.assign((bits + 63) / 64, 0);
  set.marks_.assign((bits + 63) / 64, 0);
  ASSIGN_OR_RETURN(HeapWalkSummary walk, WalkHeap(
                                             dac,
                                             [&](const HeapObject& o) {
                                               int64_t bit = set.BitOf(o.address);
                                               if (bit >= 0) {
                                                 set.starts_[bit >> 6] |= uint64_t{1} << (bit & 63);
                                               }
                                               return true;
                                             },
                                             cancel));
  (void)walk;
  LiveMarker marker(dac, set, cancel);
  RETURN_IF_ERROR(marker.Run());
  return set;
}

}  // namespace clrdiag::dac
