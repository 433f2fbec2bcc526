// The runtime's loader heaps and code heaps as eeheap -loader lists them (ClrMD's rules: the
// loader allocator heaps through ISOSDacInterface13, code heaps through the JIT managers).
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

// sospriv.idl's ISOSDacInterface13, under a name of its own (see gc_layout.cc for why it is not
// in an anonymous namespace). Only the slots called are typed.
inline constexpr IID kIID_LoaderHeapsSosDac13 = ParseGuid("3176a8ed-597b-4f54-a71f-83695c6a8c5e");
using VisitHeapFn = void (*)(CLRDATA_ADDRESS block, size_t size, BOOL current);
class LoaderHeapsSosDac13 : public IUnknown {
 public:
  virtual HRESULT TraverseLoaderHeap(CLRDATA_ADDRESS heap, int32_t kind, VisitHeapFn visit) = 0;
  virtual HRESULT GetDomainLoaderAllocator(CLRDATA_ADDRESS domain, CLRDATA_ADDRESS* la) = 0;
  virtual HRESULT GetLoaderAllocatorHeapNames(int32_t count, const char** names,
                                              int32_t* needed) = 0;
  virtual HRESULT GetLoaderAllocatorHeaps(CLRDATA_ADDRESS la, int32_t count, CLRDATA_ADDRESS* heaps,
                                          int32_t* kinds, int32_t* needed) = 0;
};

namespace {

constexpr int32_t kMaxHeaps = 256;
constexpr uint32_t kMaxJitManagers = 64;
constexpr uint32_t kMaxCodeHeaps = 1 << 16;
constexpr uint32_t kCodeHeapLoader = 0, kCodeHeapHost = 1;
constexpr uint64_t kMaxBlockSize = 0x7fffffff;  // larger (or negative) sizes carry no size

// dacprivate.h's DacpJitManagerInfo and DacpJitCodeHeapInfo.
struct JitManagerInfo {
  CLRDATA_ADDRESS address;
  uint32_t code_type;
  CLRDATA_ADDRESS heap_list;
};
static_assert(sizeof(JitManagerInfo) == 24);
struct JitCodeHeapInfo {
  uint32_t type;
  CLRDATA_ADDRESS address;  // loader heap, or a host heap's base
  CLRDATA_ADDRESS current;  // a host heap's current address
};
static_assert(sizeof(JitCodeHeapInfo) == 24);

// The DAC's traversal callback has no context argument: blocks go to this thread's list.
thread_local std::vector<LoaderHeapBlock>* g_blocks = nullptr;

void CollectBlock(CLRDATA_ADDRESS block, size_t size, BOOL current) {
  if (g_blocks == nullptr) return;
  g_blocks->push_back({block, size > kMaxBlockSize ? 0 : size, current != 0});
}

}  // namespace

absl::StatusOr<uint64_t> DacProcess::GetDomainLoaderAllocator(uint64_t domain) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ComPtr<LoaderHeapsSosDac13> sos13;
  if (Failed(process_.As(kIID_LoaderHeapsSosDac13, &sos13)) || !sos13) {
    return absl::UnimplementedError("the DAC has no ISOSDacInterface13 (loader heaps)");
  }
  CLRDATA_ADDRESS la = 0;
  if (Failed(sos13->GetDomainLoaderAllocator(domain, &la))) return 0;
  return la;
}

