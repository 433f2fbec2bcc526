#include "core/dac/dac_library.h"

#include <dlfcn.h>

#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clrdiag::dac {
namespace {

constexpr DWORD kDllProcessAttach = 1;

std::string DlError() {
  const char* e = ::dlerror();
  return e != nullptr ? e : "unknown dlerror";
}

}  // namespace

std::mutex& DacMutex() {
  static std::mutex* mu = new std::mutex();  // Never destroyed: DAC libraries never unload.
  return *mu;
}

absl::StatusOr<DacLibrary> LoadDacLibrary(const std::string& path) {
  static std::mutex* cache_mu = new std::mutex();
  static auto* cache = new std::map<std::string, absl::StatusOr<DacLibrary>>();
  std::lock_guard<std::mutex> cache_lock(*cache_mu);
  if (auto it = cache->find(path); it != cache->end()) return it->second;

  auto load = [&]() -> absl::StatusOr<DacLibrary> {
    void* handle = ::dlopen(path.c_str(), RTLD_LOCAL | RTLD_NOW);
    if (handle == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load the DAC ", path, ": ", DlError()));
    }
    DacLibrary lib;
    lib.path = path;
    lib.handle = handle;
    lib.create_instance =
        reinterpret_cast<ClrDataCreateInstanceFn>(::dlsym(handle, "CLRDataCreateInstance"));
    if (lib.create_instance == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " does not export CLRDataCreateInstance: not a DAC"));
    }
    // Linux DACs export their PAL entry points with a DAC_ prefix; macOS ones without.
    const bool has_pal = ::dlsym(handle, "DAC_PAL_InitializeDLL") != nullptr ||
                         ::dlsym(handle, "PAL_InitializeDLL") != nullptr;
    if (has_pal) {
      auto dll_main = reinterpret_cast<DllMainFn>(::dlsym(handle, "DllMain"));
      if (dll_main == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " exports a PAL but no DllMain to initialise it"));
      }
      std::lock_guard<std::mutex> dac_lock(DacMutex());
      if (!dll_main(handle, kDllProcessAttach, nullptr)) {
        return absl::InternalError(absl::StrCat("DllMain(PROCESS_ATTACH) of ", path, " failed"));
      }
    }
    return lib;  // Deliberately never dlclose'd, even on the error paths above.
  };
  auto result = load();
  cache->emplace(path, result);
  return result;
}

}  // namespace clrdiag::dac
