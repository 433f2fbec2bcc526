// DacProcess: objects, MethodTables, fields, methods and statics (what dumpobj and dumpmt
// read). Every method holds DacMutex() for its DAC calls.
#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/dac_process.h"
#include "core/dac/dac_string.h"
#include "core/dac/metadata_import.h"

namespace clrdiag::dac {
namespace {

constexpr uint32_t kMaxSlots = 1 << 16;

std::string Hex(uint64_t v) { return absl::StrCat("0x", absl::Hex(v)); }

absl::Status Unavailable(const char* iface) {
  return absl::UnimplementedError(absl::StrCat("the DAC does not offer ", iface));
}

}  // namespace

absl::StatusOr<ObjectDetails> DacProcess::GetObjectDetails(uint64_t address) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpObjectData d{};
  HRESULT hr = sos_->GetObjectData(address, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetObjectData(", Hex(address), ")"), hr);
  ObjectDetails o;
  o.mt = d.MethodTable;
  o.kind = d.ObjectType;
  o.size = d.Size;
  o.element_type_handle = d.ElementTypeHandle;
  o.element_type = d.ElementType;
  o.rank = d.dwRank;
  o.components = d.dwNumComponents;
  o.component_size = d.dwComponentSize;
  o.array_data = d.ArrayDataPtr;
  o.rcw = d.RCW;
  o.ccw = d.CCW;
  return o;
}

absl::StatusOr<MethodTableDetails> DacProcess::GetMethodTableDetails(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpMethodTableData d{};
  HRESULT hr = sos_->GetMethodTableData(mt, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableData(", Hex(mt), ")"), hr);
  MethodTableDetails m;
  m.is_free = d.bIsFree != 0;
  m.module = d.Module;
  m.klass = d.Class;
  m.parent = d.ParentMethodTable;
  m.num_interfaces = d.wNumInterfaces;
  m.num_methods = d.wNumMethods;
  m.num_vtable_slots = d.wNumVtableSlots;
  m.num_virtuals = d.wNumVirtuals;
  m.base_size = d.BaseSize;
  m.component_size = d.ComponentSize;
  m.token = d.cl;
  m.attributes = d.dwAttrClass;
  m.is_shared = d.bIsShared != 0;
  m.is_dynamic = d.bIsDynamic != 0;
  m.contains_pointers = d.bContainsPointers != 0;
  return m;
}

absl::StatusOr<uint64_t> DacProcess::GetMethodTableForEEClass(uint64_t eeclass) {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ADDRESS mt = 0;
  HRESULT hr = sos_->GetMethodTableForEEClass(eeclass, &mt);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableForEEClass(", Hex(eeclass), ")"), hr);
  return mt;
}

absl::StatusOr<MethodTableFields> DacProcess::GetMethodTableFields(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpMethodTableFieldData d{};
  HRESULT hr = sos_->GetMethodTableFieldData(mt, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableFieldData(", Hex(mt), ")"), hr);
  return MethodTableFields{d.wNumInstanceFields, d.wNumStaticFields, d.wNumThreadStaticFields,
                           d.FirstField};
}

absl::StatusOr<FieldDescInfo> DacProcess::GetFieldDesc(uint64_t field_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpFieldDescData d{};
  HRESULT hr = sos_->GetFieldDescData(field_desc, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetFieldDescData(", Hex(field_desc), ")"), hr);
  FieldDescInfo f;
  f.address = field_desc;
  f.type = d.Type;
  f.sig_type = d.sigType;
  f.mt_of_type = d.MTOfType;
  f.module_of_type = d.ModuleOfType;
  f.token_of_type = d.TokenOfType;
  f.token = d.mb;
  f.enclosing_mt = d.MTOfEnclosingClass;
  f.offset = d.dwOffset;
  f.is_thread_local = d.bIsThreadLocal != 0;
  f.is_context_local = d.bIsContextLocal != 0;
  f.is_static = d.bIsStatic != 0;
  f.next = d.NextField;
  return f;
}

absl::StatusOr<std::string> DacProcess::GetModuleFileName(uint64_t module) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpModuleData md{};
  HRESULT hr = sos_->GetModuleData(module, &md);
  if (Failed(hr)) return DacError(absl::StrCat("GetModuleData(", Hex(module), ")"), hr);
  if (md.PEAssembly == 0) return std::string();  // A dynamic module.
  CLRDATA_ADDRESS base = 0;
  if (Succeeded(sos_->GetPEFileBase(md.PEAssembly, &base))) {
    auto name = ReadDacString("GetPEFileName", [&](uint32_t n, WCHAR* buf, uint32_t* needed) {
      return sos_->GetPEFileName(md.PEAssembly, n, buf, needed);
    });
    if (name.ok() && !name->empty()) return *name;
  }
  ComPtr<IUnknown> unknown;
  if (Failed(sos_->GetModule(md.Address, unknown.Put())) || !unknown) return std::string();
  auto* data_module = static_cast<IXCLRDataModule*>(unknown.get());
  std::u16string buf(1024, u'\0');
  ULONG32 len = 0;
  if (Failed(data_module->GetFileName(static_cast<ULONG32>(buf.size()), &len, buf.data()))) {
    return std::string();
  }
  buf.resize(std::min<size_t>(buf.size(), len));
  while (!buf.empty() && buf.back() == u'\0') buf.pop_back();
  return Utf16ToUtf8(buf);
}

absl::StatusOr<IMetaDataImport*> DacProcess::MetadataImportLocked(uint64_t module) {
  IMetaDataImport* import = nullptr;
  if (auto it = metadata_cache_.find(module); it != metadata_cache_.end()) {
    import = static_cast<IMetaDataImport*>(it->second.get());
  } else {
    ComPtr<IUnknown> data_module;
    HRESULT hr = sos_->GetModule(module, data_module.Put());
    ComPtr<IUnknown> md;
    if (Succeeded(hr) && data_module) {
      hr = data_module->QueryInterface(kIID_IMetaDataImport, md.PutVoid());
    }
    // Remember failures too: a module without metadata stays without.
    metadata_cache_[module] = Succeeded(hr) ? md : ComPtr<IUnknown>();
    if (Failed(hr)) {
      return DacError(absl::StrCat("IMetaDataImport for module ", Hex(module)), hr);
    }
    import = static_cast<IMetaDataImport*>(md.get());
  }
  if (!import) return absl::NotFoundError(absl::StrCat("module ", Hex(module), " has no metadata"));
  return import;
}

absl::Status DacProcess::WithMetadataImport(uint64_t module,
                                            absl::FunctionRef<absl::Status(IMetaDataImport*)> use) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ASSIGN_OR_RETURN(IMetaDataImport * import, MetadataImportLocked(module));
  return use(import);
}

absl::StatusOr<std::string> DacProcess::GetMetadataName(uint64_t module, uint32_t token,
                                                        bool with_type) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ASSIGN_OR_RETURN(IMetaDataImport * import, MetadataImportLocked(module));

  std::u16string buf(1024, u'\0');
  auto take = [&](ULONG len) {
    std::u16string s = buf.substr(0, std::min<size_t>(len, buf.size()));
    while (!s.empty() && s.back() == u'\0') s.pop_back();
    return s;
  };
  // A type's name; a nested type is named Outer+Inner (the chain is bounded against corrupt
  // metadata).
  auto type_name = [&](uint32_t type) -> absl::StatusOr<std::u16string> {
    std::u16string name;
    for (int depth = 0; depth < 64; ++depth) {
      ULONG len = 0;
      DWORD flags = 0;
      HRESULT hr = import->GetTypeDefProps(type, buf.data(), static_cast<ULONG>(buf.size()), &len,
                                           &flags, nullptr);
      if (hr != kS_OK) return DacError(absl::StrCat("GetTypeDefProps(", Hex(type), ")"), hr);
      std::u16string outer = take(len);  // nested types: "Outer+Inner"
      if (!name.empty()) outer.append(u"+").append(name);
      name = std::move(outer);
      if ((flags & kTdVisibilityMask) < kTdNestedPublic) return name;
      uint32_t enclosing = 0;
      hr = import->GetNestedClassProps(type, &enclosing);
      if (hr != kS_OK) return DacError(absl::StrCat("GetNestedClassProps(", Hex(type), ")"), hr);
      type = enclosing;
    }
    return absl::DataLossError("type nesting does not end");
  };
  const uint32_t kind = token & 0xff000000u;
  if (kind == kMdtTypeDef) {
    ASSIGN_OR_RETURN(std::u16string name, type_name(token));
    return Utf16ToUtf8(name);
  }
  if (kind != kMdtFieldDef && kind != kMdtMethodDef) {
    return absl::InvalidArgumentError(absl::StrCat("token ", Hex(token), " is not a definition"));
  }
  uint32_t klass = 0;
  ULONG len = 0;
  HRESULT hr =
      kind == kMdtFieldDef
          ? import->GetFieldProps(token, &klass, buf.data(), static_cast<ULONG>(buf.size()), &len,
                                  nullptr, nullptr, nullptr, nullptr, nullptr, nullptr)
          : import->GetMethodProps(token, &klass, buf.data(), static_cast<ULONG>(buf.size()), &len,
                                   nullptr, nullptr, nullptr, nullptr, nullptr);
  if (Failed(hr)) return DacError(absl::StrCat("metadata name of token ", Hex(token)), hr);
  std::u16string member = take(len);
  if (!with_type || klass == kMdTypeDefNil) return Utf16ToUtf8(member);
  ASSIGN_OR_RETURN(std::u16string owner, type_name(klass));
  return Utf16ToUtf8(owner + u"." + member);
}

absl::StatusOr<std::string> DacProcess::GetMethodDescName(uint64_t method_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  return ReadDacString(absl::StrCat("GetMethodDescName(", Hex(method_desc), ")"),
                       [&](uint32_t n, WCHAR* buf, uint32_t* needed) {
                         return sos_->GetMethodDescName(method_desc, n, buf, needed);
                       });
}

absl::StatusOr<MethodDescInfo> DacProcess::GetMethodDesc(uint64_t method_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpMethodDescData d{};
  HRESULT hr = sos_->GetMethodDescData(method_desc, 0, &d, 0, nullptr, nullptr);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodDescData(", Hex(method_desc), ")"), hr);
  MethodDescInfo m;
  m.has_native_code = d.bHasNativeCode != 0;
  m.native_code = d.NativeCodeAddr;
  m.method_table = d.MethodTablePtr;
  m.module = d.ModulePtr;
  m.token = d.MDToken;
  m.slot = d.wSlotNumber;
  return m;
}

absl::StatusOr<MethodVersions> DacProcess::GetMethodVersions(uint64_t method_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpMethodDescData d{};
  HRESULT hr = sos_->GetMethodDescData(method_desc, 0, &d, 0, nullptr, nullptr);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodDescData(", Hex(method_desc), ")"), hr);
  MethodVersions v;
  v.is_jitted = d.bHasNativeCode != 0;
  v.native_code = d.NativeCodeAddr;
  // The current ReJIT id: the first field of DacpReJitData (0 without a profiler's ReJIT).
  v.rejit_id = static_cast<uint32_t>(d.rejitDataCurrent.type);
  const auto rejit = static_cast<int32_t>(v.rejit_id);
  if (sos7_) {
    DacpReJitData2 r{};
    if (Succeeded(sos7_->GetReJITInformation(method_desc, rejit, &r))) {
      v.il_address = r.il;
      v.il_version_node = r.ilCodeVersionNodePtr;
    }
    int32_t pending = 0;
    DacpReJitData2 p{};
    if (sos7_->GetPendingReJITID(method_desc, &pending) == kS_OK &&
        Succeeded(sos7_->GetReJITInformation(method_desc, pending, &p))) {
      v.has_pending = true;
      v.pending_rejit_id = pending;
      v.pending_il_address = p.il;
      v.pending_il_version_node = p.ilCodeVersionNodePtr;
    }
  }
  if (sos5_) {
    DacpTieredVersionData tiers[32] = {};
    int32_t count = 0;
    if (Succeeded(sos5_->GetTieredVersions(method_desc, rejit, tiers, 32, &count))) {
      v.has_tiers = true;
      for (int32_t i = 0; i < count && i < 32; ++i) {
        v.tiers.push_back({tiers[i].NativeCodeAddr, tiers[i].OptimizationTier,
                           tiers[i].NativeCodeVersionNodePtr});
      }
    }
  }
  return v;
}

absl::StatusOr<CodeHeaderInfo> DacProcess::GetCodeHeader(uint64_t ip) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpCodeHeaderData d{};
  HRESULT hr = sos_->GetCodeHeaderData(ip, &d);
  if (hr != kS_OK) return DacError(absl::StrCat("GetCodeHeaderData(", Hex(ip), ")"), hr);
  CodeHeaderInfo info{d.MethodDescPtr, d.JITType, d.MethodStart};
  info.method_size = d.MethodSize;
  info.hot_region_size = d.HotRegionSize;
  info.cold_region_start = d.ColdRegionStart;
  info.cold_region_size = d.ColdRegionSize;
  info.gc_info = d.GCInfo;
  return info;
}

