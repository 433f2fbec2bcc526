// A bounds-checked reader for the few parts of a PE/COFF file (a managed .dll on disk) that
// the DAC asks the host for: TimeDateStamp and SizeOfImage (to check the file is the one the
// target loaded) and the ECMA-335 metadata blob located by the CLR (COR20) header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace clrdiag::dac {

class PeImage {
 public:
  // Parses file bytes (not a mapped image). InvalidArgument with the reason if malformed.
  static absl::StatusOr<PeImage> Parse(std::span<const uint8_t> file);

  uint32_t timestamp() const { return timestamp_; }
  uint32_t size_of_image() const { return size_of_image_; }
  uint16_t machine() const { return machine_; }

  // File offset of an RVA, if some section holds it (or it lies in the headers).
  std::optional<uint64_t> RvaToOffset(uint32_t rva) const;

  // The metadata blob ("BSJB...") named by the COR20 header. NotFound for a native image.
  absl::StatusOr<std::span<const uint8_t>> Metadata() const;
  // Bytes at an RVA, up to `max_size`, clipped to the section's raw data.
  absl::StatusOr<std::span<const uint8_t>> BytesAtRva(uint32_t rva, uint32_t max_size) const;

  // The CodeView debug directory entry naming the image's symbol file.
  struct CodeView {
    // The id a matching portable PDB carries in its #Pdb stream: the entry's GUID followed by
    // the debug directory entry's TimeDateStamp.
    std::array<uint8_t, 20> pdb_id{};
    bool portable = false;  // MinorVersion "PM": the symbols are a portable PDB
    std::string path;       // as the compiler wrote it
  };
  // NotFound if the image has no CodeView entry.
  absl::StatusOr<CodeView> FindCodeView() const;

 private:
  struct Section {
    uint32_t virtual_address = 0;
    uint32_t virtual_size = 0;
    uint32_t raw_offset = 0;
    uint32_t raw_size = 0;
  };
  std::span<const uint8_t> file_;
  uint16_t machine_ = 0;
  uint32_t timestamp_ = 0;
  uint32_t size_of_image_ = 0;
  uint32_t size_of_headers_ = 0;
  uint32_t cor_header_rva_ = 0;
  uint32_t cor_header_size_ = 0;
  uint32_t debug_dir_rva_ = 0;
  uint32_t debug_dir_size_ = 0;
  std::span<const Section> sections() const { return {sections_, section_count_}; }
  static constexpr size_t kMaxSections = 96;  // The PE spec's limit.
  Section sections_[kMaxSections] = {};
  size_t section_count_ = 0;
};

}  // namespace clrdiag::dac
