#include "core/dac/dac_locator.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/elf/elf_file.h"

namespace clrdiag::dac {
namespace {

constexpr std::string_view kVersionMarker = "@(#)Version ";
// Longest version string we accept ("10.0.1226.42308 @Commit: <40 hex>" is ~65 bytes).
constexpr size_t kMaxVersionString = 256;
// The runtime's mappings are scanned in chunks this large (overlapping by the marker
// length so a marker straddling two chunks is still found).
constexpr size_t kScanChunk = 1 << 20;

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A directory the dump names may be anyone's: its DAC is only loaded (into a worker with the
// daemon's rights) when the directory and both files belong to root or to us and no one else
// may write them, like a runtime installed by the administrator.
bool OwnedByUsAndNotWritableByOthers(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_uid == 0 || st.st_uid == ::geteuid()) &&
         (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

bool TrustedRuntimeDir(const std::string& dir) {
  return OwnedByUsAndNotWritableByOthers(dir) &&
         OwnedByUsAndNotWritableByOthers(absl::StrCat(dir, "/", kCoreClrName)) &&
         OwnedByUsAndNotWritableByOthers(absl::StrCat(dir, "/", kDacName));
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

constexpr uint32_t kPfW = 2;  // PT_LOAD flag: writable

// Scans dumped memory [start, end) for the version string, in chunks.
std::string ScanDump(const elf::CoreFile& core, uint64_t start, uint64_t end) {
  std::unique_ptr<uint8_t[]> buf;
  for (uint64_t addr = start; addr < end;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kScanChunk, end - addr));
    if (!buf) buf.reset(new uint8_t[kScanChunk]);  // no zero-fill: only `got` bytes are used
    const size_t got = core.ReadDumpedMemory(addr, buf.get(), want);
    if (got == 0) {
      addr = (addr | 4095) + 1;  // Not dumped: skip to the next page and retry.
      continue;
    }
    std::string v = FindVersionString(std::span<const uint8_t>(buf.get(), got));
    if (!v.empty()) return v;
    addr += got > kVersionMarker.size() + kMaxVersionString
                ? got - kVersionMarker.size() - kMaxVersionString
                : got;
  }
  return "";
}

// The writable PT_LOAD segments ([vaddr, vaddr + memsz), link-time addresses) and the link
// base of an ELF image read through `read` (from offset/address 0 of the image); nullopt if
// the headers cannot be read. The version string is a writable global of the runtime.
struct WritableSegments {
  uint64_t link_base = 0;
  std::vector<elf::ProgramHeader> segments;
};
std::optional<WritableSegments> FindWritableSegments(
    const std::function<size_t(uint64_t, void*, size_t)>& read) {
  uint8_t eh[64];
  if (read(0, eh, sizeof(eh)) != sizeof(eh) ||
      std::memcmp(eh,
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      eh[4] != 2 || eh[5] != 1) {
    return std::nullopt;
  }
  uint64_t phoff = 0;
  uint16_t phentsize = 0, phnum = 0;
  std::memcpy(&phoff, eh + 0x20, 8);
  std::memcpy(&phentsize, eh + 0x36, 2);
  std::memcpy(&phnum, eh + 0x38, 2);
  if (phentsize < 56 || phnum == 0 || phnum > 256) return std::nullopt;
  WritableSegments out;
  bool first_load = true;
  for (uint16_t i = 0; i < phnum; ++i) {
    uint8_t ph[56];
    if (read(phoff + uint64_t{i} * phentsize, ph, sizeof(ph)) != sizeof(ph)) return std::nullopt;
    elf::ProgramHeader h;
    std::memcpy(&h.type, ph, 4);
    std::memcpy(&h.flags, ph + 4, 4);
    std::memcpy(&h.offset, ph + 8, 8);
    std::memcpy(&h.vaddr, ph + 16, 8);
    std::memcpy(&h.filesz, ph + 32, 8);
    std::memcpy(&h.memsz, ph + 40, 8);
    if (h.type != elf::kPtLoad) continue;
    if (first_load) out.link_base = h.vaddr - h.offset;
    first_load = false;
    if ((h.flags & kPfW) != 0) out.segments.push_back(h);
  }
  return out;
}

// Version string from the dumped memory of the runtime: its writable segments, found through
// its program headers in the dump; every dumped page of its mappings if those headers are not
// in the dump.
std::string VersionFromDump(const elf::CoreFile& core, const std::string& path, uint64_t base) {
  auto segs = FindWritableSegments(
      [&](uint64_t off, void* out, size_t n) { return core.ReadDumpedMemory(base + off, out, n); });
  if (segs) {
    for (const elf::ProgramHeader& h : segs->segments) {
      const uint64_t start = base + (h.vaddr - segs->link_base);
      std::string v = ScanDump(core, start, start + h.memsz);
      if (!v.empty()) return v;
    }
    return "";
  }
  for (const elf::MappedRange& r : core.mapped_files()) {
    if (r.path != path) continue;
    std::string v = ScanDump(core, r.start, r.end);
    if (!v.empty()) return v;
  }
  return "";
}

// Version string from a local copy of the runtime: its writable segments' file bytes, else
// the whole file.
std::string VersionFromFile(std::span<const uint8_t> bytes) {
  auto segs = FindWritableSegments([&](uint64_t off, void* out, size_t n) -> size_t {
    if (off > bytes.size() || bytes.size() - off < n) return 0;
    std::memcpy(out, bytes.data() + off, n);
    return n;
  });
  if (segs) {
    for (const elf::ProgramHeader& h : segs->segments) {
      if (h.offset > bytes.size()) continue;
      std::string v = FindVersionString(
          bytes.subspan(h.offset, std::min<uint64_t>(h.filesz, bytes.size() - h.offset)));
      if (!v.empty()) return v;
    }
  }
  return FindVersionString(bytes);
}

// "10.0.12" or "9.0.0-rc.2.24473.5": starts with a digit, has a dot, no slash.
bool LooksLikeVersion(std::string_view s) {
  return !s.empty() && s[0] >= '0' && s[0] <= '9' && s.find('.') != std::string_view::npos &&
         s.find('/') == std::string_view::npos;
}

std::string FrameworkVersionFromPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "";
  const std::string_view dir = path.substr(0, slash);
  const std::string_view name = BaseName(dir);
  const std::string_view parent = dir.substr(0, dir.size() - name.size());
  if (!LooksLikeVersion(name) || parent.find("Microsoft.NETCore.App") == std::string_view::npos) {
    return "";
  }
  return std::string(name);
}

struct Candidate {
  std::string dir;
  std::string source;
};

}  // namespace

std::string FindVersionString(std::span<const uint8_t> bytes) {
  std::string_view hay(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t pos = hay.find(kVersionMarker);
  while (pos != std::string_view::npos) {
    const size_t start = pos + kVersionMarker.size();
    const size_t end = hay.find('\0', start);
    if (end != std::string_view::npos && end > start && end - start <= kMaxVersionString &&
        hay[start] >= '0' && hay[start] <= '9') {
      return std::string(hay.substr(start, end - start));
    }
    pos = hay.find(kVersionMarker, pos + 1);
  }
  return "";
}

absl::StatusOr<RuntimeModule> FindRuntime(const elf::CoreFile& core) {
  for (const elf::CoreModule& m : core.modules()) {
    if (BaseName(m.path) != kCoreClrName) continue;
    RuntimeModule rt;
    rt.path = m.path;
    rt.base = m.base;
    rt.build_id = m.build_id;
    rt.version_string = VersionFromDump(core, m.path, m.base);
    rt.version = rt.version_string.substr(0, rt.version_string.find(' '));
    rt.framework_version = FrameworkVersionFromPath(m.path);
    return rt;
  }
  return absl::NotFoundError(
      "the dump has no libcoreclr.so mapped: not a .NET (CoreCLR) process, or a single-file/"
      "NativeAOT app, which is not supported yet");
}

absl::StatusOr<DacLocation> LocateDac(const RuntimeModule& runtime,
                                      const DacSearchOptions& options) {
  // What a user would download: the shared-framework version, else the file version.
  std::string version = runtime.framework_version;
  if (version.empty()) version = runtime.version;
  if (runtime.build_id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the dump does not record the build-id of ", runtime.path, " (.NET runtime ",
                     version.empty() ? "of unknown version" : version,
                     "), so no DAC can be matched to it safely"));
  }
  auto read_id = options.read_build_id ? options.read_build_id : [](const std::string& p) {
    return elf::ReadGnuBuildId(p);
  };
  std::vector<Candidate> candidates;
  for (const std::string& d : options.extra_dirs) candidates.push_back({d, "setclrpath"});
  if (!options.store_root.empty()) {
    candidates.push_back(
        {absl::StrCat(options.store_root, "/runtimes/", runtime.build_id), "store"});
  }
  if (options.runtime_dir) {
    const size_t slash = runtime.path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      candidates.push_back({runtime.path.substr(0, slash), "dump"});
    }
  }
  for (const std::string& root : options.host_framework_roots) {
    std::error_code ec;
    std::vector<std::string> versions;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
      if (entry.is_directory(ec)) versions.push_back(entry.path().string());
    }
    std::sort(versions.begin(), versions.end());
    for (std::string& v : versions) candidates.push_back({std::move(v), "host"});
  }

  std::vector<std::string> rejected;
  for (const Candidate& c : candidates) {
    DacLocation loc{c.dir, absl::StrCat(c.dir, "/", kDacName),
                    absl::StrCat(c.dir, "/", kCoreClrName), c.source, ""};
    if (!IsRegularFile(loc.coreclr_path)) {
      if (c.source == "setclrpath") rejected.push_back(absl::StrCat(c.dir, ": no ", kCoreClrName));
      continue;
    }
    absl::StatusOr<std::string> id = read_id(loc.coreclr_path);
    if (!id.ok() || *id != runtime.build_id) {
      if ((c.source != "host" && c.source != "dump") || id.ok()) {
        rejected.push_back(absl::StrCat(loc.coreclr_path, " has build-id ",
                                        id.ok() ? *id : id.status().ToString()));
      }
      continue;
    }
    if (!IsRegularFile(loc.dac_path)) {
      rejected.push_back(absl::StrCat(c.dir, ": matching ", kCoreClrName, " but no ", kDacName));
      continue;
    }
    // A DAC is code the worker runs with the daemon's (root's) rights: from a directory a
    // client named (setclrpath) or the dump named, only when root owns it like an installed
    // runtime. Anyone else's runtime goes into the store by an administrator.
    if ((c.source == "dump" || c.source == "setclrpath") && !TrustedRuntimeDir(c.dir)) {
      rejected.push_back(absl::StrCat(c.dir,
                                      ": matching runtime, but not owned by root (or "
                                      "writable by others), so its DAC is not loaded"));
      continue;
    }
    if (auto file = elf::MappedFile::Open(loc.coreclr_path); file.ok()) {
      loc.version_string = VersionFromFile(file->bytes());
    }
    return loc;
  }
  std::string msg = absl::StrCat(
      "no DAC for the dump's runtime: .NET runtime ",
      version.empty() ? "of unknown version" : version,
      runtime.version.empty() || runtime.version == version
          ? ""
          : absl::StrCat(" (file version ", runtime.version, ")"),
      ", ", kCoreClrName, " build-id ", runtime.build_id,
      ". Supply the directory holding that exact runtime's libcoreclr.so and "
      "libmscordaccore.so (the Microsoft.NETCore.App ",
      version.empty() ? "" : absl::StrCat(version, " "),
      "shared framework of the dumped machine's OS and architecture) with `setclrpath <dir>`");
  if (!options.store_root.empty()) {
    absl::StrAppend(&msg, ", or copy both files to ", options.store_root, "/runtimes/",
                    runtime.build_id, "/");
  }
  if (!rejected.empty()) {
    absl::StrAppend(&msg, ". Rejected: ", absl::StrJoin(rejected, "; "));
  }
  return absl::NotFoundError(msg);
}

}  // namespace clrdiag::dac
