#include "core/dac/data_target.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/dac/pe_image.h"
#include "core/dac/thread_context.h"
#include "core/elf/elf_file.h"

namespace clrdiag::dac {
namespace {

// Largest PE header prefix we read from the dump to identify an assembly.
constexpr size_t kPeHeaderProbeBytes = 4096;

constexpr char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr uint64_t kDtNull = 0, kDtRela = 7, kDtRelaSz = 8, kDtRelaEnt = 9;
constexpr uint32_t kPtDynamic = 2;
constexpr uint32_t kRX86_64Relative = 8, kRAarch64Relative = 1027;
constexpr uint64_t kRelaEntrySize = 24;
// More relocations than this in one module mean a damaged file: it gets none applied.
constexpr uint64_t kMaxRelocations = uint64_t{16} << 20;

template <typename T>
bool LoadAt(std::span<const uint8_t> bytes, uint64_t off, T* out) {
  if (off > bytes.size() || bytes.size() - off < sizeof(T)) return false;
  std::memcpy(out, bytes.data() + off, sizeof(T));
  return true;
}

// One relative relocation of a shared object: at link-time address `where` the loader stores
// load bias + `addend`.
struct Relocation {
  uint64_t where = 0;
  uint64_t addend = 0;
};

// The relative relocations (R_X86_64_RELATIVE / R_AARCH64_RELATIVE in DT_RELA) of an ELF
// shared object, sorted by address; empty if it has none or its dynamic section is damaged.
// Symbolic relocations (GLOB_DAT, JUMP_SLOT, 64) need the target's symbol resolution and are
// left as the file has them.
std::vector<Relocation> RelativeRelocations(std::span<const uint8_t> file) {
  auto view = elf::ElfView::Parse(file);
  if (!view.ok()) return {};
  const uint32_t relative =
      view->machine() == elf::kEmAarch64 ? kRAarch64Relative : kRX86_64Relative;
  std::vector<elf::ProgramHeader> loads;
  std::optional<elf::ProgramHeader> dynamic;
  for (size_t i = 0; i < view->program_header_count(); ++i) {
    auto ph = view->GetProgramHeader(i);
    if (!ph.ok()) return {};
    if (ph->type == elf::kPtLoad) loads.push_back(*ph);
    if (ph->type == kPtDynamic) dynamic = *ph;
  }
  // File offset of a link-time address (inside a PT_LOAD's file bytes).
  auto offset_of = [&](uint64_t vaddr) -> std::optional<uint64_t> {
    for (const elf::ProgramHeader& l : loads) {
      if (vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz) return l.offset + (vaddr - l.vaddr);
    }
    return std::nullopt;
  };
  if (!dynamic) return {};
  uint64_t rela = 0, rela_size = 0, rela_ent = kRelaEntrySize;
  for (uint64_t pos = 0; pos + 16 <= dynamic->filesz; pos += 16) {
    uint64_t tag = 0, value = 0;
    if (!LoadAt(file, dynamic->offset + pos, &tag) ||
        !LoadAt(file, dynamic->offset + pos + 8, &value) || tag == kDtNull) {
      break;
    }
    if (tag == kDtRela) rela = value;
    if (tag == kDtRelaSz) rela_size = value;
    if (tag == kDtRelaEnt) rela_ent = value;
  }
  const std::optional<uint64_t> table = offset_of(rela);
  if (rela_size == 0 || !table || rela_ent < kRelaEntrySize ||
      rela_size / rela_ent > kMaxRelocations) {
    return {};
  }
  std::vector<Relocation> out;
  for (uint64_t pos = 0; pos + rela_ent <= rela_size; pos += rela_ent) {
    uint64_t where = 0, info = 0, addend = 0;
    if (!LoadAt(file, *table + pos, &where) || !LoadAt(file, *table + pos + 8, &info) ||
        !LoadAt(file, *table + pos + 16, &addend)) {
      break;
    }
    if ((info & 0xffffffff) == relative) out.push_back({where, addend});
  }
  std::sort(out.begin(), out.end(),
            [](const Relocation& a, const Relocation& b) { return a.where < b.where; });
  return out;
}

// Link-time address of file offset 0: the first PT_LOAD's vaddr - offset (0 for shared objects
// linked at 0).
uint64_t LinkBase(std::span<const uint8_t> file) {
  auto view = elf::ElfView::Parse(file);
  if (!view.ok()) return 0;
  for (size_t i = 0; i < view->program_header_count(); ++i) {
    auto ph = view->GetProgramHeader(i);
    if (ph.ok() && ph->type == elf::kPtLoad) return ph->vaddr - ph->offset;
  }
  return 0;
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Local files standing in for the target's file-backed mappings, verified to be the same
// build before any byte of them is served.
class LocalImages {
 public:
  LocalImages(const elf::CoreFile& core, const DataTargetOptions& options)
      : core_(core), options_(options), ranges_(core.mapped_files()) {
    std::sort(
        ranges_.begin(), ranges_.end(),
        [](const elf::MappedRange& a, const elf::MappedRange& b) { return a.start < b.start; });
  }

  // Copies bytes at `addr` from the local file backing that mapping; returns the count.
  size_t Read(uint64_t addr, uint8_t* out, size_t size) {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                               [](uint64_t a, const elf::MappedRange& r) { return a < r.start; });
    if (it == ranges_.begin()) return 0;
    --it;
    if (addr >= it->end) return 0;
    LocalFile* local = LocalFor(it->path);
    if (local == nullptr) return 0;
    const uint64_t off = it->offset + (addr - it->start);
    const auto bytes = local->file.bytes();
    if (off >= bytes.size()) return 0;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>({size, it->end - addr, bytes.size() - off}));
    std::memcpy(out, bytes.data() + off, n);
    Relocate(*local, it->path, addr, out, n);
    if (options_.trace && traced_.insert(it->path).second) {
      Trace(absl::StrCat("serving pages missing from the dump from a local copy of ", it->path));
    }
    return n;
  }

