#include "core/dac/gc_layout.h"

#include <algorithm>
#include <iterator>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace clrdiag::dac {

// DAC interfaces only this file calls (sospriv.idl ISOSDacInterface16 and 3, under names of
// their own). Not in an anonymous namespace: the compiler would then
// know every class deriving from them and devirtualize the calls into pure-virtual traps.
// DATAS (.NET 8+), sospriv.idl's ISOSDacInterface16.
inline constexpr IID kIID_GcLayoutSosDac16 = ParseGuid("4ba12ff8-daac-4e43-ac56-98cf8d5c595d");
class GcLayoutSosDac16 : public IUnknown {
 public:
  virtual HRESULT GetGCDynamicAdaptationMode(int32_t* mode) = 0;  // 3
};

// dumpgcdata's counters (dacprivate.h GcLayoutInterestingInfo).
inline constexpr IID kIID_GcLayoutSosDac3 = ParseGuid("B08C5CDC-FD8A-49C5-AB38-5FEEF35235B4");
struct GcLayoutInterestingInfo {
  uint64_t data_points[9];
  uint64_t compact_reasons[11];
  uint64_t expand_mechanisms[6];
  uint64_t bit_mechanisms[2];
  uint64_t global_mechanisms[6];
};
static_assert(sizeof(GcLayoutInterestingInfo) == 34 * 8);
class GcLayoutSosDac3 : public IUnknown {
 public:
  virtual HRESULT GetGCInterestingInfoData(CLRDATA_ADDRESS heap,
                                           GcLayoutInterestingInfo* data) = 0;        // 3
  virtual HRESULT GetGCInterestingInfoStaticData(GcLayoutInterestingInfo* data) = 0;  // 4
  virtual HRESULT GetGCGlobalMechanisms(uint64_t* mechanisms) = 0;                    // 5
};

namespace {

constexpr uint32_t kMaxGenerationEntries = 5;  // gen0-2, LOH, POH
constexpr uint32_t kMaxServerHeaps = 4096;
constexpr uint64_t kPageMask = 0xfff;
constexpr uint64_t kSmallObjectLimit = 85000;  // LOH threshold: no bigger object elsewhere
constexpr uint64_t kLargeObjectLimit = 0x7fffffff;
// Segments in one chain beyond this mean a corrupt (cyclic) list.
constexpr size_t kMaxSegmentsPerChain = 1 << 20;

constexpr int kGen0 = 0, kGen1 = 1, kGen2 = 2, kLoh = 3, kPoh = 4;

}  // namespace

absl::StatusOr<std::vector<GcHeapRaw>> DacProcess::GetGcHeapsRaw() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpGcHeapData gc{};
  HRESULT hr = sos_->GetGCHeapData(&gc);
  if (Failed(hr)) return DacError("GetGCHeapData (is the GC heap initialised?)", hr);
  std::vector<GcHeapRaw> out;
  auto add = [&](uint64_t address, const DacpGcHeapDetails& d) {
    GcHeapRaw raw;
    raw.address = address;
    raw.details = d;
    raw.generations.assign(d.generation_table, d.generation_table + kDacNumberGenerations);
    if (sos8_) {
      std::vector<DacpGenerationData> g(kMaxGenerationEntries);
      uint32_t needed = 0;
      HRESULT h = address == 0 ? sos8_->GetGenerationTable(kMaxGenerationEntries, g.data(), &needed)
                               : sos8_->GetGenerationTableSvr(address, kMaxGenerationEntries,
                                                              g.data(), &needed);
      if (Succeeded(h) && needed >= kDacNumberGenerations && needed <= kMaxGenerationEntries) {
        g.resize(needed);
        raw.generations = std::move(g);
      }
    }
    out.push_back(std::move(raw));
  };
  if (gc.bServerMode == 0) {
    DacpGcHeapDetails d{};
    hr = sos_->GetGCHeapStaticData(&d);
    if (Failed(hr)) return DacError("GetGCHeapStaticData", hr);
    add(0, d);
    return out;
  }
  if (gc.HeapCount == 0 || gc.HeapCount > kMaxServerHeaps) {
    return absl::DataLossError(absl::StrCat("implausible server GC heap count ", gc.HeapCount));
  }
  std::vector<CLRDATA_ADDRESS> heaps(gc.HeapCount);
  uint32_t needed = 0;
  hr = sos_->GetGCHeapList(gc.HeapCount, heaps.data(), &needed);
  if (Failed(hr)) return DacError("GetGCHeapList", hr);
  for (uint32_t i = 0; i < gc.HeapCount; ++i) {
    DacpGcHeapDetails d{};
    hr = sos_->GetGCHeapDetails(heaps[i], &d);
    if (Failed(hr)) return DacError(absl::StrCat("GetGCHeapDetails(heap ", i, ")"), hr);
    add(heaps[i], d);
  }
  return out;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> DacProcess::GetInternalRootArray(
    uint64_t heap_address) {
  std::lock_guard<std::mutex> lock(DacMutex());
  // DacpGcHeapAnalyzeData (dacprivate.h).
  struct {
    CLRDATA_ADDRESS heap_address;
    CLRDATA_ADDRESS internal_root_array;
    uint64_t internal_root_array_index;
    int32_t heap_analyze_success;
  } d{};
  HRESULT hr = heap_address == 0 ? sos_->GetHeapAnalyzeStaticData(&d)
                                 : sos_->GetHeapAnalyzeData(heap_address, &d);
  if (Failed(hr)) return DacError("GetHeapAnalyzeData", hr);
  if (d.internal_root_array == 0 || d.internal_root_array_index == 0) {
    return std::pair<uint64_t, uint64_t>{0, 0};
  }
  return std::pair<uint64_t, uint64_t>{d.internal_root_array,
                                       d.internal_root_array + 8 * d.internal_root_array_index};
}

