// DacProcess::GetMethodIl: where a method's IL is, the way SOS's dumpil finds it.
#include "absl/strings/str_cat.h"
#include "core/dac/dac_library.h"
#include "core/dac/dac_process.h"
#include "core/dac/metadata_import.h"

namespace clrdiag::dac {
namespace {

// DacpProfilerILData (dacprivate.h): the kind of change (1: IL replaced by a profiler), the
// new IL, the ReJIT id.
struct ProfilerIlData {
  int32_t type;
  CLRDATA_ADDRESS il;
  ULONG rejit_id;
};
static_assert(sizeof(ProfilerIlData) == 24);
constexpr int32_t kIlModified = 1;

}  // namespace

absl::StatusOr<MethodIlLocation> DacProcess::GetMethodIl(uint64_t method_desc) {
  std::lock_guard<std::mutex> lock(DacMutex());
  DacpMethodDescData d{};
  HRESULT hr = sos_->GetMethodDescData(method_desc, 0, &d, 0, nullptr, nullptr);
  if (Failed(hr)) return DacError("GetMethodDescData", hr);
  MethodIlLocation r;
  r.module = d.ModulePtr;
  r.token = d.MDToken;
  r.is_dynamic = d.bIsDynamic != 0;
  r.dynamic_method_object = d.managedDynamicMethodObject;
  if ((r.is_dynamic && r.dynamic_method_object != 0) || (r.token & 0x00ffffffu) == 0) return r;
  if (sos7_) {
    ProfilerIlData p{};
    if (Succeeded(sos7_->GetProfilerModifiedILInformation(method_desc, &p)) &&
        p.type == kIlModified) {
      r.profiler_modified = true;
      r.il_address = p.il;
    }
  }
  auto import = MetadataImportLocked(r.module);
  if (!import.ok()) {
    r.problem = "bad import";
    r.il_address = 0;
    return r;
  }
  r.import = reinterpret_cast<uint64_t>(*import);
  if (r.il_address == 0) {
    ULONG rva = 0;
    DWORD flags = 0;
    if ((*import)->GetRVA(r.token, &rva, &flags) != kS_OK) {
      r.problem = "error in import";
      return r;
    }
    CLRDATA_ADDRESS il = 0;
    if (sos_->GetILForModule(r.module, rva, &il) != kS_OK) {
      r.problem = "FindIL failed";
      return r;
    }
    r.il_address = il;
  }
  if (r.il_address == 0) r.problem = "Unknown error in reading function IL";
  return r;
}

}  // namespace clrdiag::dac
