// The DAC's view of a core dump: ICLRDataTarget (memory, threads, modules) plus the optional
// ICLRRuntimeLocator and ICLRMetadataLocator, implemented over elf::CoreFile.
//
// Memory contract: ReadVirtual serves bytes the dump holds, and for file-backed mappings whose
// pages the dump lacks (image pages of libcoreclr.so and of managed assemblies are often
// absent) falls back to a local copy of the same file, accepted only if it is provably the
// same build (GNU build-id for ELF; PE TimeDateStamp and SizeOfImage for assemblies). A read
// that finds nothing fails; it never zero-fills, because the DAC trusts what it reads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/dac/clr_data.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

struct DataTargetOptions {
  // Base address of libcoreclr.so in the target, answered through ICLRRuntimeLocator. 0: the
  // interface is not offered and the DAC falls back to GetImageBase("libcoreclr.so").
  uint64_t runtime_base = 0;
  // Local copies of target files, by the path the dump's NT_FILE note names (e.g. the
  // libcoreclr.so next to the chosen DAC). Used for missing pages and metadata.
  std::map<std::string, std::string> file_substitutes;
  // Also try the NT_FILE path itself on this host (right when the dump was taken here).
  bool use_host_files = true;
  // Receives one line per noteworthy DAC request (interface queries, failed reads of
  // metadata); for debugging. May be empty.
  std::function<void(std::string_view)> trace;
};

// Creates the data target (reference count 1). `core` must outlive every reference the DAC
// keeps, hence the shared_ptr.
ComPtr<ICLRDataTarget> MakeCoreDataTarget(std::shared_ptr<const elf::CoreFile> core,
                                          DataTargetOptions options);

}  // namespace clrdiag::dac
