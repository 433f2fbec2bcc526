// Unit tests of CoreFile over hand-made cores; real createdump dumps are read by
// tests/elf/core_file_dump_test.cc.
#include "core/elf/core_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace clrdiag::elf {
namespace {

constexpr uint32_t kPtNoteType = 4;
constexpr char kElfMagic[] = "\177ELF";

template <typename T>
void Put(std::vector<uint8_t>& v, size_t off, T value) {
  if (v.size() < off + sizeof(T)) v.resize(off + sizeof(T));
  std::memcpy(v.data() + off, &value, sizeof(T));
}

void Append(std::vector<uint8_t>& v, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  v.insert(v.end(), b, b + n);
}

void Pad4(std::vector<uint8_t>& v) {
  while (v.size() % 4) v.push_back(0);
}

std::vector<uint8_t> NoteBytes(const std::string& name, uint32_t type,
                               const std::vector<uint8_t>& desc) {
  std::vector<uint8_t> v;
  uint32_t hdr[3] = {static_cast<uint32_t>(name.size() + 1), static_cast<uint32_t>(desc.size()),
                     type};
  Append(v, hdr, sizeof(hdr));
  Append(v, name.c_str(), name.size() + 1);
  Pad4(v);
  Append(v, desc.data(), desc.size());
  Pad4(v);
  return v;
}

// Builds an ELF64 core: header, PT_NOTE first, one PT_LOAD per AddLoad (in call order), the
// notes, then the segment bytes.
class CoreBuilder {
 public:
  CoreBuilder& Load(uint64_t vaddr, std::vector<uint8_t> data, uint64_t memsz = 0) {
    loads_.push_back({vaddr, memsz ? memsz : data.size(), std::move(data)});
    return *this;
  }
  CoreBuilder& Note(const std::string& name, uint32_t type, const std::vector<uint8_t>& desc) {
    auto b = NoteBytes(name, type, desc);
    notes_.insert(notes_.end(), b.begin(), b.end());
    return *this;
  }
  CoreBuilder& Type(uint16_t t) {
    type_ = t;
    return *this;
  }
  CoreBuilder& Machine(uint16_t m) {
    machine_ = m;
    return *this;
  }
  CoreBuilder& ExtendedNumbering() {
    extended_ = true;
    return *this;
  }

  std::vector<uint8_t> Build() const {
    const size_t phnum = 1 + loads_.size();
    std::vector<uint8_t> out(64 + 56 * phnum, 0);
    std::memcpy(out.data(), kElfMagic, 4);
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    Put<uint16_t>(out, 16, type_);
    Put<uint16_t>(out, 18, machine_);
    Put<uint64_t>(out, 32, 64);
    Put<uint16_t>(out, 52, 64);
    Put<uint16_t>(out, 54, 56);
    Put<uint16_t>(out, 56, extended_ ? 0xFFFF : static_cast<uint16_t>(phnum));
    const size_t note_off = out.size();
    out.insert(out.end(), notes_.begin(), notes_.end());
    WritePhdr(out, 0, kPtNoteType, note_off, 0, notes_.size(), 0);
    for (size_t i = 0; i < loads_.size(); ++i) {
      const size_t off = out.size();
      out.insert(out.end(), loads_[i].data.begin(), loads_[i].data.end());
      WritePhdr(out, i + 1, kPtLoad, off, loads_[i].vaddr, loads_[i].data.size(), loads_[i].memsz);
    }
    if (extended_) {
      // Section header 0 carries the real program header count in sh_info.
      const size_t shoff = out.size();
      out.resize(shoff + 64, 0);
      Put<uint64_t>(out, 40, shoff);
      Put<uint16_t>(out, 58, 64);
      Put<uint16_t>(out, 60, 1);
      Put<uint32_t>(out, shoff + 44, static_cast<uint32_t>(phnum));
    }
    return out;
  }

