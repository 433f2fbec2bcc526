// Minimal bounds-checked ELF64 reader over a read-only mapping: headers, program headers and
// notes. Enough for build-ids of shared libraries and sanity checks of core files; the full
// core reader (PT_LOAD address map, threads, NT_FILE) builds on it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace clrdiag::elf {

inline constexpr uint32_t kPtLoad = 1, kPtNote = 4;
inline constexpr uint16_t kEtExec = 2, kEtDyn = 3, kEtCore = 4;
inline constexpr uint32_t kNtPrstatus = 1, kNtFpregset = 2, kNtPrpsinfo = 3, kNtAuxv = 6,
                          kNtFile = 0x46494c45, kNtGnuBuildId = 3;

struct ProgramHeader {
  uint32_t type = 0;
  uint32_t flags = 0;
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
};

struct Note {
  std::string_view name;  // without the trailing NUL
  uint32_t type = 0;
  std::span<const uint8_t> desc;
};

// Calls `fn` for every note in the bytes of one note segment (4-byte aligned records); stops
// early if `fn` returns false. A malformed note ends the walk with DataLoss. Trailing bytes too
// short for a note header are ignored.
absl::Status ForEachNoteIn(std::span<const uint8_t> segment,
                           const std::function<bool(const Note&)>& fn);

// A read-only view of an ELF64 little-endian image. Does not own the bytes.
class ElfView {
 public:
  // Validates the identification and header; InvalidArgument (with the reason) otherwise.
  static absl::StatusOr<ElfView> Parse(std::span<const uint8_t> image);

  uint16_t type() const { return type_; }
  uint16_t machine() const { return machine_; }
  size_t program_header_count() const { return phnum_; }
  absl::StatusOr<ProgramHeader> GetProgramHeader(size_t index) const;

  // Calls `fn` for every note of every PT_NOTE segment; stops early if `fn` returns false.
  // A malformed note ends the walk with DataLoss.
  absl::Status ForEachNote(const std::function<bool(const Note&)>& fn) const;

  // The GNU build-id (lower-case hex) from the PT_NOTE segments; NotFound if none.
  absl::StatusOr<std::string> GnuBuildId() const;

 private:
  std::span<const uint8_t> image_;
  uint16_t type_ = 0;
  uint16_t machine_ = 0;
  uint64_t phoff_ = 0;
  uint16_t phentsize_ = 0;
  size_t phnum_ = 0;
};

// A whole file mapped read-only (MAP_PRIVATE). Movable.
class MappedFile {
 public:
  static absl::StatusOr<MappedFile> Open(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Convenience: the GNU build-id of an ELF file on disk.
absl::StatusOr<std::string> ReadGnuBuildId(const std::string& path);

}  // namespace clrdiag::elf
