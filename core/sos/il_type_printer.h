// Metadata tokens and signature types printed the ilasm way, as SOS's dumpil shows them: type
// names like `class [System.Runtime]System.Threading.Tasks.Task`1<int32>`, `valuetype ...`,
// `int32&`, `native int` (SOS's PrettyPrintType/PrettyPrintClass with every format flag on),
// and an IL instruction's token operand (its DisassembleToken: 50-character name buffers,
// MethodSpec tokens unknown, field MemberRefs misread as methods, user strings cut short).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "core/dac/metadata_import.h"

namespace clrdiag::sos::il {

// Signature bytes: `size` of them are the signature; reads past them see `tail` (the bytes
// that follow it in the metadata, as far as known), then zeros, as SOS reads past its end.
class SigBytes {
 public:
  SigBytes(const uint8_t* data, size_t size, size_t tail = 0)
      : data_(data), size_(size), tail_(tail) {}
  uint8_t at(size_t i) const { return i < size_ + tail_ ? data_[i] : 0; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t tail_;
};

class IlTypePrinter {
 public:
  // `import` may be null: tokens then print as "TOKEN <hex>" (SOS without metadata).
  explicit IlTypePrinter(dac::IMetaDataImport* import) : import_(import) {}

  // Names of the module's AssemblyRef rows (by RID) and of its Assembly: the DAC's importer
  // does not implement IMetaDataAssemblyImport, so they come from the tables (see
  // AssemblyNames).
  void set_assembly_names(std::map<uint32_t, std::string> refs, std::string self) {
    assembly_refs_ = std::move(refs);
    assembly_name_ = std::move(self);
  }

  // The type at `*pos` in `sig`, ilasm style; advances `*pos` past what it read.
  std::string Type(const SigBytes& sig, size_t* pos) const;
  // A TypeDef, TypeRef, TypeSpec, AssemblyRef, ModuleRef ... token's name, ilasm style.
  std::string Class(uint32_t token) const;
  // An IL instruction's token operand, as dumpil prints it.
  std::string TokenText(uint32_t token) const;

 private:
  // `depth`: how deep in nested types and TypeSpecs (a corrupt or self-referencing signature
  // stops at kMaxDepth instead of overflowing the stack).
  void TypeInto(const SigBytes& sig, size_t* pos, std::string* out, int depth = 0) const;
  void ClassInto(uint32_t tk, std::string* out, int depth) const;
  // Method (or, misread, field) signature: return type, and the parameter list.
  struct MethodSigText {
    std::string ret;     // with a trailing space, empty when it could not be read
    std::string params;  // "(...)" or empty for fields
  };
  MethodSigText MethodSig(const uint8_t* data, uint32_t size) const;

  dac::IMetaDataImport* import_;
  std::map<uint32_t, std::string> assembly_refs_;
  std::string assembly_name_;
};

// The AssemblyRef names (by RID) and the Assembly name (RID 0 in the result) of ECMA-335
// metadata (II.24: the root, the #~ tables stream and the #Strings heap); empty when the
// bytes are not readable metadata.
std::map<uint32_t, std::string> AssemblyNames(std::span<const uint8_t> md);

// The byte count and value of an ECMA-335 compressed integer at `pos` (0 if invalid).
uint32_t UncompressData(const SigBytes& sig, size_t* pos);

}  // namespace clrdiag::sos::il
