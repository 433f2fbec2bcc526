#include "core/sos/module_format.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/elf/elf_file.h"

namespace clrdiag::sos {
namespace {

constexpr uint64_t kAuxvBase = 7;  // AT_BASE: where the interpreter is loaded.

template <typename T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool IsElfHeaderAt(const elf::CoreFile& core, uint64_t base) {
  uint8_t ident[16] = {};
  return core.ReadMemory(base, ident, sizeof(ident)) == sizeof(ident) && std::memcmp(ident,
                                                                                     "\x7f"
                                                                                     "ELF",
                                                                                     4) == 0;
}

// A PE image in target memory: headers, sections and RVA translation for either layout.
class PeReader {
 public:
  PeReader(const MemoryReader& read, uint64_t base, bool mapped, uint64_t limit)
      : read_(read), base_(base), mapped_(mapped), limit_(limit) {}

  bool ParseHeaders() {
    uint8_t dos[64];
    if (!ReadAt(0, dos, sizeof(dos)) || dos[0] != 'M' || dos[1] != 'Z') return false;
    uint32_t lfanew = Get<uint32_t>(dos + 0x3c);
    if (lfanew == 0 || lfanew > 0x10000) return false;
    uint8_t nt[24];
    if (!ReadAt(lfanew, nt, sizeof(nt)) || std::memcmp(nt, "PE\0\0", 4) != 0) return false;
    uint16_t sections = Get<uint16_t>(nt + 6);
    timestamp_ = Get<uint32_t>(nt + 8);
    uint16_t opt_size = Get<uint16_t>(nt + 20);
    if (opt_size < 2 || opt_size > 0x1000 || sections > 96) return false;
    std::vector<uint8_t> opt(opt_size);
    if (!ReadAt(lfanew + 24, opt.data(), opt.size())) return false;
    uint16_t magic = Get<uint16_t>(opt.data());
    size_t count_at, dirs_at;
    if (magic == 0x10b) {
      count_at = 92, dirs_at = 96;
    } else if (magic == 0x20b) {
      count_at = 108, dirs_at = 112;
    } else {
      return false;
    }
    if (opt_size < count_at + 4) return false;
    size_of_image_ = Get<uint32_t>(opt.data() + 56);
    uint32_t dir_count = Get<uint32_t>(opt.data() + count_at);
    for (uint32_t i = 0; i < dir_count && i < 16 && dirs_at + 8 * i + 8 <= opt_size; ++i) {
      dirs_[i] = {Get<uint32_t>(opt.data() + dirs_at + 8 * i),
                  Get<uint32_t>(opt.data() + dirs_at + 8 * i + 4)};
    }
    std::vector<uint8_t> table(40u * sections);
    if (!table.empty() && !ReadAt(lfanew + 24 + opt_size, table.data(), table.size())) {
      return false;
    }
    for (uint16_t i = 0; i < sections; ++i) {
      const uint8_t* s = table.data() + 40 * i;
      sections_.push_back({Get<uint32_t>(s + 12), Get<uint32_t>(s + 8), Get<uint32_t>(s + 20)});
    }
    return true;
  }

  uint32_t size_of_image() const { return size_of_image_; }
  uint32_t timestamp() const { return timestamp_; }
  bool mapped() const { return mapped_; }

  // The stream offset of an RVA, as ClrMD's PEImage.RvaToOffset computes it.
  std::optional<uint64_t> RvaToOffset(uint32_t rva) const {
    if (rva < 4096 || mapped_) return rva;
    for (const Section& s : sections_) {
      if (s.va <= rva && rva < static_cast<uint64_t>(s.va) + s.vsize) {
        return static_cast<uint64_t>(s.raw) + (rva - s.va);
      }
    }
    return std::nullopt;
  }

  bool ReadAt(uint64_t offset, void* out, size_t size) const {
    if (limit_ != 0 && offset + size > limit_) return false;
    return read_(base_ + offset, out, size) == size;
  }
  bool ReadRva(uint32_t rva, void* out, size_t size) const {
    auto off = RvaToOffset(rva);
    return off && ReadAt(*off, out, size);
  }

  std::pair<uint32_t, uint32_t> dir(int i) const { return dirs_[i]; }

