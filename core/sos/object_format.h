// `dumpobj` and `dumpmt` in the native SOS formats (strike.cpp PrintObj / DumpMT, util.cpp
// DisplayFields): raw DAC type names, %p pointers in upper case, MethodTable and object
// references in lower case, the 16-wide field table.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// dumpclass: the class at `eeclass` (an EEClass, or on .NET 9+ the canonical MethodTable that
// stands for it): name, token, file, parent, module, MethodTable, then the class details and
// fields with static values (as dumpmt -all). Not an EEClass: an error.
absl::Status RunDumpClass(dac::DacProcess& dac, const elf::CoreFile& core,
                          const dac::RuntimeModule& runtime, uint64_t eeclass, OutputSink& out,
                          const CancellationToken& cancel, bool json = false);

// dumpvc: the value of type `mt` (a value type's MethodTable) stored unboxed at `address`: its
// name, MethodTable, size, file and fields. Not a MethodTable: an error.
absl::Status RunDumpVc(dac::DacProcess& dac, const elf::CoreFile& core,
                       const dac::RuntimeModule& runtime, uint64_t mt, uint64_t address,
                       OutputSink& out, const CancellationToken& cancel, bool json = false);

inline constexpr uint64_t kAllElements = ~uint64_t{0};

struct DumpArrayOptions {
  uint64_t start = 0;              // -start: first index shown (single-dimension arrays)
  uint64_t length = kAllElements;  // -length: how many
  bool details = false;            // -details: each element as dumpobj/dumpvc shows it
  bool no_fields = false;          // -nofields: ... without the fields
};

// dumparray: the array's header, then one line per element (its address, or for value types
// where it lies in the array), with -details the element itself, indented. Not an object, not
// an array, or a start index past the end: an error and nothing printed.
absl::Status RunDumpArray(dac::DacProcess& dac, const elf::CoreFile& core,
                          const dac::RuntimeModule& runtime, uint64_t address,
                          const DumpArrayOptions& o, OutputSink& out,
                          const CancellationToken& cancel, bool json = false);

// The offset from the object's start of the instance field `name` of type `mt` or a parent
// (SOS's GetObjFieldOffset); NotFound if no such field.
absl::StatusOr<uint32_t> InstanceFieldOffset(dac::DacProcess& dac, uint64_t mt,
                                             const std::string& name);

}  // namespace clrdiag::sos
