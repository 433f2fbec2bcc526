#include "core/dac/dac_process.h"

#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/dac_string.h"

namespace clrdiag::dac {
namespace {

// Generation indices in the GC's generation table.
constexpr int kGen0 = 0, kGen1 = 1, kGen2 = 2, kLohGeneration = 3, kPohGeneration = 4;
// Generations the DAC can report (gen0-2, LOH, POH).
constexpr uint32_t kMaxGenerations = 5;
// Guards against a corrupt dump turning a list walk into an endless loop.
constexpr int kMaxThreads = 1 << 20;
constexpr int kMaxServerHeaps = 4096;
constexpr int32_t kMaxAppDomains = 64;
constexpr int32_t kMaxAssemblies = 1 << 20;
constexpr uint32_t kMaxModulesPerAssembly = 1024;

const char* HResultMeaning(HRESULT hr) {
  switch (static_cast<uint32_t>(hr)) {
    case 0x80131C30:
      return "the DAC is for another platform than the dump";
    case 0x80131C49:
      return "the DAC could not read target memory the dump should hold";
    case 0x80131C4E:
      return "the runtime was not initialised yet when the dump was taken";
    case 0x80131C4F:
      return "the runtime's g_dacTable export could not be read: the dump is incomplete or "
             "was taken incorrectly";
    default:
      return nullptr;
  }
}

}  // namespace

absl::Status DacError(std::string_view call, HRESULT hr) {
  const char* meaning = HResultMeaning(hr);
  return absl::InternalError(absl::StrCat(absl::string_view(call.data(), call.size()),
                                          " failed: ", HResultToString(hr),
                                          meaning ? absl::StrCat(": ", meaning) : ""));
}

const char* SegmentKindName(SegmentKind kind) {
  switch (kind) {
    case SegmentKind::kGen0:
      return "gen0";
    case SegmentKind::kGen1:
      return "gen1";
    case SegmentKind::kGen2:
      return "gen2";
    case SegmentKind::kEphemeral:
      return "ephemeral";
    case SegmentKind::kLarge:
      return "LOH";
    case SegmentKind::kPinned:
      return "POH";
    case SegmentKind::kFrozen:
      return "frozen";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<DacProcess>> DacProcess::Open(
    std::shared_ptr<const elf::CoreFile> core, Options options) {
  DacLoader loader = options.loader ? options.loader : LoadDacLibrary;
  ASSIGN_OR_RETURN(DacLibrary lib, loader(options.dac_path));

  std::unique_ptr<DacProcess> p(new DacProcess());
  p->core_ = core;
  p->target_ = MakeCoreDataTarget(core, std::move(options.target));

  std::lock_guard<std::mutex> lock(DacMutex());
  HRESULT hr = lib.create_instance(&kIID_IXCLRDataProcess, p->target_.get(), p->process_.PutVoid());
  if (Failed(hr) || !p->process_) {
    return DacError(absl::StrCat("CLRDataCreateInstance (", lib.path, ")"), hr);
  }
  hr = p->process_.As(kIID_ISOSDacInterface, &p->sos_);
  if (Failed(hr)) return DacError("QueryInterface(ISOSDacInterface)", hr);
  (void)p->process_.As(kIID_ISOSDacInterface8, &p->sos8_);
  (void)p->process_.As(kIID_ISOSDacInterface12, &p->sos12_);
  (void)p->process_.As(kIID_ISOSDacInterface6, &p->sos6_);
  (void)p->process_.As(kIID_ISOSDacInterface10, &p->sos10_);
  (void)p->process_.As(kIID_ISOSDacInterface11, &p->sos11_);
  (void)p->process_.As(kIID_ISOSDacInterface14, &p->sos14_);
  (void)p->process_.As(kIID_ISOSDacInterface15, &p->sos15_);
  (void)p->process_.As(kIID_ISOSDacInterface5, &p->sos5_);
  (void)p->process_.As(kIID_ISOSDacInterface7, &p->sos7_);

  ULONG32 revision = 0;
  if (Succeeded(p->process_->Request(kClrDataRequestRevision, 0, nullptr, sizeof(revision),
                                     reinterpret_cast<BYTE*>(&revision)))) {
    p->revision_ = revision;
  }
  DacpThreadStoreData ts{};
  hr = p->sos_->GetThreadStoreData(&ts);
  if (Failed(hr)) return DacError("GetThreadStoreData", hr);
  return p;
}

DacProcess::~DacProcess() {
  // Interfaces from the DAC are released under its lock; the target goes last.
  std::lock_guard<std::mutex> lock(DacMutex());
  metadata_cache_.clear();
  sos15_.Reset();
  sos7_.Reset();
  sos5_.Reset();
  sos14_.Reset();
  sos11_.Reset();
  sos10_.Reset();
  sos6_.Reset();
  sos12_.Reset();
  sos8_.Reset();
  sos_.Reset();
  process_.Reset();
  target_.Reset();
}

absl::StatusOr<ThreadStore> DacProcess::GetThreadStore() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpThreadStoreData ts{};
  HRESULT hr = sos_->GetThreadStoreData(&ts);
  if (Failed(hr)) return DacError("GetThreadStoreData", hr);
  ThreadStore out;
  out.thread_count = ts.threadCount;
  out.unstarted_count = ts.unstartedThreadCount;
  out.background_count = ts.backgroundThreadCount;
  out.pending_count = ts.pendingThreadCount;
  out.dead_count = ts.deadThreadCount;
  std::unordered_set<uint64_t> seen;
  for (CLRDATA_ADDRESS t = ts.firstThread; t != 0 && seen.insert(t).second;) {
    if (seen.size() > static_cast<size_t>(kMaxThreads))
      return absl::DataLossError("thread list does not end");
    DacpThreadData d{};
    hr = sos_->GetThreadData(t, &d);
    if (Failed(hr)) return DacError(absl::StrCat("GetThreadData(0x", absl::Hex(t), ")"), hr);
    ManagedThread m;
    m.address = t;
    m.managed_id = d.corThreadId;
    m.os_id = d.osThreadId;
    m.state = static_cast<uint32_t>(d.state);
    m.preemptive = d.preemptiveGCDisabled == 0;
    m.alloc_ptr = d.allocContextPtr;
    m.alloc_limit = d.allocContextLimit;
    m.domain = d.domain;
    m.lock_count = static_cast<int32_t>(d.lockCount);
    m.last_thrown_handle = d.lastThrownObjectHandle;
    m.first_nested_exception = d.firstNestedException;
    m.is_finalizer = t == ts.finalizerThread;
    m.is_gc = t == ts.gcThread;
    out.threads.push_back(m);
    t = d.nextThread;
  }
  return out;
}

absl::StatusOr<GcHeapSummary> DacProcess::GetGcHeapSummary() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpGcHeapData d{};
  HRESULT hr = sos_->GetGCHeapData(&d);
  if (Failed(hr)) return DacError("GetGCHeapData (is the GC heap initialised?)", hr);
  GcHeapSummary s;
  s.server = d.bServerMode != 0;
  s.structures_valid = d.bGcStructuresValid != 0;
  s.heap_count = d.HeapCount;
  s.max_generation = d.g_max_generation;
  DacpGcHeapDetails details{};
  if (!s.server && Succeeded(sos_->GetGCHeapStaticData(&details))) {
    s.regions = details.generation_table[kGen0].start_segment !=
                details.generation_table[kGen1].start_segment;
  } else if (s.server && s.heap_count > 0 && s.heap_count <= kMaxServerHeaps) {
    std::vector<CLRDATA_ADDRESS> heaps(s.heap_count);
    uint32_t needed = 0;
    if (Succeeded(sos_->GetGCHeapList(s.heap_count, heaps.data(), &needed)) && heaps[0] != 0 &&
        Succeeded(sos_->GetGCHeapDetails(heaps[0], &details))) {
      s.regions = details.generation_table[kGen0].start_segment !=
                  details.generation_table[kGen1].start_segment;
    }
  }
  return s;
}

absl::StatusOr<UsefulGlobals> DacProcess::GetUsefulGlobals() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpUsefulGlobalsData g{};
  HRESULT hr = sos_->GetUsefulGlobals(&g);
  if (Failed(hr)) return DacError("GetUsefulGlobals", hr);
  return UsefulGlobals{g.ArrayMethodTable, g.StringMethodTable, g.ObjectMethodTable,
                       g.ExceptionMethodTable, g.FreeMethodTable};
}