 private:
  struct Section {
    uint32_t va, vsize, raw;
  };
  const MemoryReader& read_;
  uint64_t base_;
  bool mapped_;
  uint64_t limit_;
  uint32_t size_of_image_ = 0;
  uint32_t timestamp_ = 0;
  std::pair<uint32_t, uint32_t> dirs_[16] = {};
  std::vector<Section> sections_;
};

constexpr int kDirResource = 2, kDirDebug = 6;
constexpr uint32_t kDebugTypeCodeView = 2;
constexpr uint32_t kRtVersion = 16;

std::string FormatGuid(const uint8_t* g) {
  return absl::StrFormat("%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", Get<uint32_t>(g),
                         Get<uint16_t>(g + 4), Get<uint16_t>(g + 6), g[8], g[9], g[10], g[11],
                         g[12], g[13], g[14], g[15]);
}

std::optional<PdbRecord> ReadPdb(const PeReader& pe) {
  auto [rva, size] = pe.dir(kDirDebug);
  if (rva == 0 || size == 0) return std::nullopt;
  uint32_t count = size / 28;
  if (count > 64) return std::nullopt;
  std::optional<PdbRecord> last;
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t e[28];
    if (!pe.ReadRva(rva + 28 * i, e, sizeof(e))) break;
    uint32_t type = Get<uint32_t>(e + 12), data_size = Get<uint32_t>(e + 16);
    if (type != kDebugTypeCodeView || data_size < 28) continue;
    uint64_t at = pe.mapped() ? Get<uint32_t>(e + 20) : Get<uint32_t>(e + 24);
    uint8_t head[24];
    if (!pe.ReadAt(at, head, sizeof(head)) || std::memcmp(head, "RSDS", 4) != 0) continue;
    size_t name_len = std::min<size_t>(data_size - 0x18 - 1, 4096);
    std::string name(name_len, '\0');
    if (name_len > 0 && !pe.ReadAt(at + 24, name.data(), name.size())) continue;
    if (auto nul = name.find('\0'); nul != std::string::npos) name.resize(nul);
    last = PdbRecord{FormatGuid(head + 4), Get<uint32_t>(head + 20), name};
  }
  return last;
}

struct ResourceEntry {
  uint32_t id = 0;
  bool named = false;
  bool is_dir = false;
  uint32_t offset = 0;  // From the start of the resource section.
};

std::optional<std::vector<ResourceEntry>> ReadResourceDir(const PeReader& pe, uint32_t root,
                                                          uint32_t offset) {
  uint8_t dir[16];
  if (!pe.ReadRva(root + offset, dir, sizeof(dir))) return std::nullopt;
  uint32_t n = Get<uint16_t>(dir + 12) + Get<uint16_t>(dir + 14);
  if (n > 4096) return std::nullopt;
  std::vector<ResourceEntry> out;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t e[8];
    if (!pe.ReadRva(root + offset + 16 + 8 * i, e, sizeof(e))) return std::nullopt;
    uint32_t name = Get<uint32_t>(e), data = Get<uint32_t>(e + 4);
    out.push_back(
        {name & 0x7fffffff, (name & 0x80000000) != 0, (data & 0x80000000) != 0, data & 0x7fffffff});
  }
  return out;
}

// The fixed file version of the RT_VERSION resource, the way ClrMD's FileVersionInfo finds it.
std::optional<std::string> ReadVersion(const PeReader& pe) {
  auto [root, size] = pe.dir(kDirResource);
  if (root == 0 || size == 0) return std::nullopt;
  auto top = ReadResourceDir(pe, root, 0);
  if (!top) return std::nullopt;
  const ResourceEntry* version = nullptr;
  for (const auto& e : *top) {
    if (!e.named && e.id == kRtVersion && e.is_dir) version = &e;
  }
  if (!version) return std::nullopt;
  auto names = ReadResourceDir(pe, root, version->offset);
  if (!names || names->size() != 1) return std::nullopt;
  ResourceEntry node = (*names)[0];
  if (node.is_dir) {
    auto langs = ReadResourceDir(pe, root, node.offset);
    if (!langs || langs->size() != 1) return std::nullopt;
    node = (*langs)[0];
  }
  if (node.is_dir) return std::nullopt;
  uint8_t data_entry[8];
  if (!pe.ReadRva(root + node.offset, data_entry, sizeof(data_entry))) return std::nullopt;
  uint32_t data_rva = Get<uint32_t>(data_entry), data_size = Get<uint32_t>(data_entry + 4);
  if (data_size < 16 || data_size > (1u << 20)) return std::nullopt;
  std::vector<uint8_t> data(data_size);
  if (!pe.ReadRva(data_rva, data.data(), data.size())) return std::nullopt;
  static constexpr char16_t kKey[] = u"VS_VERSION_INFO";
  constexpr size_t kKeyBytes = (sizeof(kKey) / sizeof(char16_t) - 1) * 2;
  for (size_t i = 0; i + kKeyBytes <= data.size(); i += 2) {
    if (std::memcmp(data.data() + i, kKey, kKeyBytes) != 0) continue;
    size_t at = i + kKeyBytes;
    if (at + 20 > data.size()) return std::nullopt;
    const uint8_t* p = data.data() + at;
    return absl::StrCat(Get<uint16_t>(p + 14), ".", Get<uint16_t>(p + 12), ".",
                        Get<uint16_t>(p + 18), ".", Get<uint16_t>(p + 16));
  }
  return std::nullopt;
}

}  // namespace