absl::StatusOr<DacpHeapSegmentData> DacProcess::GetHeapSegmentRaw(uint64_t segment) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpHeapSegmentData d{};
  HRESULT hr = sos_->GetHeapSegmentData(segment, &d);
  if (Failed(hr)) {
    return DacError(absl::StrCat("GetHeapSegmentData(0x", absl::Hex(segment), ")"), hr);
  }
  return d;
}

absl::StatusOr<int32_t> DacProcess::GetGcDynamicAdaptationMode() {
  std::lock_guard<std::mutex> lock(DacMutex());
  ComPtr<GcLayoutSosDac16> sos16;
  if (Failed(process_.As(kIID_GcLayoutSosDac16, &sos16)) || !sos16) {
    return absl::NotFoundError("the DAC has no ISOSDacInterface16");
  }
  int32_t mode = 0;
  HRESULT hr = sos16->GetGCDynamicAdaptationMode(&mode);
  if (hr != 0) return absl::NotFoundError("GetGCDynamicAdaptationMode gave no mode");
  return mode;
}

absl::StatusOr<std::vector<uint64_t>> DacProcess::GetGcInterestingInfo(uint64_t heap, bool global) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ComPtr<GcLayoutSosDac3> sos3;
  HRESULT hr = process_.As(kIID_GcLayoutSosDac3, &sos3);
  if (Failed(hr) || !sos3) return DacError("QueryInterface(ISOSDacInterface3)", hr);
  GcLayoutInterestingInfo d{};
  if (global) {
    hr = sos3->GetGCGlobalMechanisms(d.global_mechanisms);
    if (Failed(hr)) return DacError("GetGCGlobalMechanisms", hr);
    return std::vector<uint64_t>(std::begin(d.global_mechanisms), std::end(d.global_mechanisms));
  }
  hr = heap == 0 ? sos3->GetGCInterestingInfoStaticData(&d)
                 : sos3->GetGCInterestingInfoData(heap, &d);
  if (Failed(hr)) return DacError("GetGCInterestingInfoData", hr);
  std::vector<uint64_t> out;
  out.insert(out.end(), std::begin(d.data_points), std::end(d.data_points));
  out.insert(out.end(), std::begin(d.compact_reasons), std::end(d.compact_reasons));
  out.insert(out.end(), std::begin(d.expand_mechanisms), std::end(d.expand_mechanisms));
  out.insert(out.end(), std::begin(d.bit_mechanisms), std::end(d.bit_mechanisms));
  return out;
}

GcGeneration GenerationOfKind(SegmentKind kind) {
  switch (kind) {
    case SegmentKind::kGen0:
      return GcGeneration::kGen0;
    case SegmentKind::kGen1:
      return GcGeneration::kGen1;
    case SegmentKind::kGen2:
      return GcGeneration::kGen2;
    case SegmentKind::kLarge:
      return GcGeneration::kLarge;
    case SegmentKind::kPinned:
      return GcGeneration::kPinned;
    case SegmentKind::kFrozen:
      return GcGeneration::kFrozen;
    case SegmentKind::kEphemeral:
      break;
  }
  return GcGeneration::kUnknown;
}

GcGeneration GcSegment::GenerationOf(uint64_t address) const {
  if (kind != SegmentKind::kEphemeral) return GenerationOfKind(kind);
  if (gen[0].Contains(address)) return GcGeneration::kGen0;
  if (gen[1].Contains(address)) return GcGeneration::kGen1;
  if (gen[2].Contains(address)) return GcGeneration::kGen2;
  return GcGeneration::kUnknown;
}

uint64_t GcSegment::MaxObjectSize() const {
  switch (kind) {
    case SegmentKind::kFrozen:
    case SegmentKind::kPinned:
    case SegmentKind::kLarge:
      return kLargeObjectLimit;
    default:
      return kSmallObjectLimit;
  }
}

const GcSegment* GcLayout::FindByObjectRange(uint64_t address) const {
  auto it = std::upper_bound(sorted.begin(), sorted.end(), address,
                             [](uint64_t a, const GcSegment* s) { return a < s->objects.start; });
  if (it == sorted.begin()) return nullptr;
  const GcSegment* s = *std::prev(it);
  return s->objects.Contains(address) ? s : nullptr;
}