absl::StatusOr<std::vector<HeapSegment>> DacProcess::GetHeapSegments() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpGcHeapData gc{};
  HRESULT hr = sos_->GetGCHeapData(&gc);
  if (Failed(hr)) return DacError("GetGCHeapData (is the GC heap initialised?)", hr);
  std::vector<HeapSegment> all;
  if (gc.bServerMode == 0) {
    DacpGcHeapDetails details{};
    hr = sos_->GetGCHeapStaticData(&details);
    if (Failed(hr)) return DacError("GetGCHeapStaticData", hr);
    ASSIGN_OR_RETURN(all, SegmentsOfHeapLocked(0, details, 0));
    return all;
  }
  if (gc.HeapCount == 0 || gc.HeapCount > kMaxServerHeaps) {
    return absl::DataLossError(absl::StrCat("implausible server GC heap count ", gc.HeapCount));
  }
  std::vector<CLRDATA_ADDRESS> heaps(gc.HeapCount);
  uint32_t needed = 0;
  hr = sos_->GetGCHeapList(gc.HeapCount, heaps.data(), &needed);
  if (Failed(hr)) return DacError("GetGCHeapList", hr);
  for (uint32_t i = 0; i < gc.HeapCount; ++i) {
    DacpGcHeapDetails details{};
    hr = sos_->GetGCHeapDetails(heaps[i], &details);
    if (Failed(hr)) return DacError(absl::StrCat("GetGCHeapDetails(heap ", i, ")"), hr);
    ASSIGN_OR_RETURN(auto segs, SegmentsOfHeapLocked(static_cast<int>(i), details, heaps[i]));
    all.insert(all.end(), segs.begin(), segs.end());
  }
  return all;
}

