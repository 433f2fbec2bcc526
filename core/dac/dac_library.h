// Loading libmscordaccore.so into this process.
//
// Lifetime: a loaded DAC is never unloaded. Its PAL registers a pthread-key destructor that
// would run from unmapped code at thread exit after a dlclose, so each distinct DAC path is
// loaded once per process and kept. Analysing many runtime versions therefore belongs in
// short-lived worker processes.
//
// Concurrency: the DAC is not thread-safe. Every call into it (and into any interface it
// hands out) must hold DacMutex(); the data target's callbacks run under that same lock.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "core/dac/clr_data.h"

namespace clrdiag::dac {

struct DacLibrary {
  std::string path;
  void* handle = nullptr;
  ClrDataCreateInstanceFn create_instance = nullptr;
};

// dlopen(RTLD_LOCAL | RTLD_NOW) + PAL initialisation, once per path (later calls return the
// cached result). Initialisation: if the DAC exports DAC_PAL_InitializeDLL or
// PAL_InitializeDLL, its exported DllMain(handle, DLL_PROCESS_ATTACH, NULL) is called, which
// initialises the DAC's private PAL and its lock. Errors name the file and dlerror().
absl::StatusOr<DacLibrary> LoadDacLibrary(const std::string& path);

// How DacProcess obtains a DAC; replaceable in tests.
using DacLoader = std::function<absl::StatusOr<DacLibrary>(const std::string& path)>;

// The one lock serialising all DAC calls in this process.
std::mutex& DacMutex();

}  // namespace clrdiag::dac
