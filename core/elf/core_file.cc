#include "core/elf/core_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace clrdiag::elf {
namespace {

// struct elf_prstatus (linux/elfcore.h), the same on x86-64 and arm64 up to pr_reg.
constexpr size_t kPrstatusCursigOffset = 12;  // short pr_cursig
constexpr size_t kPrstatusPidOffset = 32;     // pid_t pr_pid
constexpr size_t kPrstatusRegOffset = 112;    // elf_gregset_t pr_reg
constexpr size_t kX64RegsSize = 27 * 8;       // user_regs_struct
constexpr size_t kArm64RegsSize = 34 * 8;     // x0..x30, sp, pc, pstate
static_assert(sizeof(X64Registers) == kX64RegsSize);

constexpr size_t kNtFileHeaderSize = 16;  // count, page_size
constexpr size_t kNtFileEntrySize = 24;   // start, end, page_offset

constexpr char kElfMagic[] = "\177ELF";
constexpr size_t kElfHeaderSize = 64;
constexpr size_t kProgramHeaderSize = 56;
constexpr uint16_t kPnXnum = 0xFFFF;
// Limits for ELF headers read from the dump's memory (hostile bytes): more program headers or
// bigger note segments than any real module has mean corruption, and the module gets no id.
constexpr uint16_t kMaxModuleProgramHeaders = 1024;
constexpr uint64_t kMaxModuleNoteBytes = 64 * 1024;

// One PT_LOAD, normalised: [vaddr, vaddr + memsz) does not wrap and overlaps no other segment;
// filesz <= memsz; stored <= filesz is what the file really holds from `offset` (less than
// filesz when the core is truncated).
struct Segment {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t filesz = 0;
  uint64_t stored = 0;
  uint64_t offset = 0;
};

template <typename T>
T Load(std::span<const uint8_t> bytes, size_t off) {
  T v{};
  if (off <= bytes.size() && bytes.size() - off >= sizeof(T)) {
    std::memcpy(&v, bytes.data() + off, sizeof(T));
  }
  return v;
}

std::string Hex(std::span<const uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 0xf]);
  }
  return s;
}

bool IsCoreHeader(std::span<const uint8_t> b) {
  return b.size() >= 18 && std::memcmp(b.data(), kElfMagic, 4) == 0 && b[4] == 2 && b[5] == 1 &&
         Load<uint16_t>(b, 16) == kEtCore;
}

// Sorts by address and trims overlaps (only corrupt cores have them): where two segments
// overlap, the one starting later wins.
std::vector<Segment> Normalize(std::vector<Segment> segs) {
  std::stable_sort(segs.begin(), segs.end(),
                   [](const Segment& a, const Segment& b) { return a.vaddr < b.vaddr; });
  std::vector<Segment> out;
  out.reserve(segs.size());
  for (const Segment& seg : segs) {
    while (!out.empty() && seg.vaddr - out.back().vaddr < out.back().memsz) {
      Segment& prev = out.back();
      prev.memsz = seg.vaddr - prev.vaddr;
      prev.filesz = std::min(prev.filesz, prev.memsz);
      prev.stored = std::min(prev.stored, prev.filesz);
      if (prev.memsz != 0) break;
      out.pop_back();
    }
    out.push_back(seg);
  }
  return out;
}

// Where the core's bytes come from. ReadAt copies up to `n` bytes at file offset `off` and
// returns how many it copied: fewer only at the end of the file (or on an I/O error, which a
// reader treats like the end).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  uint64_t size() const { return size_; }
  virtual size_t ReadAt(uint64_t off, void* out, size_t n) const = 0;

 protected:
  uint64_t size_ = 0;
};

// A caller's buffer (OpenBytes: tests, fuzzing).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const uint8_t> bytes) : bytes_(bytes) { size_ = bytes.size(); }
  size_t ReadAt(uint64_t off, void* out, size_t n) const override {
    // n == 0: `out` may be null (an empty PT_NOTE's buffer), and memcpy must not see it.
    if (n == 0 || off >= bytes_.size()) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, bytes_.size() - off));
    std::memcpy(out, bytes_.data() + off, n);
    return n;
  }

 private:
  std::span<const uint8_t> bytes_;
};

// A file read with pread through an LRU cache of kCoreCacheChunkBytes-aligned chunks, at most
// kCoreCacheBytes in all, allocated as they are first needed. A read of a chunk or more goes
// directly into the caller's buffer (the heap walk reads large windows that way); smaller ones
// (the DAC's) are served from the cache. The page cache holds the file; what this process
// keeps resident is the chunks and the caller's buffers.
class FileSource final : public ByteSource {
 public:
  FileSource(UniqueFd fd, uint64_t size) : fd_(std::move(fd)) { size_ = size; }

