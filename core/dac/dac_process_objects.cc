// DacProcess calls behind the object commands (dumpdelegate, analyzeoom).
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {
namespace {

std::string Hex(uint64_t v) { return absl::StrCat("0x", absl::Hex(v)); }

// DacpOomData (dacprivate.h), natural alignment on a 64-bit target.
struct DacpOomData {
  int32_t reason;
  uint64_t alloc_size;
  uint64_t available_pagefile_mb;
  uint64_t gc_index;
  int32_t fgm;
  uint64_t size;
  int32_t loh_p;
};
static_assert(sizeof(DacpOomData) == 56);

OomInfo FromDac(const DacpOomData& d, int heap) {
  OomInfo o;
  o.heap = heap;
  o.reason = d.reason;
  o.get_memory_failure = d.fgm;
  o.alloc_size = d.alloc_size;
  o.available_pagefile_mb = d.available_pagefile_mb;
  o.gc_index = d.gc_index;
  o.size = d.size;
  o.large_object_heap = d.loh_p != 0;
  return o;
}

}  // namespace

absl::StatusOr<uint64_t> DacProcess::GetMethodDescFromIp(uint64_t ip) {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ADDRESS md = 0;
  HRESULT hr = sos_->GetMethodDescPtrFromIP(ip, &md);
  if (hr != kS_OK) return DacError(absl::StrCat("GetMethodDescPtrFromIP(", Hex(ip), ")"), hr);
  return md;
}

absl::StatusOr<std::vector<OomInfo>> DacProcess::GetOomInfo() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpGcHeapData gc{};
  HRESULT hr = sos_->GetGCHeapData(&gc);
  if (Failed(hr)) return DacError("GetGCHeapData (is the GC heap initialised?)", hr);
  std::vector<OomInfo> out;
  if (gc.bServerMode == 0) {
    DacpOomData d{};
    hr = sos_->GetOOMStaticData(&d);
    if (Failed(hr)) return DacError("GetOOMStaticData", hr);
    out.push_back(FromDac(d, 0));
    return out;
  }
  constexpr uint32_t kMaxHeaps = 1024;
  if (gc.HeapCount == 0 || gc.HeapCount > kMaxHeaps) {
    return absl::DataLossError(absl::StrCat("implausible GC heap count ", gc.HeapCount));
  }
  std::vector<CLRDATA_ADDRESS> heaps(gc.HeapCount);
  uint32_t needed = 0;
  hr = sos_->GetGCHeapList(gc.HeapCount, heaps.data(), &needed);
  if (Failed(hr)) return DacError("GetGCHeapList", hr);
  for (size_t i = 0; i < heaps.size(); ++i) {
    DacpOomData d{};
    hr = sos_->GetOOMData(heaps[i], &d);
    if (Failed(hr)) return DacError(absl::StrCat("GetOOMData(", Hex(heaps[i]), ")"), hr);
    out.push_back(FromDac(d, static_cast<int>(i)));
  }
  return out;
}

}  // namespace clrdiag::dac
