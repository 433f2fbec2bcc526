// IL token operands named the way dumpil names them, for every command that prints IL (dumpil,
// clru -il): the module's IMetaDataImport (under the DAC lock) and its assembly names read from
// its metadata tables (see il_type_printer.h).
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "core/dac/dac_process.h"
#include "core/sos/il_disasm.h"

namespace clrdiag::sos::il {

// Runs `use` with a TokenTextFn naming `module`'s tokens (module 0: tokens print as
// "TOKEN <hex>", SOS without metadata). `use` runs under the DAC lock: it must not call `dac`.
absl::Status WithModuleTokenNames(dac::DacProcess& dac, uint64_t module,
                                  absl::FunctionRef<absl::Status(const TokenTextFn&)> use);

}  // namespace clrdiag::sos::il