absl::StatusOr<std::string> DacProcess::GetJitHelperName(uint64_t address) {
  std::lock_guard<std::mutex> lock(DacMutex());
  char name[256] = {};
  uint32_t needed = 0;
  HRESULT hr = sos_->GetJitHelperFunctionName(address, sizeof(name), name, &needed);
  if (hr != kS_OK || name[0] == '\0') {
    return absl::NotFoundError(absl::StrCat("no JIT helper at ", Hex(address)));
  }
  return std::string(name);
}

absl::StatusOr<std::vector<MethodSlot>> DacProcess::GetMethodTableSlots(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos15_) {
    // .NET 8's DAC has no slot enumerator: walk the slots by index like SOS's stand-in does.
    DacpMethodTableData d{};
    HRESULT hr = sos_->GetMethodTableData(mt, &d);
    if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableData(", Hex(mt), ")"), hr);
    std::vector<MethodSlot> out;
    for (uint32_t i = 0; i < d.wNumMethods; ++i) {
      MethodSlot slot;
      slot.slot = i;
      CLRDATA_ADDRESS entry = 0;
      if (sos_->GetMethodTableSlot(mt, i, &entry) != kS_OK) {
        slot.unreadable = true;
        out.push_back(slot);
        continue;
      }
      slot.entry_point = entry;
      DacpCodeHeaderData ch{};
      if (sos_->GetCodeHeaderData(entry, &ch) == kS_OK) slot.method_desc = ch.MethodDescPtr;
      out.push_back(slot);
    }
    return out;
  }
  ComPtr<ISOSMethodEnum> e;
  HRESULT hr = sos15_->GetMethodTableSlotEnumerator(mt, e.Put());
  if (Failed(hr) || !e) {
    return DacError(absl::StrCat("GetMethodTableSlotEnumerator(", Hex(mt), ")"), hr);
  }
  std::vector<MethodSlot> out;
  for (;;) {
    SOSMethodData d{};
    uint32_t fetched = 0;
    hr = e->Next(1, &d, &fetched);
    if (Failed(hr) || fetched == 0) break;
    if (out.size() >= kMaxSlots) return absl::DataLossError("the slot list does not end");
    out.push_back(MethodSlot{d.MethodDesc, d.Entrypoint, d.DefiningMethodTable, d.DefiningModule,
                             d.Token, d.Slot});
  }
  return out;
}