absl::StatusOr<std::vector<HeapSegment>> DacProcess::SegmentsOfHeapLocked(
    int heap_index, const DacpGcHeapDetails& details, uint64_t heap_addr) {
  // The 5-entry generation table (with POH) when the DAC offers it; else the 4 in details.
  std::vector<DacpGenerationData> gens(details.generation_table,
                                       details.generation_table + kDacNumberGenerations);
  if (sos8_) {
    std::vector<DacpGenerationData> g8(kMaxGenerations);
    uint32_t needed = 0;
    HRESULT hr = heap_addr == 0
                     ? sos8_->GetGenerationTable(kMaxGenerations, g8.data(), &needed)
                     : sos8_->GetGenerationTableSvr(heap_addr, kMaxGenerations, g8.data(), &needed);
    if (Succeeded(hr) && needed >= kDacNumberGenerations && needed <= kMaxGenerations) {
      g8.resize(needed);
      gens = std::move(g8);
    }
  }
  const bool regions = gens[kGen0].start_segment != gens[kGen1].start_segment;

  std::vector<HeapSegment> out;
  std::unordered_set<uint64_t> seen = {0};
  auto walk = [&](int generation) -> absl::Status {
    for (uint64_t seg = gens[generation].start_segment; seen.insert(seg).second;) {
      DacpHeapSegmentData d{};
      HRESULT hr = sos_->GetHeapSegmentData(seg, &d);
      if (Failed(hr)) {
        return DacError(absl::StrCat("GetHeapSegmentData(0x", absl::Hex(seg), ")"), hr);
      }
      HeapSegment s;
      s.address = seg;
      s.heap = heap_index;
      s.start = d.mem;
      // The segment the allocator is filling ends at the heap's alloc_allocated.
      s.end = seg == details.ephemeral_heap_segment ? details.alloc_allocated : d.allocated;
      s.committed = d.committed;
      s.reserved = d.reserved;
      if (d.flags & kHeapSegmentReadOnly) {
        s.kind = SegmentKind::kFrozen;
      } else if (generation == kLohGeneration) {
        s.kind = SegmentKind::kLarge;
      } else if (generation == kPohGeneration) {
        s.kind = SegmentKind::kPinned;
      } else if (regions) {
        s.kind = generation == kGen0   ? SegmentKind::kGen0
                 : generation == kGen1 ? SegmentKind::kGen1
                                       : SegmentKind::kGen2;
      } else {
        s.kind =
            seg == details.ephemeral_heap_segment ? SegmentKind::kEphemeral : SegmentKind::kGen2;
      }
      out.push_back(s);
      seg = d.next;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(walk(kLohGeneration));
  RETURN_IF_ERROR(walk(kGen2));
  if (regions) {
    RETURN_IF_ERROR(walk(kGen1));
    RETURN_IF_ERROR(walk(kGen0));
  }
  if (gens.size() > static_cast<size_t>(kPohGeneration)) RETURN_IF_ERROR(walk(kPohGeneration));
  return out;
}

absl::StatusOr<std::unordered_map<uint64_t, uint64_t>> DacProcess::GetAllocationContexts() {
  std::unordered_map<uint64_t, uint64_t> out;
  ASSIGN_OR_RETURN(ThreadStore ts, GetThreadStore());
  for (const ManagedThread& t : ts.threads) {
    if (t.alloc_ptr != 0 && t.alloc_ptr < t.alloc_limit) out[t.alloc_ptr] = t.alloc_limit;
  }
  std::lock_guard<std::mutex> lock(DacMutex());
  if (sos12_) {
    CLRDATA_ADDRESS ptr = 0, limit = 0;
    if (Succeeded(sos12_->GetGlobalAllocationContext(&ptr, &limit)) && ptr != 0 && ptr < limit) {
      out[ptr] = limit;
    }
  }
  DacpGcHeapData gc{};
  if (Failed(sos_->GetGCHeapData(&gc))) return out;
  auto add_gen0 = [&](const DacpGcHeapDetails& d) {
    const DacpGenerationData& g0 = d.generation_table[kGen0];
    if (g0.allocContextPtr != 0 && g0.allocContextPtr < g0.allocContextLimit) {
      out[g0.allocContextPtr] = g0.allocContextLimit;
    }
  };
  if (gc.bServerMode == 0) {
    DacpGcHeapDetails d{};
    if (Succeeded(sos_->GetGCHeapStaticData(&d))) add_gen0(d);
  } else if (gc.HeapCount <= kMaxServerHeaps) {
    std::vector<CLRDATA_ADDRESS> heaps(gc.HeapCount);
    uint32_t needed = 0;
    if (Succeeded(sos_->GetGCHeapList(gc.HeapCount, heaps.data(), &needed))) {
      for (CLRDATA_ADDRESS h : heaps) {
        DacpGcHeapDetails d{};
        if (Succeeded(sos_->GetGCHeapDetails(h, &d))) add_gen0(d);
      }
    }
  }
  return out;
}

absl::StatusOr<MethodTableInfo> DacProcess::GetMethodTable(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (auto it = mt_cache_.find(mt); it != mt_cache_.end()) return it->second;
  DacpMethodTableData d{};
  HRESULT hr = sos_->GetMethodTableData(mt, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableData(0x", absl::Hex(mt), ")"), hr);
  MethodTableInfo info;
  info.base_size = d.BaseSize;
  info.component_size = d.ComponentSize;
  info.is_free = d.bIsFree != 0;
  info.contains_pointers = d.bContainsPointers != 0;
  info.parent = d.ParentMethodTable;
  info.module = d.Module;
  info.token = d.cl;
  mt_cache_.emplace(mt, info);
  return info;
}

template <typename Call>
absl::StatusOr<std::string> DacProcess::GetStringLocked(std::string_view what, Call call) {
  return ReadDacString(what, call);
}

absl::StatusOr<std::string> DacProcess::GetMethodTableName(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (auto it = name_cache_.find(mt); it != name_cache_.end()) return it->second;
  ASSIGN_OR_RETURN(std::string name,
                   GetStringLocked(absl::StrCat("GetMethodTableName(0x", absl::Hex(mt), ")"),
                                   [&](uint32_t n, WCHAR* buf, uint32_t* needed) {
                                     return sos_->GetMethodTableName(mt, n, buf, needed);
                                   }));
  name_cache_.emplace(mt, name);
  return name;
}

bool DacProcess::LooksLikeMethodDesc(uint64_t md) {
  constexpr uint64_t kSmallestPointer = 0x10000;
  constexpr uint64_t kChunkIndexOffset = 2, kChunkHeaderSize = 0x18, kAlignment = 8;
  if (md < kSmallestPointer || md % kAlignment != 0) return false;
  uint8_t index = 0;
  if (ReadTargetMemory(md + kChunkIndexOffset, &index, 1) != 1) return false;
  const uint64_t chunk = md - kChunkHeaderSize - uint64_t{index} * kAlignment;
  uint64_t mt = 0;
  if (ReadTargetMemory(chunk, &mt, sizeof(mt)) != sizeof(mt)) return false;
  return LooksLikeMethodTable(mt);
}

absl::StatusOr<ObjectInfo> DacProcess::GetObject(uint64_t address) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpObjectData d{};
  HRESULT hr = sos_->GetObjectData(address, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetObjectData(0x", absl::Hex(address), ")"), hr);
  return ObjectInfo{d.MethodTable, d.Size, d.ObjectType, d.dwNumComponents, d.dwComponentSize};
}

bool DacProcess::LooksLikeMethodTable(uint64_t mt) {
  constexpr uint64_t kSmallestPointer = 0x10000;
  constexpr uint64_t kParentOffset = 0x10;
  constexpr uint64_t kLoaderModuleOffset = 0x18;
  if (mt < kSmallestPointer || mt % 8 != 0) return false;
  uint64_t parent = 0, module = 0, probe = 0;
  if (ReadTargetMemory(mt + kParentOffset, &parent, sizeof(parent)) != sizeof(parent) ||
      ReadTargetMemory(mt + kLoaderModuleOffset, &module, sizeof(module)) != sizeof(module)) {
    return false;
  }
  if (parent != 0 && (parent < kSmallestPointer ||
                      ReadTargetMemory(parent, &probe, sizeof(probe)) != sizeof(probe))) {
    return false;
  }
  std::shared_ptr<const std::unordered_set<uint64_t>> modules;
  {
    std::lock_guard<std::mutex> lock(DacMutex());
    modules = module_set_;
  }
  if (!modules) {
    auto list = GetModules();      // takes the DAC lock itself
    if (!list.ok()) return false;  // not kept: asked again next time
    auto set = std::make_shared<std::unordered_set<uint64_t>>();
    for (const ManagedModule& m : *list) set->insert(m.address);
    std::lock_guard<std::mutex> lock(DacMutex());
    if (!module_set_) module_set_ = std::move(set);
    modules = module_set_;
  }
  return modules->contains(module);
}

absl::StatusOr<std::vector<ManagedModule>> DacProcess::GetModules() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpAppDomainStoreData store{};
  HRESULT hr = sos_->GetAppDomainStoreData(&store);
  if (Failed(hr)) return DacError("GetAppDomainStoreData", hr);
  if (store.DomainCount < 0 || store.DomainCount > kMaxAppDomains) {
    return absl::DataLossError(absl::StrCat("implausible app domain count ", store.DomainCount));
  }
  std::vector<CLRDATA_ADDRESS> domains(static_cast<size_t>(store.DomainCount));
  if (!domains.empty()) {
    uint32_t needed = 0;
    hr = sos_->GetAppDomainList(static_cast<uint32_t>(domains.size()), domains.data(), &needed);
    if (Failed(hr)) return DacError("GetAppDomainList", hr);
  }
  std::vector<ManagedModule> out;
  for (CLRDATA_ADDRESS domain : domains) {
    int32_t count = 0;
    hr = sos_->GetAssemblyList(domain, 0, nullptr, &count);
    if (Failed(hr)) return DacError("GetAssemblyList", hr);
    if (count < 0 || count > kMaxAssemblies) {
      return absl::DataLossError(absl::StrCat("implausible assembly count ", count));
    }
    std::vector<CLRDATA_ADDRESS> assemblies(static_cast<size_t>(count));
    hr = sos_->GetAssemblyList(domain, count, assemblies.data(), &count);
    if (Failed(hr)) return DacError("GetAssemblyList", hr);
    assemblies.resize(std::min<size_t>(assemblies.size(), static_cast<size_t>(count)));
    for (CLRDATA_ADDRESS assembly : assemblies) {
      DacpAssemblyData ad{};
      hr = sos_->GetAssemblyData(domain, assembly, &ad);
      if (Failed(hr)) return DacError("GetAssemblyData", hr);
      if (ad.ModuleCount == 0 || ad.ModuleCount > kMaxModulesPerAssembly) continue;
      std::vector<CLRDATA_ADDRESS> modules(ad.ModuleCount);
      uint32_t needed = 0;
      hr = sos_->GetAssemblyModuleList(assembly, ad.ModuleCount, modules.data(), &needed);
      if (Failed(hr)) return DacError("GetAssemblyModuleList", hr);
      modules.resize(std::min<size_t>(modules.size(), needed));
      for (CLRDATA_ADDRESS module : modules) {
        DacpModuleData md{};
        hr = sos_->GetModuleData(module, &md);
        if (Failed(hr)) return DacError("GetModuleData", hr);
        ManagedModule m;
        m.address = module;
        m.assembly = assembly;
        m.il_base = md.ilBase;
        m.metadata_start = md.metadataStart;
        m.metadata_size = md.metadataSize;
        m.is_dynamic = md.bIsReflection != 0;
        // .NET 9+ expects the Module address here; older runtimes the PEAssembly, which is
        // what this field holds there.
        auto file = GetStringLocked("GetPEFileName", [&](uint32_t n, WCHAR* buf, uint32_t* need) {
          return sos_->GetPEFileName(md.PEAssembly, n, buf, need);
        });
        if (file.ok()) m.file = *file;
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

absl::StatusOr<AppDomainStore> DacProcess::GetAppDomainStore() {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpAppDomainStoreData store{};
  HRESULT hr = sos_->GetAppDomainStoreData(&store);
  if (Failed(hr)) return DacError("GetAppDomainStoreData", hr);
  if (store.DomainCount < 0 || store.DomainCount > kMaxAppDomains) {
    return absl::DataLossError(absl::StrCat("implausible app domain count ", store.DomainCount));
  }
  AppDomainStore out;
  out.shared_domain = store.sharedDomain;
  out.system_domain = store.systemDomain;
  out.domains.resize(static_cast<size_t>(store.DomainCount));
  if (!out.domains.empty()) {
    uint32_t needed = 0;
    hr = sos_->GetAppDomainList(static_cast<uint32_t>(out.domains.size()), out.domains.data(),
                                &needed);
    if (Failed(hr)) return DacError("GetAppDomainList", hr);
  }
  return out;
}

absl::StatusOr<AppDomainDetails> DacProcess::GetAppDomainDetails(uint64_t domain) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpAppDomainData d{};
  HRESULT hr = sos_->GetAppDomainData(domain, &d);
  if (Failed(hr)) {
    return DacError(absl::StrCat("GetAppDomainData(0x", absl::Hex(domain), ")"), hr);
  }
  AppDomainDetails out;
  out.address = d.AppDomainPtr;
  out.security_descriptor = d.AppSecDesc;
  out.low_frequency_heap = d.pLowFrequencyHeap;
  out.high_frequency_heap = d.pHighFrequencyHeap;
  out.stub_heap = d.pStubHeap;
  out.id = d.dwId;
  out.assembly_count = d.AssemblyCount;
  out.stage = d.appDomainStage;
  // An unnamed domain answers with just the terminator, which GetStringLocked reports as an
  // error: ask once with a buffer instead.
  std::u16string buf(1024, u'\0');
  uint32_t needed = 0;
  hr = sos_->GetAppDomainName(d.AppDomainPtr, static_cast<uint32_t>(buf.size()), buf.data(),
                              &needed);
  if (Succeeded(hr)) {
    out.has_name = true;
    buf.resize(std::min<size_t>(buf.size(), needed));
    while (!buf.empty() && buf.back() == u'\0') buf.pop_back();
    out.name = Utf16ToUtf8(buf);
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> DacProcess::GetDomainAssemblies(uint64_t domain) {
  std::lock_guard<std::mutex> lock(DacMutex());
  int32_t count = 0;
  HRESULT hr = sos_->GetAssemblyList(domain, 0, nullptr, &count);
  if (Failed(hr)) return DacError("GetAssemblyList", hr);
  if (count < 0 || count > kMaxAssemblies) {
    return absl::DataLossError(absl::StrCat("implausible assembly count ", count));
  }
  std::vector<uint64_t> out(static_cast<size_t>(count));
  if (out.empty()) return out;
  hr = sos_->GetAssemblyList(domain, count, out.data(), &count);
  if (Failed(hr)) return DacError("GetAssemblyList", hr);
  out.resize(std::min<size_t>(out.size(), static_cast<size_t>(std::max(count, 0))));
  return out;
}

absl::StatusOr<AssemblyDetails> DacProcess::GetAssemblyDetails(uint64_t domain, uint64_t assembly) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpAssemblyData d{};
  HRESULT hr = sos_->GetAssemblyData(domain, assembly, &d);
  if (Failed(hr)) {
    return DacError(absl::StrCat("GetAssemblyData(0x", absl::Hex(assembly), ")"), hr);
  }
  AssemblyDetails out;
  out.address = assembly;
  out.security_descriptor = d.AssemblySecDesc;
  out.is_dynamic = d.isDynamic != 0;
  out.module_count = d.ModuleCount;
  out.parent_domain = d.ParentDomain;
  auto name = GetStringLocked("GetAssemblyName", [&](uint32_t n, WCHAR* buf, uint32_t* need) {
    return sos_->GetAssemblyName(assembly, n, buf, need);
  });
  if (name.ok()) {
    out.has_name = true;
    out.name = *name;
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> DacProcess::GetAssemblyModules(uint64_t assembly,
                                                                     uint32_t count) {
  if (count > kMaxModulesPerAssembly) {
    return absl::DataLossError(absl::StrCat("implausible module count ", count));
  }
  std::vector<uint64_t> out(count);
  if (out.empty()) return out;
  std::lock_guard<std::mutex> lock(DacMutex());
  uint32_t needed = 0;
  HRESULT hr = sos_->GetAssemblyModuleList(assembly, count, out.data(), &needed);
  if (Failed(hr)) return DacError("GetAssemblyModuleList", hr);
  if (needed != 0) out.resize(std::min<size_t>(out.size(), needed));
  return out;
}

absl::StatusOr<ModuleDetails> DacProcess::GetModuleDetails(uint64_t module) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpModuleData md{};
  HRESULT hr = sos_->GetModuleData(module, &md);
  if (Failed(hr)) return DacError(absl::StrCat("GetModuleData(0x", absl::Hex(module), ")"), hr);
  ModuleDetails out;
  out.address = md.Address ? md.Address : module;
  out.assembly = md.Assembly;
  out.pe_assembly = md.PEAssembly;
  out.il_base = md.ilBase;
  out.metadata_start = md.metadataStart;
  out.metadata_size = md.metadataSize;
  out.is_reflection = md.bIsReflection != 0;
  out.is_pe_file = md.bIsPEFile != 0;
  out.transient_flags = md.dwTransientFlags;
  out.loader_allocator = md.pLookupTableHeap;
  out.type_def_map = md.TypeDefToMethodTableMap;
  out.type_ref_map = md.TypeRefToMethodTableMap;
  out.method_def_map = md.MethodDefToDescMap;
  out.field_def_map = md.FieldDefToDescMap;
  out.member_ref_map = md.MemberRefToDescMap;
  out.file_references_map = md.FileReferencesMap;
  out.assembly_references_map = md.ManifestModuleReferencesMap;
  if (md.PEAssembly != 0) {
    CLRDATA_ADDRESS base = 0;
    if (Succeeded(sos_->GetPEFileBase(md.PEAssembly, &base))) {
      auto file = GetStringLocked("GetPEFileName", [&](uint32_t n, WCHAR* buf, uint32_t* need) {
        return sos_->GetPEFileName(md.PEAssembly, n, buf, need);
      });
      if (file.ok()) out.pe_file_name = *file;
    }
  }
  ComPtr<IUnknown> unknown;
  if (Succeeded(sos_->GetModule(module, unknown.Put())) && unknown) {
    ComPtr<IXCLRDataModule> dm;
    if (Succeeded(unknown.As(kIID_IXCLRDataModule, &dm)) && dm) {
      DacpGetModuleData gd{};
      if (Succeeded(dm->Request(kDacDataModulePrivRequestGetModuleData, 0, nullptr, sizeof(gd),
                                reinterpret_cast<BYTE*>(&gd)))) {
        out.has_image_data = true;
        out.image_dynamic = gd.IsDynamic != 0;
        out.image_in_memory = gd.IsInMemory != 0;
        out.flat_layout = gd.IsFileLayout != 0;
        out.loaded_pe_address = gd.LoadedPEAddress;
        out.loaded_pe_size = gd.LoadedPESize;
      }
      // GetFileName faults on a null buffer, so there is no size query: a fixed buffer.
      std::u16string buf(4096, u'\0');
      ULONG32 len = 0;
      if (Succeeded(dm->GetFileName(static_cast<ULONG32>(buf.size()), &len, buf.data())) &&
          len > 0) {
        buf.resize(std::min<size_t>(buf.size(), len));
        while (!buf.empty() && buf.back() == u'\0') buf.pop_back();
        out.data_file_name = Utf16ToUtf8(buf);
      }
    }
  }
  return out;
}

absl::StatusOr<uint64_t> DacProcess::GetStressLogAddress() {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ADDRESS address = 0;
  HRESULT hr = sos_->GetStressLogAddress(&address);
  if (Failed(hr)) return DacError("GetStressLogAddress", hr);
  return static_cast<uint64_t>(address);
}

size_t DacProcess::ReadTargetMemory(uint64_t address, void* buffer, size_t size) {
  std::lock_guard<std::mutex> lock(DacMutex());
  size_t got = 0;
  auto* out = static_cast<BYTE*>(buffer);
  while (got < size) {
    ULONG32 want = static_cast<ULONG32>(std::min<size_t>(size - got, 1u << 20));
    ULONG32 done = 0;
    if (Failed(target_->ReadVirtual(address + got, out + got, want, &done)) || done == 0) break;
    got += done;
    if (done < want) break;
  }
  return got;
}

}  // namespace clrdiag::dac