absl::StatusOr<std::unique_ptr<GcLayout>> ReadGcLayout(DacProcess& dac) {
  ASSIGN_OR_RETURN(GcHeapSummary summary, dac.GetGcHeapSummary());
  ASSIGN_OR_RETURN(std::vector<GcHeapRaw> raws, dac.GetGcHeapsRaw());
  auto layout = std::make_unique<GcLayout>();
  layout->server = summary.server;
  layout->structures_valid = summary.structures_valid;
  layout->max_generation = summary.max_generation;
  if (absl::StatusOr<int32_t> mode = dac.GetGcDynamicAdaptationMode(); mode.ok()) {
    layout->has_datas = true;
    layout->datas_mode = *mode;
  }
  for (size_t i = 0; i < raws.size(); ++i) {
    const GcHeapRaw& raw = raws[i];
    const DacpGcHeapDetails& d = raw.details;
    GcSubHeap heap;
    heap.index = static_cast<int>(i);
    heap.address = raw.address;
    for (const DacpGenerationData& g : raw.generations) {
      heap.generations.push_back(
          {g.start_segment, g.allocation_start, g.allocContextPtr, g.allocContextLimit});
    }
    heap.regions = heap.generations.size() >= 2 &&
                   heap.generations[kGen0].start_segment != heap.generations[kGen1].start_segment;
    heap.alloc_allocated = d.alloc_allocated;
    heap.ephemeral_segment = d.ephemeral_heap_segment;
    heap.mark_array = d.mark_array;
    heap.gc_state = d.current_c_gc_state;
    heap.next_sweep_obj = d.next_sweep_obj;
    heap.saved_sweep_ephemeral_segment = d.saved_sweep_ephemeral_seg;
    heap.saved_sweep_ephemeral_start = d.saved_sweep_ephemeral_start;
    heap.background_saved_lowest = d.background_saved_lowest_address;
    heap.background_saved_highest = d.background_saved_highest_address;

    std::unordered_set<uint64_t> seen = {0};
    auto walk = [&](int generation) {
      size_t count = 0;
      for (uint64_t a = heap.generations[generation].start_segment;
           seen.insert(a).second && count < kMaxSegmentsPerChain; ++count) {
        absl::StatusOr<DacpHeapSegmentData> sd = dac.GetHeapSegmentRaw(a);
        if (!sd.ok()) break;  // as ClrMD: an unreadable segment ends its chain
        GcSegment s;
        s.address = sd->segmentAddr;
        s.heap = heap.index;
        s.flags = sd->flags;
        s.background_allocated = sd->background_allocated;
        if (sd->flags & kHeapSegmentReadOnly) {
          s.kind = SegmentKind::kFrozen;
        } else if (generation == kLoh) {
          s.kind = SegmentKind::kLarge;
        } else if (generation == kPoh) {
          s.kind = SegmentKind::kPinned;
        } else if (heap.regions) {
          s.kind = generation == kGen0   ? SegmentKind::kGen0
                   : generation == kGen1 ? SegmentKind::kGen1
                                         : SegmentKind::kGen2;
        } else {
          s.kind = a == heap.ephemeral_segment ? SegmentKind::kEphemeral : SegmentKind::kGen2;
        }
        s.objects = {sd->mem, a == heap.ephemeral_segment ? heap.alloc_allocated : sd->allocated};
        uint64_t committed_start;
        if (s.kind == SegmentKind::kFrozen) {
          committed_start = s.objects.start - 8;
        } else if ((s.objects.start & 0x1fff) == 0x1000) {
          committed_start = s.objects.start - 0x1000;
        } else {
          committed_start = s.objects.start & ~kPageMask;
        }
        s.committed = {committed_start, sd->committed};
        s.reserved = {sd->committed, sd->reserved};
        if (heap.regions) {
          s.gen[generation == kGen0 ? 0 : generation == kGen1 ? 1 : 2] = s.objects;
        } else if (s.kind == SegmentKind::kEphemeral) {
          s.gen[0] = {heap.generations[kGen0].allocation_start, s.objects.end};
          s.gen[1] = {heap.generations[kGen1].allocation_start, s.gen[0].start};
          s.gen[2] = {s.objects.start, s.gen[1].start};
        } else {
          s.gen[2] = s.objects;
        }
        heap.segments.push_back(s);
        a = sd->next;
      }
    };
    walk(kLoh);
    walk(kGen2);
    if (heap.regions) {
      walk(kGen1);
      walk(kGen0);
    }
    if (heap.generations.size() > static_cast<size_t>(kPoh)) walk(kPoh);
    layout->heaps.push_back(std::move(heap));
  }
  for (const GcSubHeap& h : layout->heaps) {
    for (const GcSegment& s : h.segments) layout->sorted.push_back(&s);
  }
  std::stable_sort(
      layout->sorted.begin(), layout->sorted.end(),
      [](const GcSegment* a, const GcSegment* b) { return a->objects.start < b->objects.start; });
  return layout;
}

}  // namespace clrdiag::dac