  // The verified local copy of target file `path`, or null.
  const elf::MappedFile* FileFor(const std::string& path) {
    LocalFile* local = LocalFor(path);
    return local != nullptr ? &local->file : nullptr;
  }

 private:
  struct LocalFile {
    explicit LocalFile(elf::MappedFile f) : file(std::move(f)) {}
    elf::MappedFile file;
    // ELF shared objects: the relative relocations and the load bias in the target, found on
    // the first read.
    bool relocations_known = false;
    std::vector<Relocation> relocations;
    uint64_t bias = 0;
  };

  LocalFile* LocalFor(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = files_.try_emplace(path);
    if (inserted) {
      if (auto f = OpenVerified(path)) it->second.emplace(std::move(*f));
    }
    return it->second ? &*it->second : nullptr;
  }

  // The file holds a shared object's data as linked: pointers the loader relocates at start-up
  // (RELA: the word is 0 in the file, or the bare addend) are not what the target's memory
  // held. Writes load bias + addend over every relative relocation in [addr, addr + n).
  void Relocate(LocalFile& local, const std::string& path, uint64_t addr, uint8_t* out, size_t n) {
    const auto bytes = local.file.bytes();
    if (bytes.size() < sizeof(kElfMagic) || std::memcmp(bytes.data(), kElfMagic, 4) != 0) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!local.relocations_known) {
        local.relocations_known = true;
        local.relocations = RelativeRelocations(bytes);
        const uint64_t base = ModuleBase(path);
        // Without a known load address nothing can be relocated.
        if (base == 0) local.relocations.clear();
        local.bias = base - LinkBase(bytes);
      }
    }
    if (local.relocations.empty() || local.bias > addr) return;
    const uint64_t first = addr - local.bias;  // link-time address of out[0]
    if (first > std::numeric_limits<uint64_t>::max() - n) return;
    const uint64_t last = first + n;
    auto it = std::lower_bound(local.relocations.begin(), local.relocations.end(),
                               first > 7 ? first - 7 : 0,
                               [](const Relocation& r, uint64_t a) { return r.where < a; });
    for (; it != local.relocations.end() && it->where < last; ++it) {
      const uint64_t value = local.bias + it->addend;
      uint8_t word[8];
      std::memcpy(word, &value, sizeof(word));
      // The overlap of [where, where + 8) with [first, last).
      const uint64_t lo = std::max(it->where, first);
      const uint64_t hi = std::min(it->where + 8, last);
      if (lo < hi) std::memcpy(out + (lo - first), word + (lo - it->where), hi - lo);
    }
  }

  // Where the target loaded `path`: the module's base (ELF header mapping), else the start of
  // its mapping of file offset 0.
  uint64_t ModuleBase(const std::string& path) const {
    for (const elf::CoreModule& m : core_.modules()) {
      if (m.path == path) return m.base;
    }
    for (const elf::MappedRange& r : ranges_) {
      if (r.path == path && r.offset == 0) return r.start;
    }
    return 0;
  }

  std::optional<elf::MappedFile> OpenVerified(const std::string& path) {
    std::vector<std::pair<std::string, bool>> candidates;  // (local path, explicitly given)
    if (auto s = options_.file_substitutes.find(path); s != options_.file_substitutes.end()) {
      candidates.emplace_back(s->second, true);
    }
    if (options_.use_host_files && !path.empty() && path[0] == '/') {
      candidates.emplace_back(path, false);
    }
    for (const auto& [local, explicit_choice] : candidates) {
      if (!FileExists(local)) continue;
      auto mapped = elf::MappedFile::Open(local);
      if (!mapped.ok()) continue;
      if (SameBuild(path, mapped->bytes(), explicit_choice)) return std::move(*mapped);
      Trace(absl::StrCat("not using ", local, " for ", path, ": different build"));
    }
    return std::nullopt;
  }

  bool SameBuild(const std::string& target_path, std::span<const uint8_t> local,
                 bool explicit_choice) {
    if (local.size() >= 4 && std::memcmp(local.data(),
                                         "\x7f"
                                         "ELF",
                                         4) == 0) {
      std::string dumped;
      for (const elf::CoreModule& m : core_.modules()) {
        if (m.path == target_path) dumped = m.build_id;
      }
      if (dumped.empty()) return explicit_choice;  // Cannot check; trust only a given file.
      auto view = elf::ElfView::Parse(local);
      if (!view.ok()) return false;
      auto id = view->GnuBuildId();
      return id.ok() && *id == dumped;
    }
    if (local.size() >= 2 && local[0] == 'M' && local[1] == 'Z') {
      auto file_pe = PeImage::Parse(local);
      if (!file_pe.ok()) return false;
      // The PE headers as the target mapped them (file offset 0 of the mapping).
      for (const elf::MappedRange& r : ranges_) {
        if (r.path != target_path || r.offset != 0) continue;
        std::vector<uint8_t> hdr(std::min<uint64_t>(kPeHeaderProbeBytes, r.end - r.start));
        hdr.resize(core_.ReadDumpedMemory(r.start, hdr.data(), hdr.size()));
        auto dumped_pe = PeImage::Parse(hdr);
        if (!dumped_pe.ok()) return true;  // Headers not in the dump: nothing to compare.
        return dumped_pe->timestamp() == file_pe->timestamp() &&
               dumped_pe->size_of_image() == file_pe->size_of_image();
      }
      return true;
    }
    return false;  // Data files and anything unrecognised are never substituted.
  }

  void Trace(std::string_view line) {
    if (options_.trace) options_.trace(line);
  }

  const elf::CoreFile& core_;
  const DataTargetOptions& options_;
  std::vector<elf::MappedRange> ranges_;
  std::mutex mu_;
  std::map<std::string, std::optional<LocalFile>> files_;
  std::set<std::string> traced_;
};