  size_t ReadAt(uint64_t off, void* out, size_t n) const override {
    if (off >= size_) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - off));
    if (n >= kCoreCacheChunkBytes) return PreadFully(off, out, n);
    auto* dst = static_cast<uint8_t*>(out);
    size_t done = 0;
    std::lock_guard<std::mutex> lock(mu_);
    while (done < n) {
      const uint64_t pos = off + done;
      const Chunk* c = ChunkAt(pos / kCoreCacheChunkBytes);
      const size_t in_chunk = static_cast<size_t>(pos % kCoreCacheChunkBytes);
      if (c == nullptr || in_chunk >= c->length) break;
      const size_t k = std::min(n - done, c->length - in_chunk);
      std::memcpy(dst + done, c->data.get() + in_chunk, k);
      done += k;
      if (c->length < kCoreCacheChunkBytes) break;  // the end of the file (or an I/O error)
    }
    return done;
  }

 private:
  static constexpr size_t kMaxChunks = kCoreCacheBytes / kCoreCacheChunkBytes;
  static_assert(kMaxChunks >= 2, "the core cache needs room for a read straddling two chunks");

  struct Chunk {
    uint64_t index = 0;
    size_t length = 0;  // bytes valid (less than a chunk only at the end of the file)
    std::unique_ptr<uint8_t[]> data;
  };

  size_t PreadFully(uint64_t off, void* out, size_t n) const {
    auto* dst = static_cast<uint8_t*>(out);
    size_t done = 0;
    while (done < n) {
      const ssize_t k = ::pread(fd_.get(), dst + done, n - done, static_cast<off_t>(off + done));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      done += static_cast<size_t>(k);
    }
    return done;
  }

  // The chunk with this index, read if needed (evicting the least recently used one when the
  // cache is full); null if nothing could be read. Called with mu_ held.
  const Chunk* ChunkAt(uint64_t index) const {
    if (!lru_.empty() && lru_.front().index == index) return &lru_.front();
    if (auto it = by_index_.find(index); it != by_index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return &lru_.front();
    }
    if (lru_.size() < kMaxChunks) {
      lru_.emplace_front();
      lru_.front().data = std::make_unique_for_overwrite<uint8_t[]>(kCoreCacheChunkBytes);
    } else {
      lru_.splice(lru_.begin(), lru_, std::prev(lru_.end()));
      by_index_.erase(lru_.front().index);
    }
    Chunk& c = lru_.front();
    c.index = index;
    c.length = PreadFully(index * kCoreCacheChunkBytes, c.data.get(), kCoreCacheChunkBytes);
    if (c.length == 0) {
      lru_.splice(lru_.end(), lru_, lru_.begin());  // keep the buffer for reuse, unindexed
      lru_.back().index = std::numeric_limits<uint64_t>::max();
      return nullptr;
    }
    by_index_[index] = lru_.begin();
    return &c;
  }

  UniqueFd fd_;
  mutable std::mutex mu_;
  mutable std::list<Chunk> lru_;  // most recently used first
  mutable std::unordered_map<uint64_t, std::list<Chunk>::iterator> by_index_;
};

}  // namespace

struct CoreFile::Impl {
  std::unique_ptr<ByteSource> source;
  std::list<std::vector<uint8_t>> note_segments;  // the PT_NOTE bytes (spans point into them)
  uint16_t machine = 0;
  std::vector<Segment> segments;
  std::vector<CoreThread> threads;
  std::vector<MappedRange> mapped_files;
  std::vector<CoreModule> modules;
  std::vector<std::pair<uint64_t, uint64_t>> auxv;

  absl::Status Index();
  absl::Status ParseHeader(std::vector<ProgramHeader>* headers);
  absl::Status IndexSegments(const std::vector<ProgramHeader>& headers);
  absl::Status IndexNotes(const std::vector<ProgramHeader>& headers);
  absl::Status ParseNote(const Note& note);
  absl::Status ParsePrstatus(std::span<const uint8_t> desc);
  absl::Status ParseFile(std::span<const uint8_t> desc);
  void BuildModules();
  // The build-id of the ELF image whose header is at `base` in the dump: nullopt if the bytes
  // there are present and not ELF, "" if unknown.
  std::optional<std::string> BuildIdAt(uint64_t base) const;

