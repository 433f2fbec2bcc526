// End-to-end checks of the DAC host against the reference tool: a Heap dump of the HeapApp
// fixture is analysed by clrdiag's DAC host and by `dotnet-dump analyze`, and the answers a
// user sees (heap statistics, managed threads) must agree.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/dac/clr_data.h"
#include "core/dac/dac_locator.h"
#include "core/dac/dac_process.h"
#include "core/dac/data_target.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/pe_image.h"
#include "core/dac/thread_context.h"
#include "core/elf/core_file.h"
#include "tests/dac/dac_dump_shared.h"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

constexpr int kCustomers = kDacDumpCustomers;

struct RefRow {
  uint64_t count = 0;
  uint64_t total = 0;
  std::string name;
};

uint64_t ParseN0(absl::string_view s) {
  uint64_t v = 0;
  std::string digits = absl::StrReplaceAll(s, {{",", ""}});
  return absl::SimpleAtoi(digits, &v) ? v : ~uint64_t{0};
}

// Parses the table of `dumpheap -stat` ("<mt> <count> <total> <class name>"): MT -> row.
std::map<uint64_t, RefRow> ParseDumpHeapStat(const std::string& out) {
  std::map<uint64_t, RefRow> rows;
  bool in_table = false;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "MT ")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (absl::StartsWith(line, "Total ")) break;
    absl::string_view rest = line;
    absl::string_view cols[3];
    for (absl::string_view& c : cols) {
      rest = absl::StripLeadingAsciiWhitespace(rest);
      const size_t sp = rest.find(' ');
      c = rest.substr(0, sp);
      rest = sp == absl::string_view::npos ? absl::string_view() : rest.substr(sp + 1);
    }
    uint64_t mt = 0;
    if (rest.empty() || !absl::SimpleHexAtoi(cols[0], &mt)) continue;
    rows[mt] = RefRow{ParseN0(cols[1]), ParseN0(cols[2]), std::string(rest)};
  }
  return rows;
}

// "ThreadCount:      5" from clrthreads.
int ParseThreadCount(const std::string& out) {
  size_t pos = out.find("ThreadCount:");
  if (pos == std::string::npos) return -1;
  int n = -1;
  std::istringstream(out.substr(pos + 12)) >> n;
  return n;
}

class DacDumpTest : public ::testing::Test {
 protected:
  // The run's shared dump (dac_dump_shared.h), or, run alone, one collected here.
  static void SetUpTestSuite() {
    tool_ = DacDumpReferenceTool();
    if (tool_.empty()) return;
    DacDumpFiles files = DacDumpFilesIn(SharedDacDumpDir());
    if (!FileExists(files.reference)) {
      dir_ = new TempDir("clrdiag-dac");
      setup_error_ = CollectDacDump(dir_->path());
      if (!setup_error_.empty()) return;
      files = DacDumpFilesIn(dir_->path());
    }
    dump_ = files.dump;
    reference_ = ReadFile(files.reference);
  }

  static void TearDownTestSuite() {
    delete dir_;  // Removes the dump.
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_FALSE(tool_.empty()) << "the reference dotnet-dump is not installed: run "
                                   "WITH_REFERENCE=1 scripts/install-deps.sh";
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    auto core = elf::CoreFile::Open(dump_);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
    auto rt = dac::FindRuntime(*core_);
    ASSERT_TRUE(rt.ok()) << rt.status();
    auto loc = dac::LocateDac(*rt, {});
    ASSERT_TRUE(loc.ok()) << loc.status();
    dac::DacProcess::Options opts;
    opts.dac_path = loc->dac_path;
    opts.target.runtime_base = rt->base;
    opts.target.file_substitutes[rt->path] = loc->coreclr_path;
    auto dac = dac::DacProcess::Open(core_, std::move(opts));
    ASSERT_TRUE(dac.ok()) << dac.status();
    dac_ = std::move(*dac);
  }

  static inline std::string tool_;
  static inline TempDir* dir_ = nullptr;
  static inline std::string dump_;
  static inline std::string reference_;
  static inline std::string setup_error_;
  std::shared_ptr<const elf::CoreFile> core_;
  std::unique_ptr<dac::DacProcess> dac_;
};

