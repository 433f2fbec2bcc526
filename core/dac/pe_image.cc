#include "core/dac/pe_image.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clrdiag::dac {
namespace {

constexpr uint32_t kPeSignature = 0x00004550;  // "PE\0\0"
constexpr uint16_t kPe32Magic = 0x10b, kPe32PlusMagic = 0x20b;
constexpr uint32_t kComDescriptorDirectory = 14;     // IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR
constexpr uint32_t kDebugDirectory = 6;              // IMAGE_DIRECTORY_ENTRY_DEBUG
constexpr uint32_t kDebugEntrySize = 28;             // IMAGE_DEBUG_DIRECTORY
constexpr uint32_t kDebugTypeCodeView = 2;
constexpr uint32_t kCodeViewSignature = 0x53445352;    // "RSDS"
constexpr uint16_t kPortablePdbMinorVersion = 0x504D;  // "PM"
constexpr uint32_t kMaxDebugEntries = 64;
constexpr uint32_t kCor20MetadataOffset = 8;         // IMAGE_COR20_HEADER.MetaData
constexpr uint32_t kMetadataSignature = 0x424A5342;  // "BSJB"

template <typename T>
bool ReadAt(std::span<const uint8_t> b, uint64_t off, T* out) {
  if (off > b.size() || b.size() - off < sizeof(T)) return false;
  std::memcpy(out, b.data() + off, sizeof(T));
  return true;
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a valid PE file: ", what));
}

}  // namespace

absl::StatusOr<PeImage> PeImage::Parse(std::span<const uint8_t> file) {
  PeImage img;
  img.file_ = file;
  uint16_t mz = 0;
  uint32_t lfanew = 0;
  if (!ReadAt(file, 0, &mz) || mz != 0x5A4D) return Bad("no MZ header");
  if (!ReadAt(file, 0x3C, &lfanew)) return Bad("truncated DOS header");
  uint32_t sig = 0;
  if (!ReadAt(file, lfanew, &sig) || sig != kPeSignature) return Bad("no PE signature");
  const uint64_t coff = uint64_t{lfanew} + 4;
  uint16_t nsections = 0, opt_size = 0;
  if (!ReadAt(file, coff, &img.machine_) || !ReadAt(file, coff + 2, &nsections) ||
      !ReadAt(file, coff + 4, &img.timestamp_) || !ReadAt(file, coff + 16, &opt_size)) {
    return Bad("truncated COFF header");
  }
  const uint64_t opt = coff + 20;
  uint16_t magic = 0;
  if (!ReadAt(file, opt, &magic)) return Bad("truncated optional header");
  uint64_t dirs_off = 0, ndirs_off = 0;
  if (magic == kPe32Magic) {
    ndirs_off = opt + 92;
    dirs_off = opt + 96;
  } else if (magic == kPe32PlusMagic) {
    ndirs_off = opt + 108;
    dirs_off = opt + 112;
  } else {
    return Bad(absl::StrCat("unknown optional header magic 0x", absl::Hex(magic)));
  }
  uint32_t ndirs = 0;
  if (!ReadAt(file, opt + 56, &img.size_of_image_) ||
      !ReadAt(file, opt + 60, &img.size_of_headers_) || !ReadAt(file, ndirs_off, &ndirs)) {
    return Bad("truncated optional header");
  }
  if (ndirs > kComDescriptorDirectory &&
      dirs_off + 8 * (kComDescriptorDirectory + 1) <= opt + opt_size) {
    const uint64_t d = dirs_off + 8 * kComDescriptorDirectory;
    if (!ReadAt(file, d, &img.cor_header_rva_) || !ReadAt(file, d + 4, &img.cor_header_size_)) {
      return Bad("truncated data directories");
    }
  }
  if (ndirs > kDebugDirectory && dirs_off + 8 * (kDebugDirectory + 1) <= opt + opt_size) {
    const uint64_t d = dirs_off + 8 * kDebugDirectory;
    if (!ReadAt(file, d, &img.debug_dir_rva_) || !ReadAt(file, d + 4, &img.debug_dir_size_)) {
      return Bad("truncated data directories");
    }
  }
  if (nsections > kMaxSections) return Bad("too many sections");
  const uint64_t sec = opt + opt_size;
  for (size_t i = 0; i < nsections; ++i) {
    const uint64_t s = sec + 40 * i;
    Section& out = img.sections_[i];
    if (!ReadAt(file, s + 8, &out.virtual_size) || !ReadAt(file, s + 12, &out.virtual_address) ||
        !ReadAt(file, s + 16, &out.raw_size) || !ReadAt(file, s + 20, &out.raw_offset)) {
      return Bad("truncated section table");
    }
  }
  img.section_count_ = nsections;
  return img;
}

