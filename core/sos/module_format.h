// The data behind the module commands (modules/lm, clrmodules, dumpdomain, runtimes) gathered
// the way dotnet-dump gathers it, and rendered in its formats.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/elf/core_file.h"

namespace clrdiag::sos {

// One native module as dotnet-dump's `modules` lists it: the NT_FILE ranges of one path, based
// at the first range with file offset 0 (else the lowest), ending at the highest range end.
// ELF images (an ELF header at the base in the dump) span [base, end); anything else counts
// only if a PE header at the base gives its SizeOfImage. The interpreter (AT_BASE) and /dev
// files are left out, as are zero-sized modules; a module overlapping the next is cut at it.
struct NativeModule {
  uint64_t base = 0;
  uint64_t size = 0;
  std::string path;  // As NT_FILE names it, without a " (deleted)" suffix.
  bool is_pe = false;
};

// Sorted by base address.
std::vector<NativeModule> ListNativeModules(const elf::CoreFile& core);

// `<base X16> <size X8> <path>`
std::string FormatNativeModule(const NativeModule& m);

// Reads target memory; returns the bytes read contiguously.
using MemoryReader = std::function<size_t(uint64_t address, void* buffer, size_t size)>;

struct PdbRecord {
  std::string guid;  // .NET "D" format, lower case
  uint32_t age = 0;
  std::string path;
};

// What the module commands need from a PE image in target memory.
struct PeImageInfo {
  uint32_t size_of_image = 0;
  uint32_t timestamp = 0;
  std::optional<PdbRecord> pdb;        // The last CodeView (RSDS) debug entry.
  std::optional<std::string> version;  // VS_FIXEDFILEINFO file version, "1.2.3.4".
};

// Parses the PE image at `base`, laid out as sections (`mapped`) or as the file. `limit` (0:
// none) bounds the bytes read past `base`. nullopt if no valid PE header is readable there.
std::optional<PeImageInfo> ReadPeImage(const MemoryReader& read, uint64_t base, bool mapped,
                                       uint64_t limit = 0);

// One managed module as ClrMD describes it (ClrModule), for clrmodules / assemblies.
struct ClrModuleRow {
  std::string name;           // file name, else the assembly name
  std::string assembly_name;  // assembly name, else the file name
  uint64_t image_base = 0;
  uint64_t size = 0;
  uint64_t address = 0;
  uint64_t assembly = 0;
  bool is_pe_file = false;
  std::string layout;  // "Flat", "Mapped" or "Unknown"
  bool is_dynamic = false;
  uint64_t metadata_address = 0;
  uint64_t metadata_size = 0;
  std::optional<PdbRecord> pdb;
  std::optional<std::string> version;
};

std::string FormatClrModule(const ClrModuleRow& m, bool verbose);

// DacpAppDomainDataStage as SOS names it ("OPEN", ...); "UNKNOWN" otherwise.
const char* AppDomainStageName(int32_t stage);

// Addresses of the named dynamic symbols (.dynsym) of the ELF file at `path`, relative to its
// lowest PT_LOAD; names the file does not define are absent from the result.
absl::StatusOr<std::map<std::string, uint64_t>> ReadElfExports(
    const std::string& path, const std::vector<std::string>& names);

// A `-n` name filter: a case-insensitive regular expression found anywhere in the file name
// (no directory), like .NET's Regex.IsMatch(Path.GetFileName(name)). ECMAScript syntax, which
// agrees with .NET's for the usual patterns.
class NameFilter {
 public:
  // InvalidArgument for a malformed pattern.
  static absl::StatusOr<NameFilter> Create(const std::string& pattern);
  // False for an empty name.
  bool Matches(const std::string& path) const;

 private:
  std::shared_ptr<const std::regex> re_;
};

}  // namespace clrdiag::sos