TEST_F(DacDumpTest, HeapStatsMatchDotnetDump) {
  std::map<uint64_t, RefRow> ref = ParseDumpHeapStat(reference_);
  ASSERT_FALSE(ref.empty()) << reference_;
  auto stats = dac::ComputeHeapStats(*dac_);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->warnings.empty()) << stats->warnings.front();

  const dac::TypeStat* customer = nullptr;
  const dac::TypeStat* string = nullptr;
  for (const dac::TypeStat& t : stats->types) {
    if (t.name == "Fixture.Customer") customer = &t;
    if (t.name == "System.String") string = &t;
  }
  ASSERT_NE(customer, nullptr);
  ASSERT_NE(string, nullptr);
  EXPECT_EQ(customer->count, static_cast<uint64_t>(kCustomers));
  ASSERT_TRUE(ref.count(customer->mt));
  EXPECT_EQ(ref[customer->mt].name, "Fixture.Customer");
  EXPECT_EQ(customer->count, ref[customer->mt].count);
  EXPECT_EQ(customer->total_size, ref[customer->mt].total);
  ASSERT_TRUE(ref.count(string->mt));
  EXPECT_EQ(string->count, ref[string->mt].count);
  EXPECT_EQ(string->total_size, ref[string->mt].total);
  EXPECT_GE(string->count, static_cast<uint64_t>(kCustomers));  // One name per customer.

  // Beyond the two types the fixture controls: every row of the table agrees.
  EXPECT_EQ(stats->types.size(), ref.size());
  for (const dac::TypeStat& t : stats->types) {
    auto it = ref.find(t.mt);
    if (it == ref.end()) {
      ADD_FAILURE() << "type not in dotnet-dump's table: " << t.name;
      continue;
    }
    EXPECT_EQ(t.count, it->second.count) << t.name;
    EXPECT_EQ(t.total_size, it->second.total) << t.name;
    EXPECT_EQ(t.name, it->second.name);
  }
}

TEST_F(DacDumpTest, ManagedThreadsMatchClrThreads) {
  const int ref_count = ParseThreadCount(reference_);
  ASSERT_GT(ref_count, 0) << reference_;
  auto ts = dac_->GetThreadStore();
  ASSERT_TRUE(ts.ok()) << ts.status();
  EXPECT_EQ(ts->thread_count, ref_count);
  // The three named workers plus main and the finalizer are all live managed threads.
  EXPECT_GE(ts->thread_count, 5);
  int live = 0, finalizers = 0;
  for (const dac::ManagedThread& t : ts->threads) {
    if (t.os_id != 0) ++live;
    if (t.is_finalizer) ++finalizers;
    if (t.os_id != 0) {
      // clrthreads prints the OS id in hex in its own column.
      std::ostringstream hex;
      hex << std::hex << t.os_id;
      EXPECT_NE(reference_.find(" " + hex.str() + " "), std::string::npos) << hex.str();
    }
  }
  EXPECT_EQ(finalizers, 1);
  EXPECT_EQ(live, ref_count);
}

TEST_F(DacDumpTest, RuntimeIsFoundAndVersioned) {
  auto rt = dac::FindRuntime(*core_);
  ASSERT_TRUE(rt.ok());
  EXPECT_EQ(rt->build_id.size(), 40u);
  auto loc = dac::LocateDac(*rt, {});
  ASSERT_TRUE(loc.ok());
  // The version comes from the dump or, for heap dumps without the data page, the file.
  const std::string v = rt->version_string.empty() ? loc->version_string : rt->version_string;
  EXPECT_TRUE(absl::StartsWith(v, "10.") || absl::StartsWith(v, "9.") || absl::StartsWith(v, "8."))
      << v;
  EXPECT_NE(v.find("@Commit: "), std::string::npos) << v;
}

