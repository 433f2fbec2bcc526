// A bounds-checked reader for the part of a portable PDB (ECMA-335 metadata with a #Pdb stream,
// https://github.com/dotnet/runtime/blob/main/docs/design/specs/PortablePdb-Metadata.md) that
// source lines need: the PDB id, the Document table and each method's sequence points.
//
// The bytes come from a file next to an assembly and are untrusted: every read is checked and
// a malformed file gives an error or no line, never a crash.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::dac {

struct SourceLine {
  std::string file;  // the document name as the compiler wrote it
  uint32_t line = 0;
};

class PortablePdb {
 public:
  // Takes the file's bytes. InvalidArgument with the reason if it is not a portable PDB.
  static absl::StatusOr<PortablePdb> Parse(std::vector<uint8_t> bytes);

  // GUID + stamp; equals PeImage::CodeView::pdb_id of the assembly it belongs to.
  const std::array<uint8_t, 20>& id() const { return id_; }

  // Rows of MethodDebugInformation: one per MethodDef of the assembly (tokens 0x06000001...).
  uint32_t method_count() const { return method_rows_; }

  // The source line of IL offset `il_offset` in method `method_token` (an mdMethodDef): the
  // last visible sequence point at or before the offset, as the reference tools choose it.
  // nullopt if the method has none or its data is malformed.
  std::optional<SourceLine> LineForIlOffset(uint32_t method_token, uint32_t il_offset) const;

 private:
  struct Heap {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  std::span<const uint8_t> bytes() const { return bytes_; }
  std::optional<std::span<const uint8_t>> Blob(uint32_t index) const;
  std::optional<std::string> DocumentName(uint32_t row) const;

  std::vector<uint8_t> bytes_;
  std::array<uint8_t, 20> id_{};
  Heap blob_;
  // Document table (0x30) and MethodDebugInformation table (0x31).
  uint32_t document_rows_ = 0, document_offset_ = 0, document_row_size_ = 0;
  uint32_t method_rows_ = 0, method_offset_ = 0, method_row_size_ = 0;
  uint8_t blob_index_size_ = 2, guid_index_size_ = 2, document_index_size_ = 2;
};

}  // namespace clrdiag::dac