 private:
  struct Seg {
    uint64_t vaddr, memsz;
    std::vector<uint8_t> data;
  };
  static void WritePhdr(std::vector<uint8_t>& out, size_t i, uint32_t type, uint64_t off,
                        uint64_t vaddr, uint64_t filesz, uint64_t memsz) {
    const size_t p = 64 + 56 * i;
    Put<uint32_t>(out, p, type);
    Put<uint32_t>(out, p + 4, 4);
    Put<uint64_t>(out, p + 8, off);
    Put<uint64_t>(out, p + 16, vaddr);
    Put<uint64_t>(out, p + 32, filesz);
    Put<uint64_t>(out, p + 40, memsz);
    Put<uint64_t>(out, p + 48, 4096);
  }
  std::vector<Seg> loads_;
  std::vector<uint8_t> notes_;
  uint16_t type_ = kEtCore;
  uint16_t machine_ = kEmX86_64;
  bool extended_ = false;
};

std::vector<uint8_t> Filled(size_t n, uint8_t b) { return std::vector<uint8_t>(n, b); }

std::vector<uint8_t> Prstatus(uint32_t tid, int16_t sig, uint64_t rip, uint64_t rsp) {
  std::vector<uint8_t> d(336, 0);
  Put<int16_t>(d, 12, sig);
  Put<uint32_t>(d, 32, tid);
  Put<uint64_t>(d, 112 + 16 * 8, rip);
  Put<uint64_t>(d, 112 + 19 * 8, rsp);
  Put<uint64_t>(d, 112 + 0 * 8, 0x1515);   // r15
  Put<uint64_t>(d, 112 + 26 * 8, 0x6767);  // gs
  return d;
}

struct FileEntry {
  uint64_t start, end, pgoff;
  std::string path;
};
std::vector<uint8_t> NtFile(const std::vector<FileEntry>& entries, uint64_t page = 4096) {
  std::vector<uint8_t> d;
  uint64_t head[2] = {entries.size(), page};
  Append(d, head, sizeof(head));
  for (const auto& e : entries) {
    uint64_t t[3] = {e.start, e.end, e.pgoff};
    Append(d, t, sizeof(t));
  }
  for (const auto& e : entries) Append(d, e.path.c_str(), e.path.size() + 1);
  return d;
}

// A minimal in-memory ELF shared object image: header, PT_LOAD (offset 0, vaddr 0) and a
// PT_NOTE at vaddr 0x200 holding a GNU build-id.
std::vector<uint8_t> SharedObjectImage(const std::vector<uint8_t>& build_id) {
  std::vector<uint8_t> img(4096, 0);
  std::memcpy(img.data(), kElfMagic, 4);
  img[4] = 2;
  img[5] = 1;
  Put<uint16_t>(img, 16, kEtDyn);
  Put<uint64_t>(img, 32, 64);
  Put<uint16_t>(img, 54, 56);
  Put<uint16_t>(img, 56, 2);
  auto note = NoteBytes("GNU", kNtGnuBuildId, build_id);
  Put<uint32_t>(img, 64, kPtLoad);
  Put<uint64_t>(img, 64 + 32, 4096);
  Put<uint64_t>(img, 64 + 40, 4096);
  Put<uint32_t>(img, 120, kPtNoteType);
  Put<uint64_t>(img, 120 + 8, 0x200);
  Put<uint64_t>(img, 120 + 16, 0x200);
  Put<uint64_t>(img, 120 + 32, note.size());
  std::memcpy(img.data() + 0x200, note.data(), note.size());
  return img;
}

std::unique_ptr<CoreFile> MustOpen(const std::vector<uint8_t>& bytes) {
  auto core = CoreFile::OpenBytes(bytes);
  EXPECT_TRUE(core.ok()) << core.status();
  return core.ok() ? std::move(*core) : nullptr;
}

TEST(CoreFileTest, ReadContinuesAcrossTouchingSegmentsAndStopsAtGaps) {
  // Listed out of order on purpose: lookup must not depend on program header order.
  auto bytes = CoreBuilder()
                   .Load(0x2000, Filled(0x1000, 'b'))
                   .Load(0x5000, Filled(0x1000, 'c'))
                   .Load(0x1000, Filled(0x1000, 'a'))
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  char buf[0x3000];
  ASSERT_EQ(core->ReadMemory(0x1ff0, buf, 32), 32u);
  EXPECT_EQ(std::string(buf, 16), std::string(16, 'a'));
  EXPECT_EQ(std::string(buf + 16, 16), std::string(16, 'b'));
  // 0x3000..0x5000 is a gap: the read stops there.
  EXPECT_EQ(core->ReadMemory(0x2ff0, buf, 0x3000), 16u);
  EXPECT_EQ(core->ReadMemory(0x3000, buf, 1), 0u);
  EXPECT_EQ(core->ReadMemory(0x0, buf, 1), 0u);
  EXPECT_EQ(core->ReadMemory(0x5800, buf, 0x1000), 0x800u);
  EXPECT_EQ(core->ReadMemory(0x6000, buf, 1), 0u);
  EXPECT_EQ(core->ReadMemory(0x1000, buf, 0), 0u);
  EXPECT_TRUE(core->Contains(0x1000));
  EXPECT_TRUE(core->Contains(0x5fff));
  EXPECT_FALSE(core->Contains(0x3000));
  EXPECT_FALSE(core->Contains(0x6000));
}

TEST(CoreFileTest, MemszTailReadsZerosButIsNotDumped) {
  auto bytes = CoreBuilder()
                   .Load(0x10000, Filled(0x100, 'x'), 0x1000)
                   .Load(0x11000, Filled(0x10, 'y'))
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  uint8_t buf[0x2000];
  std::memset(buf, 0xEE, sizeof(buf));
  ASSERT_EQ(core->ReadMemory(0x100f0, buf, 0x20), 0x20u);
  EXPECT_EQ(buf[0xf], 'x');
  EXPECT_EQ(buf[0x10], 0);
  EXPECT_EQ(buf[0x1f], 0);
  // The zero tail runs into the touching segment.
  EXPECT_EQ(core->ReadMemory(0x10ff0, buf, 0x100), 0x20u);
  EXPECT_EQ(buf[0xf], 0);
  EXPECT_EQ(buf[0x10], 'y');
  // The DAC-style read treats the tail as missing.
  EXPECT_EQ(core->ReadDumpedMemory(0x100f0, buf, 0x20), 0x10u);
  EXPECT_EQ(core->ReadDumpedMemory(0x10100, buf, 1), 0u);
  EXPECT_TRUE(core->Contains(0x100ff));
  EXPECT_FALSE(core->Contains(0x10100));
}

TEST(CoreFileTest, TruncatedSegmentsReadShortNeverPastTheFile) {
  auto bytes =
      CoreBuilder().Load(0x1000, Filled(0x1000, 'a')).Load(0x2000, Filled(0x1000, 'b')).Build();
  bytes.resize(bytes.size() - 0x1800);  // half of 'a' and none of 'b' remain
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  std::vector<uint8_t> buf(0x2000);
  EXPECT_EQ(core->ReadMemory(0x1000, buf.data(), buf.size()), 0x800u);
  EXPECT_EQ(core->ReadMemory(0x2000, buf.data(), 1), 0u);
  EXPECT_EQ(core->ReadDumpedMemory(0x1000, buf.data(), buf.size()), 0x800u);
  EXPECT_TRUE(core->Contains(0x17ff));
  EXPECT_FALSE(core->Contains(0x1800));
}

TEST(CoreFileTest, OverlappingSegmentsAreTrimmed) {
  auto bytes = CoreBuilder()
                   .Load(0x1000, Filled(0x2000, 'a'))
                   .Load(0x2000, Filled(0x100, 'b'))
                   .Load(0x2000, Filled(0x80, 'c'))
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  char buf[0x3000];
  // 'a' is cut at 0x2000; of the two at 0x2000 the later one wins.
  ASSERT_EQ(core->ReadMemory(0x1ffe, buf, 0x3000), 0x82u);
  EXPECT_EQ(buf[1], 'a');
  EXPECT_EQ(buf[2], 'c');
}

TEST(CoreFileTest, ThreadsFromPrstatusWithTheirFpregset) {
  std::vector<uint8_t> fp(512, 0x42);
  auto bytes = CoreBuilder()
                   .Note("CORE", kNtPrpsinfo, Filled(136, 0))
                   .Note("CORE", kNtPrstatus, Prstatus(100, 6, 0x7000, 0x8000))
                   .Note("CORE", kNtFpregset, fp)
                   .Note("LINUX", 0x202, Filled(64, 1))  // NT_X86_XSTATE: ignored
                   .Note("CORE", kNtPrstatus, Prstatus(101, 0, 0x7100, 0x8100))
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->machine(), kEmX86_64);
  ASSERT_EQ(core->threads().size(), 2u);
  const CoreThread& t0 = core->threads()[0];
  EXPECT_EQ(t0.tid, 100u);
  EXPECT_EQ(t0.signal, 6);
  EXPECT_EQ(t0.regs.rip, 0x7000u);
  EXPECT_EQ(t0.regs.rsp, 0x8000u);
  EXPECT_EQ(t0.regs.r15, 0x1515u);
  EXPECT_EQ(t0.regs.gs, 0x6767u);
  EXPECT_EQ(t0.raw_regs.size(), 216u);
  ASSERT_EQ(t0.fpregs.size(), 512u);
  EXPECT_EQ(t0.fpregs[0], 0x42);
  const CoreThread& t1 = core->threads()[1];
  EXPECT_EQ(t1.tid, 101u);
  EXPECT_EQ(t1.regs.rip, 0x7100u);
  EXPECT_TRUE(t1.fpregs.empty());
}

