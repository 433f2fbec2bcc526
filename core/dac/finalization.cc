// The finalize queue's fill pointers and the finalizer thread's cleanup lists (finalizequeue).
#include <cstring>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/dac/dac_library.h"
#include "core/dac/dac_process.h"
#include "core/dac/sos_dac.h"

namespace clrdiag::dac {
namespace {

// DacpSyncBlockCleanupData (dacprivate.h).
struct DacpSyncBlockCleanupData {
  CLRDATA_ADDRESS SyncBlockPointer;
  CLRDATA_ADDRESS nextSyncBlock;
  CLRDATA_ADDRESS blockRCW;
  CLRDATA_ADDRESS blockClassFactory;
  CLRDATA_ADDRESS blockCCW;
};

// VISITRCWFORCLEANUP: called once per RCW of the cleanup list.
BOOL VisitRcw(CLRDATA_ADDRESS rcw, CLRDATA_ADDRESS context, CLRDATA_ADDRESS thread,
              BOOL free_threaded, void* token) {
  static_cast<std::vector<RcwCleanup>*>(token)->push_back(
      {rcw, context, thread, free_threaded != 0});
  return 1;
}

}  // namespace

absl::StatusOr<std::vector<std::vector<uint64_t>>> DacProcess::GetFinalizationFillPointers() {
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
  std::vector<std::vector<uint64_t>> out;
  for (CLRDATA_ADDRESS heap : heaps) {
    CLRDATA_ADDRESS fp[16] = {};
    uint32_t n = 0;
    if (sos8_) {
      hr = gc.bServerMode != 0 ? sos8_->GetFinalizationFillPointersSvr(heap, 16, fp, &n)
                               : sos8_->GetFinalizationFillPointers(16, fp, &n);
      if (Failed(hr) || n > 16) n = 0;
    }
    if (n == 0) {
      // Runtimes without ISOSDacInterface8 have segments: the first 6 of the heap details.
      DacpGcHeapDetails d{};
      hr = gc.bServerMode != 0 ? sos_->GetGCHeapDetails(heap, &d) : sos_->GetGCHeapStaticData(&d);
      if (Failed(hr)) return DacError("GetGCHeapDetails", hr);
      std::memcpy(fp, d.finalization_fill_pointers, 6 * sizeof(CLRDATA_ADDRESS));
      n = 6;
    }
    out.emplace_back(fp, fp + n);
  }
  return out;
}

absl::StatusOr<std::vector<SyncBlockCleanup>> DacProcess::GetSyncBlockCleanupList() {
  std::lock_guard<std::mutex> lock(DacMutex());
  std::vector<SyncBlockCleanup> out;
  std::unordered_set<uint64_t> seen{0};
  uint64_t next = 0;
  for (;;) {
    DacpSyncBlockCleanupData d{};
    HRESULT hr = sos_->GetSyncBlockCleanupData(next, &d);
    if (Failed(hr) && !(hr == kE_INVALIDARG && next == 0)) break;
    out.push_back({d.SyncBlockPointer, d.blockRCW, d.blockCCW, d.blockClassFactory});
    if (!seen.insert(d.nextSyncBlock).second || out.size() > 1000000) break;
    next = d.nextSyncBlock;
  }
  return out;
}

std::vector<RcwCleanup> DacProcess::GetRcwCleanupList() {
  std::lock_guard<std::mutex> lock(DacMutex());
  std::vector<RcwCleanup> out;
  using Visit = BOOL (*)(CLRDATA_ADDRESS, CLRDATA_ADDRESS, CLRDATA_ADDRESS, BOOL, void*);
  Visit visit = &VisitRcw;
  HRESULT hr = sos_->TraverseRCWCleanupList(0, reinterpret_cast<void*>(visit), &out);
  if (Failed(hr)) out.clear();
  return out;
}

}  // namespace clrdiag::dac
