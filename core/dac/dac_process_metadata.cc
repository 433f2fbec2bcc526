// DacProcess calls behind the metadata commands (dumpmodule, name2ee, token2ee).
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {
namespace {

// ModuleMapType (dacprivate.h).
constexpr int32_t kTypeDefToMethodTable = 0;
constexpr int32_t kTypeRefToMethodTable = 1;

// DacpProfilerILData (dacprivate.h): the kind of change, the ReJIT id and the new IL.
struct DacpProfilerILData {
  int32_t type;
  CLRDATA_ADDRESS rejit_id;
  CLRDATA_ADDRESS il;
};
static_assert(sizeof(DacpProfilerILData) == 24);

struct MapCollector {
  std::vector<std::pair<uint32_t, uint64_t>> entries;
};

// VISITMODULEMAPENTRY: called once per non-empty entry with its index (the token's RID).
void CollectMapEntry(uint32_t index, CLRDATA_ADDRESS method_table, void* data) {
  static_cast<MapCollector*>(data)->entries.emplace_back(index, method_table);
}

// DACEHInfo (dacprivate.h), natural alignment on a 64-bit target.
struct DacEhInfo {
  int32_t clause_type;
  CLRDATA_ADDRESS try_start;
  CLRDATA_ADDRESS try_end;
  CLRDATA_ADDRESS handler_start;
  CLRDATA_ADDRESS handler_end;
  BOOL is_duplicate;
  CLRDATA_ADDRESS filter;
  BOOL is_catch_all;
  CLRDATA_ADDRESS module;
  CLRDATA_ADDRESS mt_catch;
  uint32_t token_catch;
};
static_assert(sizeof(DacEhInfo) == 88);

// The EH traversal's callback (BOOL (*)(UINT index, UINT total, DACEHInfo*, LPVOID)).
BOOL CollectEhClause(uint32_t, uint32_t, DacEhInfo* info, void* data) {
  EhClause c;
  c.type = info->clause_type;
  c.try_start = info->try_start;
  c.try_end = info->try_end;
  c.handler_start = info->handler_start;
  c.handler_end = info->handler_end;
  c.is_duplicate = info->is_duplicate != 0;
  c.filter = info->filter;
  c.is_catch_all = info->is_catch_all != 0;
  c.module = info->module;
  c.catch_mt = info->mt_catch;
  c.catch_token = info->token_catch;
  static_cast<std::vector<EhClause>*>(data)->push_back(c);
  return 1;
}

}  // namespace

absl::StatusOr<std::vector<EhClause>> DacProcess::GetEhClauses(uint64_t native_code) {
  std::lock_guard<std::mutex> lock(DacMutex());
  std::vector<EhClause> out;
  HRESULT hr = sos_->TraverseEHInfo(native_code, reinterpret_cast<void*>(&CollectEhClause), &out);
  if (hr != kS_OK) {
    return DacError(absl::StrCat("TraverseEHInfo(0x", absl::Hex(native_code), ")"), hr);
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<uint32_t, uint64_t>>> DacProcess::GetModuleMap(
    uint64_t module, bool type_refs) {
  std::lock_guard<std::mutex> lock(DacMutex());
  MapCollector c;
  HRESULT hr = sos_->TraverseModuleMap(type_refs ? kTypeRefToMethodTable : kTypeDefToMethodTable,
                                       module, reinterpret_cast<void*>(&CollectMapEntry), &c);
  if (Failed(hr)) {
    return DacError(absl::StrCat("TraverseModuleMap(0x", absl::Hex(module), ")"), hr);
  }
  return std::move(c.entries);
}

absl::StatusOr<std::vector<uint64_t>> DacProcess::GetMethodsWithProfilerModifiedIL(uint64_t module,
                                                                                   int32_t max) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos7_) return absl::UnimplementedError("the DAC has no ISOSDacInterface7");
  std::vector<uint64_t> out(static_cast<size_t>(max));
  int32_t count = 0;
  HRESULT hr = sos7_->GetMethodsWithProfilerModifiedIL(module, out.data(), max, &count);
  if (Failed(hr)) return DacError("GetMethodsWithProfilerModifiedIL", hr);
  out.resize(static_cast<size_t>(std::clamp(count, 0, max)));
  return out;
}

absl::StatusOr<int32_t> DacProcess::GetProfilerModifiedILType(uint64_t method_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  if (!sos7_) return absl::UnimplementedError("the DAC has no ISOSDacInterface7");
  DacpProfilerILData d{};
  HRESULT hr = sos7_->GetProfilerModifiedILInformation(method_desc, &d);
  if (Failed(hr)) return DacError("GetProfilerModifiedILInformation", hr);
  return d.type;
}

}  // namespace clrdiag::dac