TEST(CoreFileTest, Arm64ThreadsKeepRawRegisters) {
  std::vector<uint8_t> prstatus(392, 0);  // struct elf_prstatus on arm64
  Put<uint32_t>(prstatus, 32, 55);
  Put<uint64_t>(prstatus, 112 + 32 * 8, 0x4000);  // pc
  auto core =
      MustOpen(CoreBuilder().Machine(kEmAarch64).Note("CORE", kNtPrstatus, prstatus).Build());
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->machine(), kEmAarch64);
  ASSERT_EQ(core->threads().size(), 1u);
  EXPECT_EQ(core->threads()[0].tid, 55u);
  ASSERT_EQ(core->threads()[0].raw_regs.size(), 34u * 8);
  uint64_t pc = 0;
  std::memcpy(&pc, core->threads()[0].raw_regs.data() + 32 * 8, 8);
  EXPECT_EQ(pc, 0x4000u);
}

TEST(CoreFileTest, AuxvPairs) {
  std::vector<uint8_t> auxv;
  uint64_t pairs[] = {6, 4096, 25, 0x7ffc0000, 0, 0};
  Append(auxv, pairs, sizeof(pairs));
  auto core = MustOpen(CoreBuilder().Note("CORE", kNtAuxv, auxv).Build());
  ASSERT_NE(core, nullptr);
  ASSERT_EQ(core->auxv().size(), 3u);
  EXPECT_EQ(core->auxv()[0], std::make_pair(uint64_t{6}, uint64_t{4096}));
  EXPECT_EQ(core->auxv()[1].second, 0x7ffc0000u);
}