std::optional<uint64_t> PeImage::RvaToOffset(uint32_t rva) const {
  for (const Section& s : sections()) {
    const uint32_t span = std::max(s.virtual_size, s.raw_size);
    if (rva >= s.virtual_address && rva - s.virtual_address < span) {
      const uint64_t delta = rva - s.virtual_address;
      if (delta >= s.raw_size) return std::nullopt;  // Zero-fill tail, not in the file.
      return uint64_t{s.raw_offset} + delta;
    }
  }
  if (rva < size_of_headers_) return rva;
  return std::nullopt;
}

absl::StatusOr<std::span<const uint8_t>> PeImage::BytesAtRva(uint32_t rva,
                                                             uint32_t max_size) const {
  std::optional<uint64_t> off = RvaToOffset(rva);
  if (!off || *off >= file_.size()) {
    return absl::OutOfRangeError(absl::StrCat("RVA 0x", absl::Hex(rva), " is not in the file"));
  }
  uint64_t avail = file_.size() - *off;
  // Clip to the containing section's raw data.
  for (const Section& s : sections()) {
    if (rva >= s.virtual_address && rva - s.virtual_address < s.raw_size) {
      avail = std::min<uint64_t>(avail, s.raw_size - (rva - s.virtual_address));
      break;
    }
  }
  return file_.subspan(*off, std::min<uint64_t>(avail, max_size));
}

absl::StatusOr<std::span<const uint8_t>> PeImage::Metadata() const {
  if (cor_header_rva_ == 0) return absl::NotFoundError("PE file has no CLR header");
  auto cor = BytesAtRva(cor_header_rva_, 72);
  if (!cor.ok()) return cor.status();
  uint32_t md_rva = 0, md_size = 0;
  if (!ReadAt(*cor, kCor20MetadataOffset, &md_rva) ||
      !ReadAt(*cor, kCor20MetadataOffset + 4, &md_size)) {
    return Bad("truncated CLR header");
  }
  auto md = BytesAtRva(md_rva, md_size);
  if (!md.ok()) return md.status();
  uint32_t sig = 0;
  if (md->size() != md_size || !ReadAt(*md, 0, &sig) || sig != kMetadataSignature) {
    return Bad("metadata blob missing or without BSJB signature");
  }
  return *md;
}

absl::StatusOr<PeImage::CodeView> PeImage::FindCodeView() const {
  if (debug_dir_rva_ == 0) return absl::NotFoundError("PE file has no debug directory");
  auto dir =
      BytesAtRva(debug_dir_rva_, std::min(debug_dir_size_, kMaxDebugEntries * kDebugEntrySize));
  if (!dir.ok()) return dir.status();
  for (size_t e = 0; e + kDebugEntrySize <= dir->size(); e += kDebugEntrySize) {
    uint32_t stamp = 0, type = 0, size = 0, file_off = 0;
    uint16_t minor = 0;
    if (!ReadAt(*dir, e + 4, &stamp) || !ReadAt(*dir, e + 10, &minor) ||
        !ReadAt(*dir, e + 12, &type) || !ReadAt(*dir, e + 16, &size) ||
        !ReadAt(*dir, e + 24, &file_off)) {
      break;
    }
    if (type != kDebugTypeCodeView) continue;
    uint32_t sig = 0;
    if (size < 24 || file_off > file_.size() || file_.size() - file_off < size ||
        !ReadAt(file_, file_off, &sig) || sig != kCodeViewSignature) {
      return Bad("malformed CodeView debug entry");
    }
    CodeView cv;
    std::memcpy(cv.pdb_id.data(), file_.data() + file_off + 4, 16);
    std::memcpy(cv.pdb_id.data() + 16, &stamp, 4);
    cv.portable = minor == kPortablePdbMinorVersion;
    const char* path = reinterpret_cast<const char*>(file_.data() + file_off + 24);
    cv.path.assign(path, strnlen(path, size - 24));
    return cv;
  }
  return absl::NotFoundError("PE file has no CodeView debug entry");
}

}  // namespace clrdiag::dac