TEST_F(DacDumpTest, MismatchedRuntimeIsRefusedWithHowToFix) {
  auto rt = dac::FindRuntime(*core_);
  ASSERT_TRUE(rt.ok());
  dac::RuntimeModule other = *rt;
  other.build_id = std::string(40, '0');
  auto loc = dac::LocateDac(other, {});
  ASSERT_FALSE(loc.ok());
  const std::string msg(loc.status().message());
  EXPECT_NE(msg.find(other.build_id), std::string::npos) << msg;
  EXPECT_NE(msg.find("setclrpath"), std::string::npos) << msg;
}

TEST_F(DacDumpTest, ModulesMatchClrModules) {
  // clrmodules prints "<ImageBase:X16> <Size:X8> <path>" per module.
  std::map<uint64_t, std::string> ref;
  std::istringstream in(reference_);
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 27 || line[16] != ' ' || line[25] != ' ') continue;
    const absl::string_view l(line);
    uint64_t base = 0, size = 0;
    if (l.substr(0, 16).find_first_not_of("0123456789ABCDEF") != absl::string_view::npos ||
        l.substr(17, 8).find_first_not_of("0123456789ABCDEF") != absl::string_view::npos ||
        !absl::SimpleHexAtoi(l.substr(0, 16), &base) ||
        !absl::SimpleHexAtoi(l.substr(17, 8), &size)) {
      continue;
    }
    ref[base] = line.substr(26);
  }
  ASSERT_FALSE(ref.empty()) << reference_;
  auto modules = dac_->GetModules();
  ASSERT_TRUE(modules.ok()) << modules.status();
  std::map<uint64_t, std::string> ours;
  bool has_app = false;
  for (const dac::ManagedModule& m : *modules) {
    ours[m.il_base] = m.file;
    if (absl::EndsWith(m.file, "/HeapApp.dll")) has_app = true;
  }
  EXPECT_TRUE(has_app);
  EXPECT_EQ(ours, ref);
}

// Our size arithmetic (MethodTable sizes + component count) agrees with the DAC's own
// GetObjectData for every object on the heap.
TEST_F(DacDumpTest, ObjectSizesAgreeWithTheDac) {
  auto globals = dac_->GetUsefulGlobals();
  ASSERT_TRUE(globals.ok()) << globals.status();
  int checked = 0, strings = 0;
  auto walk = dac::WalkHeap(*dac_, [&](const dac::HeapObject& o) {
    auto info = dac_->GetObject(o.address);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) return false;
    EXPECT_EQ(info->mt, o.mt);
    if (o.mt != globals->free_mt) {
      // .NET tools report at least the minimum object size (24); the DAC the raw size.
      EXPECT_EQ(std::max<uint64_t>(info->size, 24), o.size) << std::hex << o.address;
    }
    if (o.mt == globals->string_mt) ++strings;
    ++checked;
    return !HasFailure();
  });
  ASSERT_TRUE(walk.ok()) << walk.status();
  EXPECT_GT(checked, 2 * kCustomers);
  EXPECT_GE(strings, kCustomers);
}