TEST(CoreFileTest, ModulesFromNtFileWithBuildIdFromDumpMemory) {
  const std::vector<uint8_t> id = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x23};
  std::vector<uint8_t> data = Filled(4096, 0);
  std::memcpy(data.data(), "just some data", 14);
  auto bytes = CoreBuilder()
                   .Note("CORE", kNtFile,
                         NtFile({
                             {0x12000, 0x13000, 2, "/lib/libfoo.so"},
                             {0x10000, 0x11000, 0, "/lib/libfoo.so"},
                             {0x11000, 0x12000, 1, "/lib/libfoo.so"},
                             {0x20000, 0x21000, 0, "/data/file.bin"},
                             {0x30000, 0x31000, 0, "/lib/libgone.so"},
                         }))
                   .Load(0x10000, SharedObjectImage(id))
                   .Load(0x20000, data)
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  ASSERT_EQ(core->mapped_files().size(), 5u);
  EXPECT_EQ(core->mapped_files()[0].offset, 2u * 4096);
  EXPECT_EQ(core->mapped_files()[0].path, "/lib/libfoo.so");
  EXPECT_EQ(core->mapped_files()[4].path, "/lib/libgone.so");
  // The data file is present in memory and is not ELF: not a module. libgone's header is not
  // in the dump: a module without a build-id.
  ASSERT_EQ(core->modules().size(), 2u);
  const CoreModule& foo = core->modules()[0];
  EXPECT_EQ(foo.path, "/lib/libfoo.so");
  EXPECT_EQ(foo.base, 0x10000u);
  EXPECT_EQ(foo.end, 0x13000u);
  EXPECT_EQ(foo.build_id, "deadbeef0123");
  EXPECT_EQ(core->modules()[1].path, "/lib/libgone.so");
  EXPECT_EQ(core->modules()[1].build_id, "");
}