absl::StatusOr<std::u16string> DacProcess::GetObjectString(uint64_t address, uint32_t max_chars) {
  std::lock_guard<std::mutex> lock(DacMutex());
  std::u16string buf(static_cast<size_t>(max_chars) + 1, u'\0');
  uint32_t needed = 0;
  HRESULT hr =
      sos_->GetObjectStringData(address, static_cast<uint32_t>(buf.size()), buf.data(), &needed);
  if (hr != kS_OK) return DacError(absl::StrCat("GetObjectStringData(", Hex(address), ")"), hr);
  buf.resize(max_chars);
  if (size_t nul = buf.find(u'\0'); nul != std::u16string::npos) buf.resize(nul);
  return buf;
}

absl::StatusOr<uint64_t> DacProcess::GetThreadFromThinLockId(uint32_t thin_lock_id) {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ADDRESS thread = 0;
  HRESULT hr = sos_->GetThreadFromThinlockID(thin_lock_id, &thread);
  if (hr != kS_OK) return DacError("GetThreadFromThinlockID", hr);
  return thread;
}

absl::StatusOr<SyncBlockInfo> DacProcess::GetSyncBlock(uint32_t number) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpSyncBlockData d{};
  HRESULT hr = sos_->GetSyncBlockData(number, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetSyncBlockData(", number, ")"), hr);
  return SyncBlockInfo{d.Object,      d.bFree != 0, d.SyncBlockPointer, d.SyncBlockCount,
                       d.MonitorHeld, d.Recursion,  d.HoldingThread,    d.COMFlags};
}