absl::StatusOr<std::vector<LoaderHeap>> DacProcess::GetLoaderAllocatorHeaps(
    uint64_t loader_allocator) {
  const uint64_t la = loader_allocator;
  std::lock_guard<std::mutex> lock(DacMutex());
  ComPtr<LoaderHeapsSosDac13> sos13;
  if (Failed(process_.As(kIID_LoaderHeapsSosDac13, &sos13)) || !sos13) {
    return absl::UnimplementedError("the DAC has no ISOSDacInterface13 (loader heaps)");
  }
  int32_t names_needed = 0;
  HRESULT hr = sos13->GetLoaderAllocatorHeapNames(0, nullptr, &names_needed);
  if (names_needed <= 0 || names_needed > kMaxHeaps) return std::vector<LoaderHeap>{};
  std::vector<const char*> names(static_cast<size_t>(names_needed), nullptr);
  hr = sos13->GetLoaderAllocatorHeapNames(names_needed, names.data(), &names_needed);
  if (Failed(hr)) return DacError("GetLoaderAllocatorHeapNames", hr);
  std::vector<CLRDATA_ADDRESS> heaps(names.size());
  std::vector<int32_t> kinds(names.size());
  int32_t needed = 0;
  hr = sos13->GetLoaderAllocatorHeaps(la, static_cast<int32_t>(heaps.size()), heaps.data(),
                                      kinds.data(), &needed);
  if (Failed(hr))
    return DacError(absl::StrCat("GetLoaderAllocatorHeaps(0x", absl::Hex(la), ")"), hr);
  std::vector<LoaderHeap> out;
  for (size_t i = 0; i < heaps.size() && i < static_cast<size_t>(needed); ++i) {
    LoaderHeap h;
    h.kind = names[i] != nullptr ? names[i] : "";
    g_blocks = &h.blocks;
    hr =
        heaps[i] == 0 ? kE_INVALIDARG : sos13->TraverseLoaderHeap(heaps[i], kinds[i], CollectBlock);
    g_blocks = nullptr;
    if (Succeeded(hr) && !h.blocks.empty()) out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> DacProcess::GetJitManagers() {
  std::lock_guard<std::mutex> lock(DacMutex());
  uint32_t needed = 0;
  HRESULT hr = sos_->GetJitManagerList(0, nullptr, &needed);
  if (Failed(hr)) return DacError("GetJitManagerList", hr);
  if (needed == 0 || needed > kMaxJitManagers) return std::vector<uint64_t>{};
  std::vector<JitManagerInfo> infos(needed);
  hr = sos_->GetJitManagerList(needed, infos.data(), &needed);
  if (Failed(hr)) return DacError("GetJitManagerList", hr);
  std::vector<uint64_t> out;
  for (size_t i = 0; i < infos.size() && i < needed; ++i) out.push_back(infos[i].address);
  return out;
}

absl::StatusOr<std::vector<LoaderHeap>> DacProcess::GetCodeHeaps(uint64_t jit_manager) {
  std::lock_guard<std::mutex> lock(DacMutex());
  uint32_t needed = 0;
  HRESULT hr = sos_->GetCodeHeapList(jit_manager, 0, nullptr, &needed);
  if (Failed(hr)) return DacError("GetCodeHeapList", hr);
  if (needed == 0 || needed > kMaxCodeHeaps) return std::vector<LoaderHeap>{};
  std::vector<JitCodeHeapInfo> infos(needed);
  hr = sos_->GetCodeHeapList(jit_manager, needed, infos.data(), &needed);
  if (Failed(hr)) return DacError("GetCodeHeapList", hr);
  ComPtr<LoaderHeapsSosDac13> sos13;
  (void)process_.As(kIID_LoaderHeapsSosDac13, &sos13);
  std::vector<LoaderHeap> out;
  for (size_t i = 0; i < infos.size() && i < needed; ++i) {
    const JitCodeHeapInfo& c = infos[i];
    LoaderHeap h;
    if (c.type == kCodeHeapLoader) {
      h.kind = "LoaderCodeHeap";
      // An explicit-control loader heap has no vtable: the legacy traversal, which expects
      // one, is given the address a pointer lower (ClrMD does the same before .NET 11).
      g_blocks = &h.blocks;
      hr = sos_->TraverseLoaderHeap(c.address - 8, reinterpret_cast<void*>(&CollectBlock));
      g_blocks = nullptr;
      if (Failed(hr)) continue;
      if (h.blocks.empty()) continue;
    } else if (c.type == kCodeHeapHost) {
      h.kind = "HostCodeHeap";
      h.blocks.push_back({c.address, c.current > c.address ? c.current - c.address : 0, true});
    } else {
      h.kind = "Unknown";
      h.blocks.push_back({c.address, 0, false});
    }
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace clrdiag::dac