TEST(CoreFileTest, ExtendedProgramHeaderCount) {
  auto bytes = CoreBuilder()
                   .ExtendedNumbering()
                   .Note("CORE", kNtPrstatus, Prstatus(7, 0, 1, 2))
                   .Load(0x1000, Filled(16, 'z'))
                   .Build();
  auto core = MustOpen(bytes);
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->threads().size(), 1u);
  char c = 0;
  EXPECT_EQ(core->ReadMemory(0x100f, &c, 1), 1u);
  EXPECT_EQ(c, 'z');
}

TEST(CoreFileTest, WrongFilesAreInvalidArgument) {
  std::vector<uint8_t> junk(4096, 'x');
  EXPECT_EQ(CoreFile::OpenBytes(junk).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CoreFile::OpenBytes({}).status().code(), absl::StatusCode::kInvalidArgument);
  auto exec = CoreBuilder().Type(kEtExec).Build();
  EXPECT_EQ(CoreFile::OpenBytes(exec).status().code(), absl::StatusCode::kInvalidArgument);
  char text_path[] = "/tmp/clrdiag-not-a-core-XXXXXX";
  int fd = ::mkstemp(text_path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "hello, not a core\n", 18), 18);
  ::close(fd);
  auto text = CoreFile::Open(text_path);
  ::unlink(text_path);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument) << text.status();
  auto bin_true = CoreFile::Open("/bin/true");
  EXPECT_EQ(bin_true.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bin_true.status().message().find("/bin/true"), std::string::npos);
  EXPECT_EQ(CoreFile::Open("/nonexistent/core").status().code(), absl::StatusCode::kNotFound);
}

TEST(CoreFileTest, DamagedCoresAreDataLoss) {
  auto good = CoreBuilder()
                  .Note("CORE", kNtPrstatus, Prstatus(7, 0, 1, 2))
                  .Load(0x1000, Filled(16, 'z'))
                  .Build();
  std::vector<uint8_t> header_only(good.begin(), good.begin() + 100);
  EXPECT_EQ(CoreFile::OpenBytes(header_only).status().code(), absl::StatusCode::kDataLoss);

  auto short_prstatus = CoreBuilder().Note("CORE", kNtPrstatus, Filled(200, 0)).Build();
  EXPECT_EQ(CoreFile::OpenBytes(short_prstatus).status().code(), absl::StatusCode::kDataLoss);

  auto nt_file = NtFile({{0x1000, 0x2000, 0, "/a"}});
  Put<uint64_t>(nt_file, 0, 1000000);  // more entries than bytes
  auto bad_count = CoreBuilder().Note("CORE", kNtFile, nt_file).Build();
  EXPECT_EQ(CoreFile::OpenBytes(bad_count).status().code(), absl::StatusCode::kDataLoss);

  auto no_names = NtFile({{0x1000, 0x2000, 0, "/a"}});
  no_names.resize(16 + 24);
  auto missing = CoreBuilder().Note("CORE", kNtFile, no_names).Build();
  EXPECT_EQ(CoreFile::OpenBytes(missing).status().code(), absl::StatusCode::kDataLoss);

  auto overflow = NtFile({{0x1000, 0x2000, uint64_t{1} << 60, "/a"}});
  auto bad_offset = CoreBuilder().Note("CORE", kNtFile, overflow).Build();
  EXPECT_EQ(CoreFile::OpenBytes(bad_offset).status().code(), absl::StatusCode::kDataLoss);

  auto bad_note = good;
  Put<uint32_t>(bad_note, 64 + 56 * 2 + 4, 0x7fffffff);  // descsz of the first note
  EXPECT_EQ(CoreFile::OpenBytes(bad_note).status().code(), absl::StatusCode::kDataLoss);
}