absl::StatusOr<StaticBases> DacProcess::GetStaticBases(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos14_) return Unavailable("ISOSDacInterface14");
  CLRDATA_ADDRESS non_gc = 0, gc = 0;
  HRESULT hr = sos14_->GetStaticBaseAddress(mt, &non_gc, &gc);
  if (Failed(hr)) return DacError(absl::StrCat("GetStaticBaseAddress(", Hex(mt), ")"), hr);
  return StaticBases{non_gc, gc};
}

absl::StatusOr<DomainLocalModule> DacProcess::GetDomainLocalModule(uint64_t module) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpDomainLocalModuleData d{};
  HRESULT hr = sos_->GetDomainLocalModuleDataFromModule(module, &d);
  if (Failed(hr)) {
    return DacError(absl::StrCat("GetDomainLocalModuleDataFromModule(", Hex(module), ")"), hr);
  }
  return DomainLocalModule{d.pClassData, d.pGCStaticDataStart, d.pNonGCStaticDataStart};
}

absl::StatusOr<StaticBases> DacProcess::GetThreadStaticBases(uint64_t mt, uint64_t thread) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos14_) return Unavailable("ISOSDacInterface14");
  CLRDATA_ADDRESS non_gc = 0, gc = 0;
  HRESULT hr = sos14_->GetThreadStaticBaseAddress(mt, thread, &non_gc, &gc);
  if (Failed(hr)) return DacError(absl::StrCat("GetThreadStaticBaseAddress(", Hex(mt), ")"), hr);
  return StaticBases{non_gc, gc};
}

