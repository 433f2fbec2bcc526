#include "core/elf/elf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace clrdiag::elf {
namespace {

template <typename T>
bool ReadAt(std::span<const uint8_t> bytes, uint64_t off, T* out) {
  if (off > bytes.size() || bytes.size() - off < sizeof(T)) return false;
  std::memcpy(out, bytes.data() + off, sizeof(T));
  return true;
}

uint64_t Align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

}  // namespace

absl::StatusOr<ElfView> ElfView::Parse(std::span<const uint8_t> image) {
  if (image.size() < 64) return absl::InvalidArgumentError("not an ELF file (too short)");
  if (std::memcmp(image.data(),
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return absl::InvalidArgumentError("not an ELF file (bad magic)");
  }
  if (image[4] != 2) return absl::InvalidArgumentError("not a 64-bit ELF file");
  if (image[5] != 1) return absl::InvalidArgumentError("not a little-endian ELF file");
  ElfView v;
  v.image_ = image;
  ReadAt(image, 16, &v.type_);
  ReadAt(image, 18, &v.machine_);
  ReadAt(image, 32, &v.phoff_);
  ReadAt(image, 54, &v.phentsize_);
  uint16_t phnum = 0;
  ReadAt(image, 56, &phnum);
  v.phnum_ = phnum;
  if (phnum == 0xFFFF) {
    // Extended numbering: the real count is in section header 0's sh_info.
    uint64_t shoff = 0;
    uint32_t info = 0;
    if (!ReadAt(image, 40, &shoff) || !ReadAt(image, shoff + 44, &info)) {
      return absl::InvalidArgumentError("ELF extended program header count is unreadable");
    }
    v.phnum_ = info;
  }
  if (v.phnum_ > 0 && v.phentsize_ < 56) {
    return absl::InvalidArgumentError("ELF program header entry size is too small");
  }
  if (v.phoff_ > image.size() ||
      (image.size() - v.phoff_) / (v.phentsize_ ? v.phentsize_ : 1) < v.phnum_) {
    return absl::InvalidArgumentError("ELF program headers extend past the end of the file");
  }
  return v;
}

absl::StatusOr<ProgramHeader> ElfView::GetProgramHeader(size_t index) const {
  if (index >= phnum_) return absl::OutOfRangeError("program header index out of range");
  uint64_t base = phoff_ + uint64_t{index} * phentsize_;
  ProgramHeader ph;
  if (!ReadAt(image_, base, &ph.type) || !ReadAt(image_, base + 4, &ph.flags) ||
      !ReadAt(image_, base + 8, &ph.offset) || !ReadAt(image_, base + 16, &ph.vaddr) ||
      !ReadAt(image_, base + 32, &ph.filesz) || !ReadAt(image_, base + 40, &ph.memsz)) {
    return absl::DataLossError("truncated program header");
  }
  return ph;
}

absl::Status ForEachNoteIn(std::span<const uint8_t> seg,
                           const std::function<bool(const Note&)>& fn) {
  uint64_t pos = 0;
  while (seg.size() - pos >= 12) {
    uint32_t namesz = 0, descsz = 0, type = 0;
    ReadAt(seg, pos, &namesz);
    ReadAt(seg, pos + 4, &descsz);
    ReadAt(seg, pos + 8, &type);
    uint64_t name_off = pos + 12;
    uint64_t desc_off = name_off + Align4(namesz);
    if (desc_off > seg.size() || seg.size() - desc_off < descsz) {
      return absl::DataLossError("malformed ELF note");
    }
    Note note;
    std::string_view name(reinterpret_cast<const char*>(seg.data() + name_off), namesz);
    if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    note.name = name;
    note.type = type;
    note.desc = seg.subspan(desc_off, descsz);
    if (!fn(note)) return absl::OkStatus();
    // The last note's padding may be missing: never step past the end.
    pos = std::min<uint64_t>(desc_off + Align4(descsz), seg.size());
  }
  return absl::OkStatus();
}

absl::Status ElfView::ForEachNote(const std::function<bool(const Note&)>& fn) const {
  bool stopped = false;
  for (size_t i = 0; i < phnum_ && !stopped; ++i) {
    ASSIGN_OR_RETURN(ProgramHeader ph, GetProgramHeader(i));
    if (ph.type != kPtNote) continue;
    if (ph.offset > image_.size() || image_.size() - ph.offset < ph.filesz) {
      return absl::DataLossError("PT_NOTE segment extends past the end of the file");
    }
    RETURN_IF_ERROR(ForEachNoteIn(image_.subspan(ph.offset, ph.filesz), [&](const Note& n) {
      stopped = !fn(n);
      return !stopped;
    }));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ElfView::GnuBuildId() const {
  std::string id;
  RETURN_IF_ERROR(ForEachNote([&](const Note& n) {
    if (n.type == kNtGnuBuildId && n.name == "GNU") {
      static constexpr char kHex[] = "0123456789abcdef";
      for (uint8_t b : n.desc) {
        id.push_back(kHex[b >> 4]);
        id.push_back(kHex[b & 0xf]);
      }
      return false;
    }
    return true;
  }));
  if (id.empty()) return absl::NotFoundError("no GNU build-id note");
  return id;
}

absl::StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, " is not a file"));
  if (st.st_size == 0) return MappedFile(nullptr, 0);
  void* p = ::mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return ErrnoStatus(errno, absl::StrCat("mmap ", path));
  return MappedFile(static_cast<const uint8_t*>(p), static_cast<size_t>(st.st_size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

absl::StatusOr<std::string> ReadGnuBuildId(const std::string& path) {
  ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto view = ElfView::Parse(file.bytes());
  if (!view.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", view.status().message()));
  }
  return view->GnuBuildId();
}

}  // namespace clrdiag::elf