// The data target answers the DAC's questions from the dump, and refuses what it cannot know.
TEST_F(DacDumpTest, DataTargetAnswersFromTheDump) {
  auto rt = dac::FindRuntime(*core_);
  ASSERT_TRUE(rt.ok());
  dac::ComPtr<dac::ICLRDataTarget> target = dac::MakeCoreDataTarget(core_, {});

  dac::ULONG32 machine = 0, ptr = 0;
  EXPECT_EQ(target->GetMachineType(&machine), dac::kS_OK);
  EXPECT_EQ(machine, dac::kImageFileMachineAmd64);
  EXPECT_EQ(target->GetPointerSize(&ptr), dac::kS_OK);
  EXPECT_EQ(ptr, 8u);

  dac::CLRDATA_ADDRESS base = 0;
  EXPECT_EQ(target->GetImageBase(u"LIBCORECLR.SO", &base), dac::kS_OK);  // Case-insensitive.
  EXPECT_EQ(base, rt->base);
  EXPECT_EQ(target->GetImageBase(u"libnothere.so", &base), dac::kE_FAIL);

  // The ELF header of libcoreclr.so is in the dump (the DAC parses it to find g_dacTable).
  uint8_t magic[4] = {};
  dac::ULONG32 done = 0;
  EXPECT_EQ(target->ReadVirtual(rt->base, magic, sizeof(magic), &done), dac::kS_OK);
  EXPECT_EQ(done, 4u);
  EXPECT_EQ(std::memcmp(magic,
                        "\x7f"
                        "ELF",
                        4),
            0);
  // Page 0 is never mapped: the read fails and reports nothing read (no zero-fill).
  EXPECT_EQ(target->ReadVirtual(0x1000, magic, sizeof(magic), &done), dac::kE_FAIL);
  EXPECT_EQ(done, 0u);

  // Registers of a real thread, in the AMD64 CONTEXT layout.
  const elf::CoreThread& t = core_->threads().front();
  std::vector<uint8_t> ctx(dac::kAmd64ContextSize);
  EXPECT_EQ(target->GetThreadContext(t.tid, dac::kContextFull, ctx.size(), ctx.data()), dac::kS_OK);
  uint64_t rip = 0, rsp = 0;
  std::memcpy(&rip, ctx.data() + dac::amd64_context::kRip, 8);
  std::memcpy(&rsp, ctx.data() + dac::amd64_context::kRsp, 8);
  EXPECT_EQ(rip, t.regs.rip);
  EXPECT_EQ(rsp, t.regs.rsp);
  EXPECT_NE(target->GetThreadContext(0x7fffffff, dac::kContextFull, ctx.size(), ctx.data()),
            dac::kS_OK);

  // Optional interfaces the DAC asks for.
  dac::ComPtr<dac::ICLRMetadataLocator> md;
  EXPECT_EQ(target.As(dac::kIID_ICLRMetadataLocator, &md), dac::kS_OK);
  dac::ComPtr<dac::IUnknown> none;
  EXPECT_EQ(target.As(dac::kIID_ICLRDataTarget3, &none), dac::kE_NOINTERFACE);
}

// Metadata the dump lacks is served from the assembly on disk, only if it is the same build.
TEST_F(DacDumpTest, MetadataLocatorServesTheRightAssembly) {
  std::string assembly;
  for (const elf::MappedRange& r : core_->mapped_files()) {
    if (absl::EndsWith(r.path, "/HeapApp.dll")) assembly = r.path;
  }
  ASSERT_FALSE(assembly.empty()) << "HeapApp.dll is not mapped in the dump";
  auto file = elf::MappedFile::Open(assembly);
  ASSERT_TRUE(file.ok());
  auto pe = dac::PeImage::Parse(file->bytes());
  ASSERT_TRUE(pe.ok()) << pe.status();
  auto expected = pe->Metadata();
  ASSERT_TRUE(expected.ok()) << expected.status();

  dac::ComPtr<dac::ICLRDataTarget> target = dac::MakeCoreDataTarget(core_, {});
  dac::ComPtr<dac::ICLRMetadataLocator> md;
  ASSERT_EQ(target.As(dac::kIID_ICLRMetadataLocator, &md), dac::kS_OK);
  const std::u16string path = dac::Utf8ToUtf16(assembly);
  std::vector<uint8_t> buf(expected->size());
  dac::ULONG32 got = 0;
  ASSERT_EQ(md->GetMetadata(path.c_str(), pe->timestamp(), pe->size_of_image(), nullptr, 0, 0,
                            buf.size(), buf.data(), &got),
            dac::kS_OK);
  EXPECT_EQ(got, expected->size());
  EXPECT_EQ(std::memcmp(buf.data(), expected->data(), buf.size()), 0);
  // The DAC may pass a NULL size pointer.
  EXPECT_EQ(md->GetMetadata(path.c_str(), pe->timestamp(), pe->size_of_image(), nullptr, 0, 0,
                            buf.size(), buf.data(), nullptr),
            dac::kS_OK);
  // Another build of the file (different timestamp) is refused.
  EXPECT_NE(md->GetMetadata(path.c_str(), pe->timestamp() + 1, pe->size_of_image(), nullptr, 0, 0,
                            buf.size(), buf.data(), &got),
            dac::kS_OK);
}

