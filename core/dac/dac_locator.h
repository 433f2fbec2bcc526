// Finding the runtime in a dump and the one DAC that may read it.
//
// The DAC performs no build check of its own (a mismatched libmscordaccore.so silently reads
// garbage), so clrdiag only loads a DAC whose sibling libcoreclr.so has exactly the GNU
// build-id of the libcoreclr.so mapped in the dump.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

inline constexpr char kCoreClrName[] = "libcoreclr.so";
inline constexpr char kDacName[] = "libmscordaccore.so";

// The CoreCLR runtime as mapped in the dump.
struct RuntimeModule {
  std::string path;      // Target path of libcoreclr.so.
  uint64_t base = 0;     // Load address.
  std::string build_id;  // Lower-case hex GNU build-id; "" if the dump lacks the ELF headers.
  // "10.0.1226.42308" from the "@(#)Version ..." string in the runtime's data; "" if absent.
  std::string version;
  std::string version_string;  // The whole string after "@(#)Version ", commit included.
  // The shared-framework version from the runtime's directory name, e.g. "10.0.12" for
  // .../Microsoft.NETCore.App/10.0.12/libcoreclr.so; "" for other layouts (self-contained).
  std::string framework_version;
};

// Finds libcoreclr.so among the dump's modules. NotFound if the dump has no CoreCLR runtime
// (a native process, or a single-file / NativeAOT app, which this slice does not support).
absl::StatusOr<RuntimeModule> FindRuntime(const elf::CoreFile& core);

// Scans `bytes` for the runtime's "@(#)Version " marker; returns the text after it (to the
// terminating NUL), or "" if absent.
std::string FindVersionString(std::span<const uint8_t> bytes);

struct DacSearchOptions {
  // The dump store root: <store_root>/runtimes/<build-id>/ holds the runtime files the daemon
  // saved when it took the dump. Empty: not searched.
  std::string store_root;
  // Shared-framework roots of this host; each <root>/<version>/ is a candidate.
  std::vector<std::string> host_framework_roots = {
      "/usr/share/dotnet/shared/Microsoft.NETCore.App",
      "/usr/lib/dotnet/shared/Microsoft.NETCore.App",
  };
  // Directories named by the user (`setclrpath`), tried first.
  std::vector<std::string> extra_dirs;
  // Also try the directory the dump names for libcoreclr.so, on this host (after the store,
  // before the host's frameworks): right for a dump of a process of this machine that the
  // daemon did not take, e.g. a self-contained app, whose runtime and DAC sit beside it.
  bool runtime_dir = true;
  // Reads the GNU build-id of a file; injectable for tests. Default: elf::ReadGnuBuildId.
  std::function<absl::StatusOr<std::string>(const std::string&)> read_build_id;
};

struct DacLocation {
  std::string dir;           // Holds both files below.
  std::string dac_path;      // <dir>/libmscordaccore.so
  std::string coreclr_path;  // <dir>/libcoreclr.so, same build-id as the dump's runtime.
  std::string source;        // "setclrpath", "store", "dump" (runtime_dir) or "host": where found.
  // The version string read from `coreclr_path` (heap dumps often lack the runtime's data
  // pages, so RuntimeModule::version_string may be empty); "" if not found.
  std::string version_string;
};

// Picks the DAC for `runtime`: the first of extra_dirs, the store's runtimes/<build-id>/, the
// dump's own runtime directory (runtime_dir), and the host's framework directories whose
// libcoreclr.so matches the build-id and which holds a libmscordaccore.so. NotFound names the
// build-id, the runtime version and how to supply the files; FailedPrecondition if the dump does
// not record the runtime's build-id.
absl::StatusOr<DacLocation> LocateDac(const RuntimeModule& runtime,
                                      const DacSearchOptions& options);

}  // namespace clrdiag::dac
