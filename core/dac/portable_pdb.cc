#include "core/dac/portable_pdb.h"

#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clrdiag::dac {
namespace {

constexpr uint32_t kMetadataSignature = 0x424A5342;  // "BSJB"
constexpr uint32_t kMaxStreams = 16;
constexpr int kDocumentTable = 0x30;
constexpr int kMethodDebugInformationTable = 0x31;
constexpr uint8_t kHeapSizeLargeGuid = 0x02, kHeapSizeLargeBlob = 0x04, kHeapExtraData = 0x40;
constexpr size_t kMaxDocumentParts = 4096;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a valid portable PDB: ", what));
}

// A cursor over untrusted bytes; every read fails softly (ok() turns false) past the end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ >= b_.size(); }
  size_t pos() const { return pos_; }

  template <typename T>
  T Fixed() {
    T v{};
    if (!ok_ || b_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t Index(uint8_t size) { return size == 4 ? Fixed<uint32_t>() : Fixed<uint16_t>(); }
  void Skip(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) {
      ok_ = false;
      return;
    }
    pos_ += n;
  }

  // ECMA-335 II.23.2 compressed unsigned integer; `bits` receives its width (7, 14 or 29).
  uint32_t CompressedUnsigned(int* bits = nullptr) {
    uint8_t b0 = Fixed<uint8_t>();
    if ((b0 & 0x80) == 0) {
      if (bits) *bits = 7;
      return b0;
    }
    if ((b0 & 0xC0) == 0x80) {
      uint8_t b1 = Fixed<uint8_t>();
      if (bits) *bits = 14;
      return (uint32_t{b0 & 0x3Fu} << 8) | b1;
    }
    if ((b0 & 0xE0) == 0xC0) {
      uint8_t b1 = Fixed<uint8_t>(), b2 = Fixed<uint8_t>(), b3 = Fixed<uint8_t>();
      if (bits) *bits = 29;
      return (uint32_t{b0 & 0x1Fu} << 24) | (uint32_t{b1} << 16) | (uint32_t{b2} << 8) | b3;
    }
    ok_ = false;
    return 0;
  }
  // The signed form: the sign sits in the lowest bit of the unsigned encoding.
  int32_t CompressedSigned() {
    int bits = 7;
    uint32_t u = CompressedUnsigned(&bits);
    int32_t v = static_cast<int32_t>(u >> 1);
    if (u & 1) v -= int32_t{1} << (bits - 1);
    return v;
  }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

absl::StatusOr<PortablePdb> PortablePdb::Parse(std::vector<uint8_t> bytes) {
  PortablePdb pdb;
  pdb.bytes_ = std::move(bytes);
  std::span<const uint8_t> all = pdb.bytes_;
  Reader root(all);
  if (root.Fixed<uint32_t>() != kMetadataSignature) return Bad("no BSJB metadata signature");
  root.Skip(8);  // major, minor, reserved
  uint32_t version_len = root.Fixed<uint32_t>();
  root.Skip(version_len);
  root.Skip(2);  // flags
  uint16_t nstreams = root.Fixed<uint16_t>();
  if (!root.ok() || nstreams > kMaxStreams) return Bad("truncated metadata root");
  std::optional<Heap> pdb_stream, tables, blob;
  for (uint16_t i = 0; i < nstreams; ++i) {
    Heap h;
    h.offset = root.Fixed<uint32_t>();
    h.size = root.Fixed<uint32_t>();
    std::string name;
    while (root.ok() && name.size() < 32) {
      char c = static_cast<char>(root.Fixed<uint8_t>());
      if (c == '\0') break;
      name += c;
    }
    root.Skip((4 - (name.size() + 1) % 4) % 4);
    if (!root.ok()) return Bad("truncated stream headers");
    if (h.offset > all.size() || all.size() - h.offset < h.size) {
      return Bad(absl::StrCat("stream ", name, " lies outside the file"));
    }
    if (name == "#Pdb") pdb_stream = h;
    if (name == "#~") tables = h;
    if (name == "#Blob") blob = h;
  }
  if (!pdb_stream || !tables || !blob) return Bad("missing #Pdb, #~ or #Blob stream");
  if (pdb_stream->size < 20) return Bad("#Pdb stream too small");
  std::memcpy(pdb.id_.data(), all.data() + pdb_stream->offset, 20);
  pdb.blob_ = *blob;

  Reader t(all.subspan(tables->offset, tables->size));
  t.Skip(6);  // reserved, major, minor
  uint8_t heap_sizes = t.Fixed<uint8_t>();
  t.Skip(1);
  uint64_t valid = t.Fixed<uint64_t>();
  t.Skip(8);  // sorted
  // A standalone PDB holds no type-system tables; their sizes would come from #Pdb.
  if ((valid & ((uint64_t{1} << kDocumentTable) - 1)) != 0) {
    return Bad("type-system tables in the #~ stream");
  }
  uint32_t rows[64] = {};
  for (int i = 0; i < 64; ++i) {
    if (valid & (uint64_t{1} << i)) rows[i] = t.Fixed<uint32_t>();
  }
  if (heap_sizes & kHeapExtraData) t.Skip(4);
  if (!t.ok()) return Bad("truncated #~ header");
  pdb.blob_index_size_ = (heap_sizes & kHeapSizeLargeBlob) ? 4 : 2;
  pdb.guid_index_size_ = (heap_sizes & kHeapSizeLargeGuid) ? 4 : 2;
  pdb.document_rows_ = rows[kDocumentTable];
  pdb.method_rows_ = rows[kMethodDebugInformationTable];
  pdb.document_index_size_ = pdb.document_rows_ < (1u << 16) ? 2 : 4;
  pdb.document_row_size_ = 2u * pdb.blob_index_size_ + 2u * pdb.guid_index_size_;
  pdb.method_row_size_ = uint32_t{pdb.document_index_size_} + pdb.blob_index_size_;
  pdb.document_offset_ = static_cast<uint32_t>(tables->offset + t.pos());
  uint64_t method_offset =
      uint64_t{pdb.document_offset_} + uint64_t{pdb.document_rows_} * pdb.document_row_size_;
  uint64_t tables_end = method_offset + uint64_t{pdb.method_rows_} * pdb.method_row_size_;
  if (tables_end > uint64_t{tables->offset} + tables->size) return Bad("tables exceed #~ stream");
  pdb.method_offset_ = static_cast<uint32_t>(method_offset);
  return pdb;
}

std::optional<std::span<const uint8_t>> PortablePdb::Blob(uint32_t index) const {
  if (index >= blob_.size) return std::nullopt;
  Reader r(bytes().subspan(blob_.offset + index, blob_.size - index));
  uint32_t len = r.CompressedUnsigned();
  if (!r.ok() || blob_.size - index - r.pos() < len) return std::nullopt;
  return bytes().subspan(blob_.offset + index + r.pos(), len);
}

std::optional<std::string> PortablePdb::DocumentName(uint32_t row) const {
  if (row == 0 || row > document_rows_) return std::nullopt;
  Reader r(bytes().subspan(document_offset_ + (row - 1) * document_row_size_, document_row_size_));
  uint32_t name_index = r.Index(blob_index_size_);
  auto name = Blob(name_index);
  if (!r.ok() || !name || name->empty()) return std::nullopt;
  Reader n(*name);
  char separator = static_cast<char>(n.Fixed<uint8_t>());
  std::string out;
  for (size_t part = 0; !n.at_end() && part < kMaxDocumentParts; ++part) {
    uint32_t part_index = n.CompressedUnsigned();
    if (!n.ok()) return std::nullopt;
    if (part > 0 && separator != '\0') out += separator;
    if (part_index == 0) continue;  // an empty part
    auto text = Blob(part_index);
    if (!text) return std::nullopt;
    out.append(reinterpret_cast<const char*>(text->data()), text->size());
  }
  return out;
}

std::optional<SourceLine> PortablePdb::LineForIlOffset(uint32_t method_token,
                                                       uint32_t il_offset) const {
  constexpr uint32_t kMethodDefTable = 0x06;
  if ((method_token >> 24) != kMethodDefTable) return std::nullopt;
  uint32_t row = method_token & 0xFFFFFF;
  if (row == 0 || row > method_rows_) return std::nullopt;
  Reader r(bytes().subspan(method_offset_ + (row - 1) * method_row_size_, method_row_size_));
  uint32_t document = r.Index(document_index_size_);
  uint32_t points_index = r.Index(blob_index_size_);
  if (!r.ok() || points_index == 0) return std::nullopt;
  auto points = Blob(points_index);
  if (!points) return std::nullopt;

  Reader p(*points);
  p.CompressedUnsigned();  // LocalSignature
  if (document == 0) document = p.CompressedUnsigned();
  bool first = true, seen_visible = false;
  uint32_t il = 0;
  int64_t line = 0, column = 0;
  std::optional<std::pair<uint32_t, uint32_t>> best;  // (document, line)
  while (p.ok() && !p.at_end()) {
    uint32_t delta_il = p.CompressedUnsigned();
    if (!first && delta_il == 0) {  // document-record
      document = p.CompressedUnsigned();
      continue;
    }
    il = first ? delta_il : il + delta_il;
    first = false;
    uint32_t delta_lines = p.CompressedUnsigned();
    int64_t delta_columns =
        delta_lines == 0 ? int64_t{p.CompressedUnsigned()} : int64_t{p.CompressedSigned()};
    bool hidden = delta_lines == 0 && delta_columns == 0;
    if (!hidden) {
      if (!seen_visible) {
        line = p.CompressedUnsigned();
        column = p.CompressedUnsigned();
      } else {
        line += p.CompressedSigned();
        column += p.CompressedSigned();
      }
      seen_visible = true;
    }
    if (!p.ok() || il > il_offset) break;
    if (!hidden && line > 0 && line <= 0xFFFFFF) best = {{document, static_cast<uint32_t>(line)}};
  }
  if (!best) return std::nullopt;
  auto name = DocumentName(best->first);
  if (!name) return std::nullopt;
  return SourceLine{*name, best->second};
}

}  // namespace clrdiag::dac