// Heap dumps lack most of libcoreclr's RELRO pages, so the data target serves them from the
// libcoreclr.so on disk, where the loader's R_X86_64_RELATIVE relocations are not applied yet.
// Every relative relocation in .data.rel.ro must read back as load base + addend: the pages
// that ARE in the dump show that this is what the process held, the missing ones are what the
// data target has to reproduce. The oracle reads .rela.dyn through the section headers, the
// data target through the dynamic section.
TEST_F(DacDumpTest, DataTargetRelocatesPointersServedFromTheRuntimeFile) {
  auto rt = dac::FindRuntime(*core_);
  ASSERT_TRUE(rt.ok());
  auto loc = dac::LocateDac(*rt, {});
  ASSERT_TRUE(loc.ok());
  auto file = elf::MappedFile::Open(loc->coreclr_path);
  ASSERT_TRUE(file.ok());
  const std::span<const uint8_t> bytes = file->bytes();
  auto load = [&](uint64_t off, auto* out) {
    ASSERT_LE(off + sizeof(*out), bytes.size());
    std::memcpy(out, bytes.data() + off, sizeof(*out));
  };
  uint64_t shoff = 0;
  uint16_t shentsize = 0, shnum = 0, shstrndx = 0;
  load(0x28, &shoff);
  load(0x3a, &shentsize);
  load(0x3c, &shnum);
  load(0x3e, &shstrndx);
  ASSERT_GE(shentsize, 64);
  ASSERT_LT(shstrndx, shnum);
  uint64_t strtab = 0;
  load(shoff + uint64_t{shstrndx} * shentsize + 0x18, &strtab);
  struct Section {
    uint64_t addr = 0, offset = 0, size = 0;
  } rela_dyn, data_rel_ro;
  for (uint16_t i = 0; i < shnum; ++i) {
    const uint64_t sh = shoff + uint64_t{i} * shentsize;
    uint32_t name = 0;
    Section sec;
    load(sh, &name);
    load(sh + 0x10, &sec.addr);
    load(sh + 0x18, &sec.offset);
    load(sh + 0x20, &sec.size);
    const char* n = reinterpret_cast<const char*>(bytes.data() + strtab + name);
    if (std::strcmp(n, ".rela.dyn") == 0) rela_dyn = sec;
    if (std::strcmp(n, ".data.rel.ro") == 0) data_rel_ro = sec;
  }
  ASSERT_GT(rela_dyn.size, 0u) << "no .rela.dyn in " << loc->coreclr_path;
  ASSERT_GT(data_rel_ro.size, 0u) << "no .data.rel.ro in " << loc->coreclr_path;

  dac::DataTargetOptions opts;
  opts.file_substitutes[rt->path] = loc->coreclr_path;
  opts.use_host_files = false;
  dac::ComPtr<dac::ICLRDataTarget> target = dac::MakeCoreDataTarget(core_, opts);
  size_t in_dump = 0, from_file = 0, unaligned_reads = 0;
  for (uint64_t pos = 0; pos + 24 <= rela_dyn.size; pos += 24) {
    uint64_t where = 0, info = 0, addend = 0;
    load(rela_dyn.offset + pos, &where);
    load(rela_dyn.offset + pos + 8, &info);
    load(rela_dyn.offset + pos + 16, &addend);
    if ((info & 0xffffffff) != 8 /* R_X86_64_RELATIVE */) continue;
    if (where < data_rel_ro.addr || where - data_rel_ro.addr >= data_rel_ro.size) continue;
    const uint64_t addr = rt->base + where;
    uint64_t raw = 0;
    const bool dumped = core_->ReadDumpedMemory(addr, &raw, 8) == 8;
    uint64_t value = 0;
    dac::ULONG32 done = 0;
    ASSERT_EQ(target->ReadVirtual(addr, reinterpret_cast<dac::BYTE*>(&value), 8, &done), dac::kS_OK)
        << std::hex << addr;
    ASSERT_EQ(done, 8u);
    if (dumped) EXPECT_EQ(value, raw);  // what the dump holds is served as it is
    EXPECT_EQ(value, rt->base + addend)
        << std::hex << "at 0x" << addr << (dumped ? " (in the dump)" : " (from the file)");
    ++(dumped ? in_dump : from_file);
    // A read that starts inside the pointer gets the matching bytes of the relocated value.
    if (!dumped && unaligned_reads < 16) {
      uint8_t tail[5] = {};
      ASSERT_EQ(target->ReadVirtual(addr + 3, tail, sizeof(tail), &done), dac::kS_OK);
      const uint64_t expected = rt->base + addend;
      EXPECT_EQ(std::memcmp(tail, reinterpret_cast<const uint8_t*>(&expected) + 3, 5), 0);
      ++unaligned_reads;
    }
  }
  // Heap dumps leave out most of these pages; if this one holds them all, the test proves
  // nothing about the fallback.
  EXPECT_GT(from_file, 0u) << "every .data.rel.ro relocation was in the dump";
  EXPECT_GT(in_dump + from_file, 100u);
  RecordProperty("relocations_in_dump", static_cast<int>(in_dump));
  RecordProperty("relocations_from_file", static_cast<int>(from_file));
}