TEST(CoreFileTest, EveryPrefixOfACoreOpensOrFailsCleanly) {
  const std::vector<uint8_t> id = {1, 2, 3, 4};
  auto full = CoreBuilder()
                  .Note("CORE", kNtAuxv, Filled(32, 1))
                  .Note("CORE", kNtFile, NtFile({{0x10000, 0x11000, 0, "/lib/libfoo.so"}}))
                  .Note("CORE", kNtPrstatus, Prstatus(7, 0, 0x10000, 0x10010))
                  .Note("CORE", kNtFpregset, Filled(512, 0))
                  .Load(0x10000, SharedObjectImage(id))
                  .Build();
  for (size_t n = 0; n <= full.size(); ++n) {
    // A copy of exactly n bytes, so that ASan sees any read past the end.
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    auto core = CoreFile::OpenBytes(prefix);
    if (!core.ok()) continue;
    std::vector<uint8_t> buf(8192);
    size_t got = (*core)->ReadMemory(0x10000, buf.data(), buf.size());
    EXPECT_LE(got, 4096u);
    for (const CoreThread& t : (*core)->threads()) (*core)->ReadMemory(t.regs.rsp, buf.data(), 64);
    if (n == full.size()) {
      EXPECT_EQ(got, 4096u);
      ASSERT_EQ((*core)->modules().size(), 1u);
      EXPECT_EQ((*core)->modules()[0].build_id, "01020304");
    }
  }
}

