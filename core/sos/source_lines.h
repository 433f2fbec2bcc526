// Source lines of managed frames from portable PDBs next to the assemblies, as dotnet-dump
// finds them (clrstack, and gcroot's stack roots).
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "core/dac/dac_process.h"
#include "core/dac/portable_pdb.h"
#include "core/dac/stack_walk.h"
#include "core/sos/symbols.h"

namespace clrdiag::sos {

// The assembly's file on this host must be the build the dump loaded (TimeDateStamp and
// SizeOfImage of the headers in the dump), and the PDB's id must equal the assembly's
// CodeView record. One lookup per module and command. Only a directory holding <stem>.pdb is
// looked at further, so the large framework assemblies (no PDB beside them) are never read.
// With `symbols` (setsymbolserver's stores), a PDB not beside the assembly is looked for there
// too; notes about stores that failed go to `notes`.
class SourceLines {
 public:
  explicit SourceLines(dac::DacProcess& dac, SymbolSettings* symbols = nullptr,
                       std::vector<std::string>* notes = nullptr)
      : dac_(dac), symbols_(symbols), notes_(notes) {}

  // Sets f->source_file and f->source_line if the frame's method has a line for its IL offset.
  void Resolve(dac::StackFrame* f);

 private:
  const dac::PortablePdb* ForModule(uint64_t module);
  std::unique_ptr<dac::PortablePdb> Load(uint64_t module);

  dac::DacProcess& dac_;
  SymbolSettings* symbols_;
  std::vector<std::string>* notes_;
  std::map<uint64_t, std::unique_ptr<dac::PortablePdb>> cache_;
};

}  // namespace clrdiag::sos