absl::StatusOr<int32_t> DacProcess::GetMethodTableInitializationFlags(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos14_) return Unavailable("ISOSDacInterface14");
  int32_t flags = 0;
  HRESULT hr = sos14_->GetMethodTableInitializationFlags(mt, &flags);
  if (Failed(hr)) {
    return DacError(absl::StrCat("GetMethodTableInitializationFlags(", Hex(mt), ")"), hr);
  }
  return flags;
}

absl::StatusOr<uint64_t> DacProcess::GetAssemblyLoadContext(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos8_) return Unavailable("ISOSDacInterface8");
  CLRDATA_ADDRESS alc = 0;
  HRESULT hr = sos8_->GetAssemblyLoadContext(mt, &alc);
  if (Failed(hr)) return DacError(absl::StrCat("GetAssemblyLoadContext(", Hex(mt), ")"), hr);
  return alc;
}

absl::StatusOr<uint64_t> DacProcess::GetLoaderAllocatorHandle(uint64_t mt) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos6_) return Unavailable("ISOSDacInterface6");
  DacpMethodTableCollectibleData d{};
  HRESULT hr = sos6_->GetMethodTableCollectibleData(mt, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetMethodTableCollectibleData(", Hex(mt), ")"), hr);
  return d.LoaderAllocatorObjectHandle;
}

absl::StatusOr<std::pair<uint64_t, std::vector<uint64_t>>> DacProcess::GetObjectComWrappers(
    uint64_t obj) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos10_) return Unavailable("ISOSDacInterface10");
  CLRDATA_ADDRESS rcw = 0;
  uint32_t needed = 0;
  HRESULT hr = sos10_->GetObjectComWrappersData(obj, &rcw, 0, nullptr, &needed);
  if (Failed(hr)) return DacError("GetObjectComWrappersData", hr);
  std::vector<CLRDATA_ADDRESS> ccws(std::min<uint32_t>(needed, kMaxSlots));
  if (!ccws.empty()) {
    hr = sos10_->GetObjectComWrappersData(obj, &rcw, static_cast<uint32_t>(ccws.size()),
                                          ccws.data(), nullptr);
    if (Failed(hr)) return DacError("GetObjectComWrappersData", hr);
  }
  return std::make_pair(static_cast<uint64_t>(rcw),
                        std::vector<uint64_t>(ccws.begin(), ccws.end()));
}

absl::StatusOr<std::pair<bool, bool>> DacProcess::IsTrackedType(uint64_t obj) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos11_) return Unavailable("ISOSDacInterface11");
  BOOL tracked = 0, tagged = 0;
  HRESULT hr = sos11_->IsTrackedType(obj, &tracked, &tagged);
  if (Failed(hr)) return DacError("IsTrackedType", hr);
  return std::make_pair(tracked != 0, tagged != 0);
}

}  // namespace clrdiag::dac