class CoreDataTarget final : public ICLRDataTarget,
                             public ICLRRuntimeLocator,
                             public ICLRMetadataLocator,
                             private RefCounted {
 public:
  CoreDataTarget(std::shared_ptr<const elf::CoreFile> core, DataTargetOptions options)
      : core_(std::move(core)), options_(std::move(options)), images_(*core_, options_) {}

  // IUnknown (one implementation shared by all three interfaces).
  HRESULT QueryInterface(const IID& iid, void** object) override {
    if (object == nullptr) return kE_POINTER;
    *object = nullptr;
    if (iid == kIID_IUnknown || iid == kIID_ICLRDataTarget) {
      *object = static_cast<ICLRDataTarget*>(this);
    } else if (iid == kIID_ICLRRuntimeLocator && options_.runtime_base != 0) {
      *object = static_cast<ICLRRuntimeLocator*>(this);
    } else if (iid == kIID_ICLRMetadataLocator) {
      *object = static_cast<ICLRMetadataLocator*>(this);
    } else {
      Trace(absl::StrCat("QueryInterface(", GuidToString(iid), "): E_NOINTERFACE"));
      return kE_NOINTERFACE;
    }
    Trace(absl::StrCat("QueryInterface(", GuidToString(iid), "): S_OK"));
    AddRef();
    return kS_OK;
  }
  ULONG AddRef() override { return AddRefImpl(); }
  ULONG Release() override { return ReleaseImpl(); }

  // ICLRDataTarget
  HRESULT GetMachineType(ULONG32* machine) override {
    if (machine == nullptr) return kE_POINTER;
    switch (core_->machine()) {
      case elf::kEmX86_64:
        *machine = kImageFileMachineAmd64;
        return kS_OK;
      case elf::kEmAarch64:
        *machine = kImageFileMachineArm64;
        return kS_OK;
      default:
        return kE_UNEXPECTED;
    }
  }

  HRESULT GetPointerSize(ULONG32* size) override {
    if (size == nullptr) return kE_POINTER;
    *size = 8;
    return kS_OK;
  }

  HRESULT GetImageBase(const WCHAR* image_path, CLRDATA_ADDRESS* base) override {
    if (image_path == nullptr || base == nullptr) return kE_POINTER;
    const std::string wanted = absl::AsciiStrToLower(Utf16ToUtf8(image_path));
    const bool has_dir = wanted.find('/') != std::string::npos;
    auto matches = [&](const std::string& path) {
      const std::string lower = absl::AsciiStrToLower(path);
      return has_dir ? lower == wanted : BaseName(lower) == wanted;
    };
    for (const elf::CoreModule& m : core_->modules()) {
      if (matches(m.path)) {
        *base = m.base;
        return kS_OK;
      }
    }
    // Non-ELF mappings (assemblies): the mapping of file offset 0.
    for (const elf::MappedRange& r : core_->mapped_files()) {
      if (r.offset == 0 && matches(r.path)) {
        *base = r.start;
        return kS_OK;
      }
    }
    Trace(absl::StrCat("GetImageBase(", wanted, "): not found"));
    return kE_FAIL;
  }

  HRESULT ReadVirtual(CLRDATA_ADDRESS address, BYTE* buffer, ULONG32 requested,
                      ULONG32* done) override {
    if (done != nullptr) *done = 0;
    if (buffer == nullptr && requested != 0) return kE_POINTER;
    size_t got = 0;
    while (got < requested) {
      size_t n = core_->ReadDumpedMemory(address + got, buffer + got, requested - got);
      if (n == 0) n = images_.Read(address + got, buffer + got, requested - got);
      if (n == 0) break;
      got += n;
    }
    if (done != nullptr) *done = static_cast<ULONG32>(got);
    // "If any bytes can be processed the call is considered successful" (clrdata.idl); the DAC
    // itself treats a short count as ERROR_PARTIAL_COPY.
    return got > 0 || requested == 0 ? kS_OK : kE_FAIL;
  }

  HRESULT WriteVirtual(CLRDATA_ADDRESS, BYTE*, ULONG32, ULONG32* done) override {
    if (done != nullptr) *done = 0;
    return kE_NOTIMPL;  // A dump is read-only.
  }

  HRESULT GetTLSValue(ULONG32, ULONG32, CLRDATA_ADDRESS*) override { return kE_NOTIMPL; }
  HRESULT SetTLSValue(ULONG32, ULONG32, CLRDATA_ADDRESS) override { return kE_NOTIMPL; }

  HRESULT GetCurrentThreadID(ULONG32* thread_id) override {
    if (thread_id == nullptr) return kE_POINTER;
    if (core_->threads().empty()) return kE_FAIL;
    *thread_id = core_->threads().front().tid;  // The thread that received the signal.
    return kS_OK;
  }

  HRESULT GetThreadContext(ULONG32 thread_id, ULONG32 flags, ULONG32 size, BYTE* context) override {
    if (context == nullptr) return kE_POINTER;
    if (core_->machine() != elf::kEmX86_64) return kE_NOTIMPL;
    for (const elf::CoreThread& t : core_->threads()) {
      if (t.tid != thread_id) continue;
      absl::Status st = FillAmd64Context(t, std::span<uint8_t>(context, size));
      return st.ok() ? kS_OK : kE_INVALIDARG;
    }
    Trace(absl::StrCat("GetThreadContext(", thread_id, "): no such thread in the dump"));
    return kE_FAIL;
  }

  HRESULT SetThreadContext(ULONG32, ULONG32, BYTE*) override { return kE_NOTIMPL; }
  HRESULT Request(ULONG32, ULONG32, BYTE*, ULONG32, BYTE*) override { return kE_NOTIMPL; }

  // ICLRRuntimeLocator
  HRESULT GetRuntimeBase(CLRDATA_ADDRESS* base) override {
    if (base == nullptr) return kE_POINTER;
    *base = options_.runtime_base;
    return kS_OK;
  }

  // ICLRMetadataLocator
  HRESULT GetMetadata(const WCHAR* image_path, ULONG32 timestamp, ULONG32 image_size, GUID*,
                      ULONG32 md_rva, ULONG32, ULONG32 buffer_size, BYTE* buffer,
                      ULONG32* data_size) override {
    if (image_path == nullptr || (buffer == nullptr && buffer_size != 0)) return kE_POINTER;
    const std::string path = Utf16ToUtf8(image_path);
    const elf::MappedFile* file = images_.FileFor(path);
    if (file == nullptr) {
      Trace(absl::StrCat("GetMetadata(", path, "): no local copy of the file"));
      return kE_FILE_NOT_FOUND;
    }
    auto pe = PeImage::Parse(file->bytes());
    if (!pe.ok() || pe->timestamp() != timestamp || pe->size_of_image() != image_size) {
      Trace(absl::StrCat("GetMetadata(", path, "): local file is a different build"));
      return kE_FAIL;
    }
    auto md = md_rva == 0 ? pe->Metadata() : pe->BytesAtRva(md_rva, buffer_size);
    if (!md.ok()) {
      Trace(absl::StrCat("GetMetadata(", path, "): ", md.status().ToString()));
      return kE_FAIL;
    }
    const size_t n = std::min<size_t>(buffer_size, md->size());
    std::memcpy(buffer, md->data(), n);
    if (data_size != nullptr) *data_size = static_cast<ULONG32>(n);
    return kS_OK;
  }

 private:
  void Trace(std::string_view line) {
    if (options_.trace) options_.trace(line);
  }

  std::shared_ptr<const elf::CoreFile> core_;
  DataTargetOptions options_;
  LocalImages images_;
};

}  // namespace

ComPtr<ICLRDataTarget> MakeCoreDataTarget(std::shared_ptr<const elf::CoreFile> core,
                                          DataTargetOptions options) {
  return ComPtr<ICLRDataTarget>::Adopt(new CoreDataTarget(std::move(core), std::move(options)));
}

}  // namespace clrdiag::dac