std::vector<NativeModule> ListNativeModules(const elf::CoreFile& core) {
  struct Image {
    uint64_t base_with_offset0 = 0;
    bool has_offset0 = false;
    uint64_t min_start = UINT64_MAX;
    uint64_t end = 0;
  };
  std::map<std::string, Image> by_path;
  std::vector<std::string> order;
  for (const elf::MappedRange& r : core.mapped_files()) {
    auto [it, fresh] = by_path.try_emplace(r.path);
    if (fresh) order.push_back(r.path);
    Image& im = it->second;
    im.end = std::max(im.end, r.end);
    if (!im.has_offset0 && r.offset == 0) {
      im.has_offset0 = true;
      im.base_with_offset0 = r.start;
    }
    im.min_start = std::min(im.min_start, r.start);
  }
  uint64_t interpreter = 0;
  for (const auto& [type, value] : core.auxv()) {
    if (type == kAuxvBase) interpreter = value;
  }
  MemoryReader read = [&core](uint64_t a, void* b, size_t n) { return core.ReadMemory(a, b, n); };
  std::vector<NativeModule> all;
  for (const std::string& path : order) {
    const Image& im = by_path[path];
    uint64_t base = im.has_offset0 ? im.base_with_offset0 : im.min_start;
    if (base == interpreter || absl::StartsWith(path, "/dev")) continue;
    NativeModule m;
    m.base = base;
    m.path = absl::StrReplaceAll(path, {{" (deleted)", ""}});
    if (IsElfHeaderAt(core, base)) {
      m.size = im.end - base;
    } else {
      m.is_pe = true;
      // ClrMD tries the image as mapped first, then as a file; the headers read the same.
      PeReader pe(read, base, /*mapped=*/true, 0);
      if (pe.ParseHeaders()) m.size = pe.size_of_image();
    }
    all.push_back(std::move(m));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const NativeModule& a, const NativeModule& b) { return a.base < b.base; });
  std::vector<NativeModule> out;
  for (size_t i = 0; i < all.size(); ++i) {
    NativeModule m = all[i];
    if (m.size == 0) continue;
    if (i + 1 < all.size() && m.base + m.size > all[i + 1].base) m.size = all[i + 1].base - m.base;
    if (!out.empty() && out.back().base == m.base) continue;  // Same base: the first one wins.
    out.push_back(std::move(m));
  }
  return out;
}

std::string FormatNativeModule(const NativeModule& m) {
  return absl::StrFormat("%016X %08X %s\n", m.base, m.size, m.path);
}

std::optional<PeImageInfo> ReadPeImage(const MemoryReader& read, uint64_t base, bool mapped,
                                       uint64_t limit) {
  PeReader pe(read, base, mapped, limit);
  if (!pe.ParseHeaders()) return std::nullopt;
  PeImageInfo info;
  info.size_of_image = pe.size_of_image();
  info.timestamp = pe.timestamp();
  info.pdb = ReadPdb(pe);
  info.version = ReadVersion(pe);
  return info;
}

std::string FormatClrModule(const ClrModuleRow& m, bool verbose) {
  const char* dynamic = m.is_dynamic ? "(Dynamic)" : "";
  if (!verbose) return absl::StrFormat("%016X %08X %s%s\n", m.image_base, m.size, m.name, dynamic);
  std::string out = absl::StrCat(m.name, dynamic, "\n");
  absl::StrAppendFormat(&out, "    AssemblyName:    %s\n", m.assembly_name);
  absl::StrAppendFormat(&out, "    ImageBase:       %016X\n", m.image_base);
  absl::StrAppendFormat(&out, "    Size:            %08X\n", m.size);
  absl::StrAppendFormat(&out, "    ModuleAddress:   %016X\n", m.address);
  absl::StrAppendFormat(&out, "    AssemblyAddress: %016X\n", m.assembly);
  absl::StrAppendFormat(&out, "    IsPEFile:        %s\n", m.is_pe_file ? "True" : "False");
  absl::StrAppendFormat(&out, "    Layout:          %s\n", m.layout);
  absl::StrAppendFormat(&out, "    IsDynamic:       %s\n", m.is_dynamic ? "True" : "False");
  absl::StrAppendFormat(&out, "    MetadataAddress: %016X\n", m.metadata_address);
  absl::StrAppendFormat(&out, "    MetadataSize:    %016X\n", m.metadata_size);
  absl::StrAppendFormat(
      &out, "    PdbInfo:         %s\n",
      m.pdb ? absl::StrCat(m.pdb->guid, " ", m.pdb->age, " ", m.pdb->path) : "<none>");
  absl::StrAppendFormat(&out, "    Version:         %s\n", m.version ? *m.version : "<none>");
  return out;
}

