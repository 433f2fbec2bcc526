#include "core/sos/il_names.h"

#include <map>
#include <string>
#include <vector>

#include "core/sos/il_type_printer.h"

namespace clrdiag::sos::il {
namespace {

// Metadata larger than this is not read for assembly names (no real module comes close).
constexpr uint32_t kMaxMetadataBytes = 256u << 20;

}  // namespace

absl::Status WithModuleTokenNames(dac::DacProcess& dac, uint64_t module,
                                  absl::FunctionRef<absl::Status(const TokenTextFn&)> use) {
  // The module's assembly names, read from its metadata tables: the DAC's importer does not
  // implement IMetaDataAssemblyImport.
  std::map<uint32_t, std::string> assembly_names;
  if (module != 0) {
    if (auto details = dac.GetModuleDetails(module); details.ok() && details->metadata_start != 0 &&
                                                     details->metadata_size > 0 &&
                                                     details->metadata_size < kMaxMetadataBytes) {
      std::vector<uint8_t> md(details->metadata_size);
      md.resize(dac.ReadTargetMemory(details->metadata_start, md.data(), md.size()));
      assembly_names = AssemblyNames(md);
    }
  }
  auto named = [&](dac::IMetaDataImport* import) -> absl::Status {
    IlTypePrinter printer(import);
    if (!assembly_names.empty()) {
      std::string self = assembly_names[0];
      assembly_names.erase(0);
      printer.set_assembly_names(std::move(assembly_names), std::move(self));
    }
    TokenTextFn names = [&](uint32_t token) { return printer.TokenText(token); };
    return use(names);
  };
  return module != 0 ? dac.WithMetadataImport(module, named) : named(nullptr);
}

}  // namespace clrdiag::sos::il
