// `dumpobj` and `dumpmt` in the native SOS formats (strike.cpp PrintObj / DumpMT, util.cpp
// DisplayFields): raw DAC type names, %p pointers in upper case, MethodTable and object
// references in lower case, the 16-wide field table.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "core/base/cancel.h"
#include "core/dac/dac_locator.h"
#include "core/dac/dac_process.h"
#include "core/elf/core_file.h"
#include "core/sos/engine.h"

namespace clrdiag::sos {

// Prints the object at `address`: header lines, then (with `fields`) the field table with
// static and thread-static values, then the thin lock owner if any. Not an object: an error
// ("<address> is not a valid object") and nothing printed.
absl::Status RunDumpObj(dac::DacProcess& dac, const elf::CoreFile& core,
                        const dac::RuntimeModule& runtime, uint64_t address, bool fields,
                        OutputSink& out, const CancellationToken& cancel, bool json = false);

struct DumpMtOptions {
  bool method_descs = false;  // -md: the MethodDesc table
  bool all = false;           // -all: -md plus the class details and the field table
};

// Prints the MethodTable at `mt`. Not a MethodTable (or the Free one): an error.
absl::Status RunDumpMt(dac::DacProcess& dac, const elf::CoreFile& core,
                       const dac::RuntimeModule& runtime, uint64_t mt, const DumpMtOptions& o,
                       OutputSink& out, const CancellationToken& cancel, bool json = false);

}  // namespace clrdiag::sos