// The DAC's ComWrappers query follows pointers stored in libcoreclr's RELRO data; on a Heap
// dump those pages come from the file on disk. Unrelocated (zeros), they made the DAC
// dereference null and kill the process on the first object, as dotnet-dump's dumpobj dies on
// Heap dumps. Relocated, the query just answers. (No HeapApp object has a sync block, so
// object_format.cc's extra condition for those, RuntimeRelroInDump, cannot be tested here and
// stays.)
TEST_F(DacDumpTest, ComWrappersQueryOnAHeapDumpDoesNotCrashTheDac) {
  int asked = 0;
  auto walk = dac::WalkHeap(*dac_, [&](const dac::HeapObject& o) {
    (void)dac_->GetObjectComWrappers(o.address);  // fails (no wrappers) or answers: both fine
    return ++asked < 200;
  });
  ASSERT_TRUE(walk.ok()) << walk.status();
  EXPECT_EQ(asked, 200);
}

// The reachability pass behind `dumpheap -live/-dead` (core/dac/gc_roots.h): the fixture's
// customers hang off a static, so every one is live; roots come from the handle table and
// the stacks; a cancelled token stops it.
TEST_F(DacDumpTest, LiveObjectSetMarksTheCustomersAndHonoursCancellation) {
  CancellationToken cancelled;
  cancelled.Cancel();
  auto stopped = dac::LiveObjectSet::Compute(*dac_, &cancelled);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled) << stopped.status();

  auto handles = dac_->GetHandles(nullptr);
  ASSERT_TRUE(handles.ok()) << handles.status();
  int strong = 0;
  for (const auto& h : *handles) strong += (h.type == 2 || h.type == 3) && h.object != 0;
  EXPECT_GT(strong, 0);
  auto ts = dac_->GetThreadStore();
  ASSERT_TRUE(ts.ok()) << ts.status();
  size_t stack_refs = 0;
  for (const auto& t : ts->threads) {
    if (t.os_id == 0) continue;
    auto refs = dac_->GetStackReferences(t.os_id);
    if (refs.ok()) stack_refs += refs->size();
  }
  EXPECT_GT(stack_refs, 0u);

  auto live = dac::LiveObjectSet::Compute(*dac_);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_GT(live->roots(), 0u);
  int customers = 0, live_customers = 0;
  uint64_t objects = 0;
  auto walk = dac::WalkHeap(*dac_, [&](const dac::HeapObject& o) {
    ++objects;
    auto name = dac_->GetMethodTableName(o.mt);
    if (name.ok() && *name == "Fixture.Customer") {
      ++customers;
      live_customers += live->IsLive(o.address);
    }
    EXPECT_FALSE(live->IsLive(o.address + 8));  // only object starts are live
    return true;
  });
  ASSERT_TRUE(walk.ok()) << walk.status();
  EXPECT_EQ(customers, kCustomers);
  EXPECT_EQ(live_customers, kCustomers);
  EXPECT_LE(live->live_objects(), objects);
  EXPECT_GT(live->live_objects(), static_cast<uint64_t>(2 * kCustomers));
}

}  // namespace
}  // namespace clrdiag::testing