  // Index of the segment containing `addr`, or npos.
  size_t Find(uint64_t addr) const;
  size_t Read(uint64_t addr, void* out, size_t size, bool zero_fill) const;
};

absl::Status CoreFile::Impl::Index() {
  std::vector<ProgramHeader> headers;
  absl::Status parsed = ParseHeader(&headers);
  if (!parsed.ok()) {
    // A core whose program headers are cut off is a damaged core, not a wrong file.
    uint8_t ident[18] = {};
    const size_t got = source->ReadAt(0, ident, sizeof(ident));
    if (parsed.code() == absl::StatusCode::kInvalidArgument &&
        IsCoreHeader(std::span<const uint8_t>(ident, got))) {
      return absl::DataLossError(
          absl::StrCat("truncated or malformed ELF core: ", parsed.message()));
    }
    return parsed;
  }
  RETURN_IF_ERROR(IndexSegments(headers));
  RETURN_IF_ERROR(IndexNotes(headers));
  BuildModules();
  return absl::OkStatus();
}

// The ELF header and program header table, checked as ElfView::Parse checks them, read from
// the source instead of a mapping.
absl::Status CoreFile::Impl::ParseHeader(std::vector<ProgramHeader>* headers) {
  uint8_t eh[kElfHeaderSize];
  if (source->size() < kElfHeaderSize || source->ReadAt(0, eh, sizeof(eh)) != sizeof(eh)) {
    return absl::InvalidArgumentError("not an ELF file (too short)");
  }
  const std::span<const uint8_t> hdr(eh);
  if (std::memcmp(eh, kElfMagic, 4) != 0) {
    return absl::InvalidArgumentError("not an ELF file (bad magic)");
  }
  if (eh[4] != 2) return absl::InvalidArgumentError("not a 64-bit ELF file");
  if (eh[5] != 1) return absl::InvalidArgumentError("not a little-endian ELF file");
  const uint16_t type = Load<uint16_t>(hdr, 16);
  const uint64_t phoff = Load<uint64_t>(hdr, 32);
  const uint16_t phentsize = Load<uint16_t>(hdr, 54);
  uint64_t phnum = Load<uint16_t>(hdr, 56);
  if (phnum == kPnXnum) {
    // Extended numbering: the real count is in section header 0's sh_info.
    const uint64_t shoff = Load<uint64_t>(hdr, 40);
    uint32_t info = 0;
    if (shoff > std::numeric_limits<uint64_t>::max() - 44 ||
        source->ReadAt(shoff + 44, &info, sizeof(info)) != sizeof(info)) {
      return absl::InvalidArgumentError("ELF extended program header count is unreadable");
    }
    phnum = info;
  }
  if (phnum > 0 && phentsize < kProgramHeaderSize) {
    return absl::InvalidArgumentError("ELF program header entry size is too small");
  }
  if (phoff > source->size() || (source->size() - phoff) / (phentsize ? phentsize : 1) < phnum) {
    return absl::InvalidArgumentError("ELF program headers extend past the end of the file");
  }
  if (type != kEtCore) {
    return absl::InvalidArgumentError(
        absl::StrCat("an ELF file but not a core dump (e_type ", type, ")"));
  }
  machine = Load<uint16_t>(hdr, 18);
  // The table fits in the file (checked above), so its size is bounded by the file's.
  std::vector<uint8_t> table(static_cast<size_t>(phnum * phentsize));
  if (source->ReadAt(phoff, table.data(), table.size()) != table.size()) {
    return absl::DataLossError("truncated program header");
  }
  headers->reserve(static_cast<size_t>(phnum));
  for (uint64_t i = 0; i < phnum; ++i) {
    const size_t base = static_cast<size_t>(i * phentsize);
    ProgramHeader ph;
    ph.type = Load<uint32_t>(table, base);
    ph.flags = Load<uint32_t>(table, base + 4);
    ph.offset = Load<uint64_t>(table, base + 8);
    ph.vaddr = Load<uint64_t>(table, base + 16);
    ph.filesz = Load<uint64_t>(table, base + 32);
    ph.memsz = Load<uint64_t>(table, base + 40);
    headers->push_back(ph);
  }
  return absl::OkStatus();
}