// A core written to a temp file, removed at the end of the test.
class TempCore {
 public:
  TempCore() {
    char path[] = "/tmp/clrdiag-core-test-XXXXXX";
    fd_ = ::mkstemp(path);
    path_ = path;
  }
  ~TempCore() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool Write(const void* p, size_t n) {
    return fd_ >= 0 && ::write(fd_, p, n) == static_cast<ssize_t>(n);
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// VmRSS of this process in bytes (0 if unknown).
uint64_t RssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kb = std::strtoull(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

// The 8-byte word at segment offset `k` (a multiple of 8) of the big test segment.
uint64_t Word(uint64_t k) { return (k * 0x9E3779B97F4A7C15ull) ^ 0x5a5a5a5a5a5a5a5aull; }

// A core much bigger than the read cache, read from disk: every kind of read returns the right
// bytes (small ones through the chunk cache, across chunk boundaries, large ones past it, short
// ones at the end of the file), and reading every page of it leaves the process's RSS within
// the cache budget (a mapping would have made all of it resident).
TEST(CoreFileTest, FileReadsAreCorrectAndResidentMemoryStaysWithinTheCache) {
  constexpr uint64_t kVaddr = 0x7f0000000000;
  constexpr uint64_t kSegBytes = 6 * kCoreCacheBytes + 12345 * 8;
  constexpr uint64_t kClaimed = kSegBytes + 3 * 4096;  // the file is cut short by 3 pages
  auto head = CoreBuilder()
                  .Note("CORE", kNtPrstatus, Prstatus(7, 0, kVaddr + 8, kVaddr + 4096))
                  .Load(kVaddr, {}, 1)
                  .Build();
  // The segment's bytes start where Build() ended; give it its real size.
  const uint64_t seg_off = head.size();
  Put<uint64_t>(head, 64 + 56 + 8, seg_off);
  Put<uint64_t>(head, 64 + 56 + 32, kClaimed);
  Put<uint64_t>(head, 64 + 56 + 40, kClaimed);
  TempCore file;
  ASSERT_TRUE(file.Write(head.data(), head.size()));
  std::vector<uint64_t> piece(1 << 17);  // 1 MiB
  for (uint64_t k = 0; k < kSegBytes; k += piece.size() * 8) {
    const size_t words = static_cast<size_t>(std::min<uint64_t>(piece.size(), (kSegBytes - k) / 8));
    for (size_t i = 0; i < words; ++i) piece[i] = Word(k + i * 8);
    ASSERT_TRUE(file.Write(piece.data(), words * 8));
  }
  piece = {};
  piece.shrink_to_fit();

  const uint64_t rss_before = RssBytes();
  auto opened = CoreFile::Open(file.path());
  ASSERT_TRUE(opened.ok()) << opened.status();
  const CoreFile& core = **opened;
  ASSERT_EQ(core.threads().size(), 1u);
  EXPECT_EQ(core.threads()[0].tid, 7u);

  auto expect_bytes = [&](uint64_t rel, const uint8_t* got, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const uint64_t k = rel + i;
      const uint64_t w = Word(k & ~uint64_t{7});
      ASSERT_EQ(got[i], static_cast<uint8_t>(w >> (8 * (k & 7)))) << "segment offset " << k;
    }
  };
  uint8_t small[24];
  for (uint64_t rel = 0; rel + sizeof(small) <= kSegBytes; rel += 4096) {
    ASSERT_EQ(core.ReadDumpedMemory(kVaddr + rel + 5, small, sizeof(small)), sizeof(small));
    expect_bytes(rel + 5, small, sizeof(small));
  }
  // Straddling two cache chunks (the segment starts at an unaligned file offset, so chunk
  // boundaries fall anywhere; read across every 64th one of them).
  for (uint64_t c = kCoreCacheChunkBytes; c + sizeof(small) < seg_off + kSegBytes;
       c += 64 * kCoreCacheChunkBytes) {
    const uint64_t rel = c - seg_off - 10;
    ASSERT_EQ(core.ReadMemory(kVaddr + rel, small, sizeof(small)), sizeof(small));
    expect_bytes(rel, small, sizeof(small));
  }
  // Large reads go around the cache.
  std::vector<uint8_t> big(3 * kCoreCacheChunkBytes + 17);
  ASSERT_EQ(core.ReadDumpedMemory(kVaddr + 1000003, big.data(), big.size()), big.size());
  expect_bytes(1000003, big.data(), big.size());
  // The file ends before the segment does: reads stop at its last byte.
  EXPECT_EQ(core.ReadDumpedMemory(kVaddr + kSegBytes - 5, small, sizeof(small)), 5u);
  expect_bytes(kSegBytes - 5, small, 5);
  EXPECT_EQ(core.ReadMemory(kVaddr + kSegBytes - 5, big.data(), big.size()), 5u);
  EXPECT_EQ(core.ReadDumpedMemory(kVaddr + kSegBytes, small, 1), 0u);
  EXPECT_TRUE(core.Contains(kVaddr + kSegBytes - 1));
  EXPECT_FALSE(core.Contains(kVaddr + kSegBytes));

  const uint64_t rss_after = RssBytes();
  ASSERT_GT(rss_before, 0u);
#if !defined(__SANITIZE_ADDRESS__)
  // Not under ASan: its allocator keeps freed blocks resident in a quarantine (256 MiB by
  // default) and adds shadow pages, so RSS says nothing about the cache there (measured 17 ->
  // 45 MiB).
  EXPECT_LT(rss_after, rss_before + kCoreCacheBytes + (uint64_t{4} << 20))
      << "reading a " << (kSegBytes >> 20) << " MiB core grew RSS from " << (rss_before >> 20)
      << " to " << (rss_after >> 20) << " MiB";
#endif
}

// Open (from disk) and OpenBytes (from memory) index the same core the same way.
TEST(CoreFileTest, OpenFromDiskMatchesOpenBytes) {
  const std::vector<uint8_t> id = {9, 8, 7, 6};
  auto bytes = CoreBuilder()
                   .Note("CORE", kNtFile, NtFile({{0x10000, 0x11000, 0, "/lib/libbar.so"}}))
                   .Note("CORE", kNtPrstatus, Prstatus(42, 11, 0x10000, 0x10010))
                   .Note("CORE", kNtFpregset, Filled(512, 0xab))
                   .Load(0x10000, SharedObjectImage(id))
                   .ExtendedNumbering()
                   .Build();
  TempCore file;
  ASSERT_TRUE(file.Write(bytes.data(), bytes.size()));
  auto disk = CoreFile::Open(file.path());
  ASSERT_TRUE(disk.ok()) << disk.status();
  auto mem = MustOpen(bytes);
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ((*disk)->threads().size(), 1u);
  EXPECT_EQ((*disk)->threads()[0].tid, 42u);
  EXPECT_EQ((*disk)->threads()[0].signal, 11);
  ASSERT_EQ((*disk)->threads()[0].fpregs.size(), 512u);
  EXPECT_EQ((*disk)->threads()[0].fpregs[511], 0xab);
  ASSERT_EQ((*disk)->modules().size(), 1u);
  EXPECT_EQ((*disk)->modules()[0].build_id, "09080706");
  EXPECT_EQ((*disk)->modules()[0].path, mem->modules()[0].path);
  std::vector<uint8_t> a(5000), b(5000);
  EXPECT_EQ((*disk)->ReadMemory(0x10000, a.data(), a.size()), 4096u);
  EXPECT_EQ(mem->ReadMemory(0x10000, b.data(), b.size()), 4096u);
  EXPECT_EQ(a, b);
  // The same damage is reported the same way from disk.
  TempCore cut;
  ASSERT_TRUE(cut.Write(bytes.data(), 100));
  EXPECT_EQ(CoreFile::Open(cut.path()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace clrdiag::elf