const char* AppDomainStageName(int32_t stage) {
  static constexpr const char* kNames[] = {"CREATING",
                                           "READYFORMANAGEDCODE",
                                           "ACTIVE",
                                           "OPEN",
                                           "UNLOAD_REQUESTED",
                                           "EXITING",
                                           "EXITED",
                                           "FINALIZING",
                                           "FINALIZED",
                                           "HANDLETABLE_NOACCESS",
                                           "CLEARED",
                                           "COLLECTED",
                                           "CLOSED"};
  if (stage < 0 || stage >= static_cast<int32_t>(std::size(kNames))) return "UNKNOWN";
  return kNames[stage];
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadElfExports(
    const std::string& path, const std::vector<std::string>& names) {
  auto file = elf::MappedFile::Open(path);
  if (!file.ok()) return file.status();
  std::span<const uint8_t> b = file->bytes();
  auto view = elf::ElfView::Parse(b);
  if (!view.ok()) return view.status();
  uint64_t min_vaddr = UINT64_MAX;
  for (size_t i = 0; i < view->program_header_count(); ++i) {
    auto ph = view->GetProgramHeader(i);
    if (ph.ok() && ph->type == elf::kPtLoad) min_vaddr = std::min(min_vaddr, ph->vaddr);
  }
  if (min_vaddr == UINT64_MAX) min_vaddr = 0;
  auto bad = [&](const char* what) { return absl::DataLossError(absl::StrCat(path, ": ", what)); };
  if (b.size() < 64) return bad("truncated ELF header");
  uint64_t shoff = Get<uint64_t>(b.data() + 0x28);
  uint16_t shentsize = Get<uint16_t>(b.data() + 0x3a), shnum = Get<uint16_t>(b.data() + 0x3c);
  if (shentsize < 64 || shoff > b.size() || shnum > (b.size() - shoff) / shentsize) {
    return bad("bad section header table");
  }
  auto section = [&](size_t i) { return b.data() + shoff + i * shentsize; };
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < shnum; ++i) {
    const uint8_t* sh = section(i);
    if (Get<uint32_t>(sh + 4) != 11) continue;  // SHT_DYNSYM
    uint64_t off = Get<uint64_t>(sh + 24), size = Get<uint64_t>(sh + 32);
    uint32_t link = Get<uint32_t>(sh + 40);
    uint64_t entsize = Get<uint64_t>(sh + 56);
    if (entsize < 24 || off > b.size() || size > b.size() - off || link >= shnum) {
      return bad("bad .dynsym");
    }
    const uint8_t* strsh = section(link);
    uint64_t stroff = Get<uint64_t>(strsh + 24), strsize = Get<uint64_t>(strsh + 32);
    if (stroff > b.size() || strsize > b.size() - stroff) return bad("bad .dynstr");
    for (uint64_t at = off; at + entsize <= off + size; at += entsize) {
      const uint8_t* sym = b.data() + at;
      uint32_t name = Get<uint32_t>(sym);
      uint16_t shndx = Get<uint16_t>(sym + 6);
      uint64_t value = Get<uint64_t>(sym + 8);
      if (shndx == 0 || value == 0 || name >= strsize) continue;  // Undefined.
      const char* s = reinterpret_cast<const char*>(b.data() + stroff + name);
      size_t len = strnlen(s, strsize - name);
      std::string sym_name(s, len);
      if (std::find(names.begin(), names.end(), sym_name) != names.end()) {
        out[sym_name] = value - min_vaddr;
      }
    }
  }
  return out;
}

absl::StatusOr<NameFilter> NameFilter::Create(const std::string& pattern) {
  NameFilter f;
  try {
    f.re_ = std::make_shared<const std::regex>(
        pattern, std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid regular expression '", pattern, "': ", e.what()));
  }
  return f;
}

bool NameFilter::Matches(const std::string& path) const {
  if (path.empty()) return false;
  size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return std::regex_search(name, *re_);
}

}  // namespace clrdiag::sos