absl::Status CoreFile::Impl::IndexSegments(const std::vector<ProgramHeader>& headers) {
  const uint64_t size = source->size();
  std::vector<Segment> segs;
  for (const ProgramHeader& ph : headers) {
    if (ph.type != kPtLoad) continue;
    Segment s;
    s.vaddr = ph.vaddr;
    s.memsz = std::min(ph.memsz, std::numeric_limits<uint64_t>::max() - ph.vaddr);
    if (s.memsz == 0) continue;
    s.filesz = std::min(ph.filesz, s.memsz);
    s.offset = ph.offset;
    s.stored = ph.offset >= size ? 0 : std::min(s.filesz, size - ph.offset);
    segs.push_back(s);
  }
  segments = Normalize(std::move(segs));
  return absl::OkStatus();
}

// Reads every PT_NOTE segment into memory (they are small) and parses its notes, in program
// header order; the first failing note ends the walk.
absl::Status CoreFile::Impl::IndexNotes(const std::vector<ProgramHeader>& headers) {
  const uint64_t size = source->size();
  uint64_t total = 0;
  for (const ProgramHeader& ph : headers) {
    if (ph.type != kPtNote) continue;
    if (ph.offset > size || size - ph.offset < ph.filesz) {
      return absl::DataLossError(
          "core notes are unreadable: PT_NOTE segment extends past the end of the file");
    }
    total += ph.filesz;
    if (total > kMaxCoreNoteBytes) {
      return absl::DataLossError(absl::StrCat("core notes are unreadable: more than ",
                                              kMaxCoreNoteBytes >> 20, " MiB of notes"));
    }
    std::vector<uint8_t>& buf = note_segments.emplace_back(static_cast<size_t>(ph.filesz));
    if (source->ReadAt(ph.offset, buf.data(), buf.size()) != buf.size()) {
      return absl::DataLossError("core notes are unreadable: short read of a PT_NOTE segment");
    }
    absl::Status note_status;
    bool stopped = false;
    absl::Status walk = ForEachNoteIn(buf, [&](const Note& n) {
      note_status = ParseNote(n);
      stopped = !note_status.ok();
      return !stopped;
    });
    RETURN_IF_ERROR(note_status);
    if (!walk.ok()) {
      return absl::DataLossError(absl::StrCat("core notes are unreadable: ", walk.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CoreFile::Impl::ParseNote(const Note& note) {
  if (note.name != "CORE") return absl::OkStatus();
  switch (note.type) {
    case kNtPrstatus:
      return ParsePrstatus(note.desc);
    case kNtFpregset:
      if (!threads.empty() && threads.back().fpregs.empty()) threads.back().fpregs = note.desc;
      return absl::OkStatus();
    case kNtAuxv:
      for (size_t off = 0; note.desc.size() - off >= 16; off += 16) {
        auxv.emplace_back(Load<uint64_t>(note.desc, off), Load<uint64_t>(note.desc, off + 8));
      }
      return absl::OkStatus();
    case kNtFile:
      return ParseFile(note.desc);
    default:
      return absl::OkStatus();
  }
}

absl::Status CoreFile::Impl::ParsePrstatus(std::span<const uint8_t> desc) {
  size_t regs_size = machine == kEmX86_64 ? kX64RegsSize
                     : machine == kEmAarch64
                         ? kArm64RegsSize
                         : desc.size() - std::min(desc.size(), kPrstatusRegOffset);
  if (desc.size() < kPrstatusRegOffset + regs_size) {
    return absl::DataLossError(absl::StrCat("NT_PRSTATUS of thread ", threads.size(), " is ",
                                            desc.size(), " bytes, too short for machine ",
                                            machine));
  }
  CoreThread t;
  t.tid = Load<uint32_t>(desc, kPrstatusPidOffset);
  t.signal = Load<int16_t>(desc, kPrstatusCursigOffset);
  std::span<const uint8_t> regs = desc.subspan(kPrstatusRegOffset, regs_size);
  t.raw_regs.assign(regs.begin(), regs.end());
  if (machine == kEmX86_64) std::memcpy(&t.regs, regs.data(), sizeof(t.regs));
  threads.push_back(std::move(t));
  return absl::OkStatus();
}

absl::Status CoreFile::Impl::ParseFile(std::span<const uint8_t> desc) {
  if (desc.size() < kNtFileHeaderSize) return absl::DataLossError("NT_FILE note is too short");
  const uint64_t count = Load<uint64_t>(desc, 0);
  const uint64_t page_size = Load<uint64_t>(desc, 8);
  if (count > (desc.size() - kNtFileHeaderSize) / kNtFileEntrySize) {
    return absl::DataLossError(
        absl::StrCat("NT_FILE claims ", count, " entries but is only ", desc.size(), " bytes"));
  }
  size_t name_pos = kNtFileHeaderSize + count * kNtFileEntrySize;
  for (uint64_t i = 0; i < count; ++i) {
    const size_t e = kNtFileHeaderSize + i * kNtFileEntrySize;
    MappedRange r;
    r.start = Load<uint64_t>(desc, e);
    r.end = Load<uint64_t>(desc, e + 8);
    if (r.end < r.start) {
      return absl::DataLossError(absl::StrCat("NT_FILE entry ", i, " ends before it starts"));
    }
    if (__builtin_mul_overflow(Load<uint64_t>(desc, e + 16), page_size, &r.offset)) {
      return absl::DataLossError(absl::StrCat("NT_FILE entry ", i, " has an impossible offset"));
    }
    if (name_pos >= desc.size()) {
      return absl::DataLossError(
          absl::StrCat("NT_FILE has names for only ", i, " of ", count, " entries"));
    }
    const auto* begin = reinterpret_cast<const char*>(desc.data() + name_pos);
    const size_t left = desc.size() - name_pos;
    const void* nul = std::memchr(begin, '\0', left);
    const size_t len = nul ? static_cast<const char*>(nul) - begin : left;
    r.path.assign(begin, len);
    name_pos += len + 1;
    mapped_files.push_back(std::move(r));
  }
  return absl::OkStatus();
}

void CoreFile::Impl::BuildModules() {
  struct Extent {
    uint64_t lowest = std::numeric_limits<uint64_t>::max();
    std::optional<uint64_t> zero_offset;
    uint64_t end = 0;
  };
  std::vector<std::string> order;
  std::unordered_map<std::string, Extent> by_path;
  for (const MappedRange& r : mapped_files) {
    auto [it, inserted] = by_path.try_emplace(r.path);
    if (inserted) order.push_back(r.path);
    Extent& x = it->second;
    x.lowest = std::min(x.lowest, r.start);
    x.end = std::max(x.end, r.end);
    if (r.offset == 0) x.zero_offset = std::min(x.zero_offset.value_or(r.start), r.start);
  }
  for (const std::string& path : order) {
    const Extent& x = by_path[path];
    CoreModule m;
    m.path = path;
    m.base = x.zero_offset.value_or(x.lowest);
    m.end = x.end;
    std::optional<std::string> id = BuildIdAt(m.base);
    if (!id) continue;  // a mapped data file, a PE assembly, ...: not an ELF module
    m.build_id = std::move(*id);
    modules.push_back(std::move(m));
  }
  std::stable_sort(modules.begin(), modules.end(),
                   [](const CoreModule& a, const CoreModule& b) { return a.base < b.base; });
}

std::optional<std::string> CoreFile::Impl::BuildIdAt(uint64_t base) const {
  uint8_t eh[kElfHeaderSize];
  const size_t got = Read(base, eh, sizeof(eh), /*zero_fill=*/false);
  if (got < 4) return std::string();  // header not in the dump: cannot tell
  if (std::memcmp(eh, kElfMagic, 4) != 0) return std::nullopt;
  const std::span<const uint8_t> hdr(eh, got);
  if (got < kElfHeaderSize || eh[4] != 2 || eh[5] != 1) return std::string();
  const uint64_t phoff = Load<uint64_t>(hdr, 32);
  const uint16_t phentsize = Load<uint16_t>(hdr, 54);
  const uint16_t phnum = Load<uint16_t>(hdr, 56);
  // PN_XNUM (the count is elsewhere) is above the bound too: such a module is not read.
  static_assert(kPnXnum > kMaxModuleProgramHeaders);
  if (phnum > kMaxModuleProgramHeaders || phentsize < kProgramHeaderSize) {
    return std::string();
  }
  std::vector<ProgramHeader> notes;
  std::optional<uint64_t> link_base;  // link-time address of file offset 0
  for (uint16_t i = 0; i < phnum; ++i) {
    uint8_t raw[kProgramHeaderSize];
    // Unsigned arithmetic: a hostile phoff wraps around, which is defined and then just misses.
    if (Read(base + phoff + uint64_t{i} * phentsize, raw, sizeof(raw), false) != sizeof(raw)) {
      return std::string();
    }
    const std::span<const uint8_t> p(raw);
    ProgramHeader ph;
    ph.type = Load<uint32_t>(p, 0);
    ph.offset = Load<uint64_t>(p, 8);
    ph.vaddr = Load<uint64_t>(p, 16);
    ph.filesz = Load<uint64_t>(p, 32);
    if (ph.type == kPtLoad && !link_base) link_base = ph.vaddr - ph.offset;
    if (ph.type == kPtNote) notes.push_back(ph);
  }
  const uint64_t bias = base - link_base.value_or(0);
  for (const ProgramHeader& ph : notes) {
    if (ph.filesz > kMaxModuleNoteBytes) continue;
    std::vector<uint8_t> buf(ph.filesz);
    if (Read(bias + ph.vaddr, buf.data(), buf.size(), false) != buf.size()) continue;
    std::string id;
    (void)ForEachNoteIn(buf, [&](const Note& n) {
      if (n.type != kNtGnuBuildId || n.name != "GNU") return true;
      id = Hex(n.desc);
      return false;
    });
    if (!id.empty()) return id;
  }
  return std::string();
}

size_t CoreFile::Impl::Find(uint64_t addr) const {
  auto it = std::upper_bound(segments.begin(), segments.end(), addr,
                             [](uint64_t a, const Segment& s) { return a < s.vaddr; });
  if (it == segments.begin()) return std::string::npos;
  --it;
  return addr - it->vaddr < it->memsz ? static_cast<size_t>(it - segments.begin())
                                      : std::string::npos;
}

size_t CoreFile::Impl::Read(uint64_t addr, void* out, size_t size, bool zero_fill) const {
  size_t i = size == 0 ? std::string::npos : Find(addr);
  if (i == std::string::npos) return 0;
  auto* dst = static_cast<uint8_t*>(out);
  size_t done = 0;
  while (done < size) {
    const Segment& s = segments[i];
    const uint64_t rel = addr - s.vaddr;
    uint64_t n = 0;
    if (rel < s.stored) {
      n = std::min<uint64_t>(size - done, s.stored - rel);
      const size_t got = source->ReadAt(s.offset + rel, dst + done, static_cast<size_t>(n));
      if (got < n) return done + got;  // the file shrank since it was opened, or an I/O error
    } else if (rel < s.filesz || !zero_fill) {
      break;  // cut off by truncation, or not dumped
    } else {
      n = std::min<uint64_t>(size - done, s.memsz - rel);
      std::memset(dst + done, 0, n);
    }
    done += n;
    addr += n;
    if (addr - s.vaddr == s.memsz) {
      // Continue only into a segment that starts exactly here.
      if (++i == segments.size() || segments[i].vaddr != addr) break;
    }
  }
  return done;
}

CoreFile::CoreFile() : impl_(std::make_unique<Impl>()) {}
CoreFile::~CoreFile() = default;

absl::StatusOr<std::unique_ptr<CoreFile>> CoreFile::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, " is not a file"));
  std::unique_ptr<CoreFile> core(new CoreFile());
  core->impl_->source =
      std::make_unique<FileSource>(std::move(fd), static_cast<uint64_t>(st.st_size));
  absl::Status st_index = core->impl_->Index();
  if (!st_index.ok()) {
    return absl::Status(st_index.code(), absl::StrCat(path, ": ", st_index.message()));
  }
  return core;
}

absl::StatusOr<std::unique_ptr<CoreFile>> CoreFile::OpenBytes(std::span<const uint8_t> bytes) {
  std::unique_ptr<CoreFile> core(new CoreFile());
  core->impl_->source = std::make_unique<MemorySource>(bytes);
  RETURN_IF_ERROR(core->impl_->Index());
  return core;
}

uint16_t CoreFile::machine() const { return impl_->machine; }
const std::vector<CoreThread>& CoreFile::threads() const { return impl_->threads; }
const std::vector<MappedRange>& CoreFile::mapped_files() const { return impl_->mapped_files; }
const std::vector<CoreModule>& CoreFile::modules() const { return impl_->modules; }
const std::vector<std::pair<uint64_t, uint64_t>>& CoreFile::auxv() const { return impl_->auxv; }

size_t CoreFile::ReadMemory(uint64_t addr, void* out, size_t size) const {
  return impl_->Read(addr, out, size, /*zero_fill=*/true);
}

size_t CoreFile::ReadDumpedMemory(uint64_t addr, void* out, size_t size) const {
  return impl_->Read(addr, out, size, /*zero_fill=*/false);
}

bool CoreFile::Contains(uint64_t addr) const {
  size_t i = impl_->Find(addr);
  return i != std::string::npos && addr - impl_->segments[i].vaddr < impl_->segments[i].stored;
}

}  // namespace clrdiag::elf
