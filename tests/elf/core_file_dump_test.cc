// CoreFile against real createdump dumps of the fixture apps, requested over the diagnostics
// IPC socket the way clrdiagd does it. Facts read from the dump are checked against what
// /proc said about the live process.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/elf/core_file.h"
#include "core/elf/elf_file.h"
#include "core/ipc/client.h"
#include "core/procfs/discovery.h"
#include "core/procfs/procfs.h"
#include "tests/harness/harness.h"

namespace clrdiag::elf {
namespace {

using testing::Process;
using testing::TempDir;

constexpr uint64_t kDiagInfoHeaderAddress = 0x7ffffff10000;  // createdump's fake region
constexpr uint64_t kAtPagesz = 6;
constexpr int kDumpAttempts = 3;

std::set<uint32_t> Tasks(pid_t pid) {
  std::set<uint32_t> tids;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') tids.insert(static_cast<uint32_t>(std::stoul(e->d_name)));
    }
    ::closedir(d);
  }
  return tids;
}

std::string CoreclrPath(pid_t pid) {
  auto maps = procfs::ProcFs("/proc").ReadMaps(pid);
  if (!maps.ok()) return "";
  for (const procfs::MapEntry& m : *maps) {
    if (m.path.ends_with("/libcoreclr.so")) return m.path;
  }
  return "";
}

// A dump of a live fixture, with the thread ids /proc listed around it.
struct LiveDump {
  std::unique_ptr<Process> app;
  std::string path;
  std::set<uint32_t> tasks;  // identical before and after the dump
  std::string coreclr;       // libcoreclr.so as /proc/<pid>/maps names it
};

// Starts `fixture` and dumps it into `dir`. Retries while the thread set changes during the
// dump (the runtime starts and ends helper threads on its own schedule).
void MakeDump(const std::string& fixture, ipc::DumpType type, const TempDir& dir, LiveDump* out) {
  out->app = testing::StartFixture(fixture);
  ASSERT_NE(out->app, nullptr) << "fixture " << fixture << " did not start";
  const pid_t pid = out->app->pid();
  auto facts = procfs::InspectProcess(procfs::ProcFs("/proc"), pid);
  ASSERT_TRUE(facts.ok()) << facts.status();
  out->coreclr = CoreclrPath(pid);
  ASSERT_FALSE(out->coreclr.empty());
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    out->path = dir / ("core." + std::to_string(attempt));
    std::set<uint32_t> before = Tasks(pid);
    absl::Status st = ipc::GenerateCoreDump(facts->socket.path, {out->path, type, 0});
    ASSERT_TRUE(st.ok()) << st;
    out->tasks = Tasks(pid);
    if (before == out->tasks) return;
    std::filesystem::remove(out->path);
  }
  FAIL() << "the thread set of " << fixture << " kept changing during " << kDumpAttempts
         << " dumps";
}

const CoreModule* ModuleContaining(const CoreFile& core, uint64_t addr) {
  for (const CoreModule& m : core.modules()) {
    if (addr >= m.base && addr < m.end) return &m;
  }
  return nullptr;
}

struct DumpCase {
  const char* fixture;
  ipc::DumpType type;
  const char* name;
};
void PrintTo(const DumpCase& c, std::ostream* os) { *os << c.name; }

class CoreFileDumpTest : public ::testing::TestWithParam<DumpCase> {};

TEST_P(CoreFileDumpTest, MatchesTheLiveProcess) {
  TempDir dir("clrdiag-core");
  LiveDump dump;
  ASSERT_NO_FATAL_FAILURE(MakeDump(GetParam().fixture, GetParam().type, dir, &dump));
  auto opened = CoreFile::Open(dump.path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const CoreFile& core = **opened;
  EXPECT_EQ(core.machine(), kEmX86_64);

  // Threads: the same set /proc listed.
  ASSERT_EQ(core.threads().size(), dump.tasks.size());
  for (const CoreThread& t : core.threads()) {
    EXPECT_TRUE(dump.tasks.count(t.tid)) << "thread " << t.tid << " is not in /proc";
    uint64_t word = 0;
    EXPECT_EQ(core.ReadMemory(t.regs.rsp, &word, sizeof(word)), sizeof(word))
        << "stack of thread " << t.tid << " at 0x" << std::hex << t.regs.rsp;
    EXPECT_EQ(t.fpregs.size(), 512u) << "thread " << t.tid;
  }
  EXPECT_EQ(core.threads()[0].tid, static_cast<uint32_t>(dump.app->pid()));
  const CoreThread* crashing = &core.threads()[0];
  for (const CoreThread& t : core.threads()) {
    if (t.signal != 0) {
      crashing = &t;
      break;
    }
  }
  const CoreModule* at_ip = ModuleContaining(core, crashing->regs.rip);
  EXPECT_NE(at_ip, nullptr) << "rip 0x" << std::hex << crashing->regs.rip;

  // libcoreclr.so: found, with the build-id of the file the process mapped.
  auto expected_id = ReadGnuBuildId(dump.coreclr);
  ASSERT_TRUE(expected_id.ok()) << expected_id.status();
  const CoreModule* coreclr = nullptr;
  for (const CoreModule& m : core.modules()) {
    if (m.path == dump.coreclr) coreclr = &m;
  }
  ASSERT_NE(coreclr, nullptr) << dump.coreclr << " is not among the modules";
  EXPECT_EQ(coreclr->build_id, *expected_id);
  EXPECT_LT(coreclr->base, coreclr->end);

  char sig[16] = {};
  ASSERT_EQ(core.ReadMemory(kDiagInfoHeaderAddress, sig, sizeof(sig)), sizeof(sig));
  EXPECT_STREQ(sig, "DIAGINFOHEADER");

  bool pagesz = false;
  for (const auto& [type, value] : core.auxv()) {
    if (type == kAtPagesz) pagesz = value == 4096;
  }
  EXPECT_TRUE(pagesz) << "auxv has no AT_PAGESZ 4096";
  EXPECT_FALSE(core.mapped_files().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Dumps, CoreFileDumpTest,
    ::testing::Values(DumpCase{"SleepApp", ipc::DumpType::kNormal, "SleepMini"},
                      DumpCase{"SleepApp", ipc::DumpType::kWithHeap, "SleepHeap"},
                      DumpCase{"HeapApp", ipc::DumpType::kWithHeap, "HeapAppHeap"}),
    [](const ::testing::TestParamInfo<DumpCase>& info) { return info.param.name; });

std::string CopyPrefix(const std::string& from, const std::string& to, uint64_t size) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  std::vector<char> buf(1 << 20);
  while (size > 0 && in) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(size, buf.size())));
    out.write(buf.data(), in.gcount());
    size -= static_cast<uint64_t>(in.gcount());
  }
  return to;
}

TEST(CoreFileTruncatedDumpTest, TruncatedCopiesFailOrReadShort) {
  TempDir dir("clrdiag-core");
  LiveDump dump;
  ASSERT_NO_FATAL_FAILURE(MakeDump("SleepApp", ipc::DumpType::kNormal, dir, &dump));
  auto full = CoreFile::Open(dump.path);
  ASSERT_TRUE(full.ok()) << full.status();
  const uint64_t size = testing::FileSizeOf(dump.path);

  // The last PT_LOAD's bytes sit at the end of the file: gone in the half copy.
  auto mapped = MappedFile::Open(dump.path);
  ASSERT_TRUE(mapped.ok());
  auto view = ElfView::Parse(mapped->bytes());
  ASSERT_TRUE(view.ok());
  ProgramHeader last;
  for (size_t i = 0; i < view->program_header_count(); ++i) {
    auto ph = view->GetProgramHeader(i);
    ASSERT_TRUE(ph.ok());
    if (ph->type == kPtLoad && ph->offset >= last.offset) last = *ph;
  }
  ASSERT_GT(last.offset, size / 2);
  std::vector<uint8_t> buf(last.filesz);
  ASSERT_EQ((*full)->ReadMemory(last.vaddr, buf.data(), buf.size()), buf.size());

  auto half = CoreFile::Open(CopyPrefix(dump.path, dir / "half", size / 2));
  ASSERT_TRUE(half.ok()) << half.status();  // the notes are at the start: still usable
  EXPECT_EQ((*half)->threads().size(), (*full)->threads().size());
  EXPECT_EQ((*half)->ReadMemory(last.vaddr, buf.data(), buf.size()), 0u);
  for (const CoreThread& t : (*half)->threads()) {
    std::vector<uint8_t> stack(64 * 1024);
    EXPECT_LE((*half)->ReadMemory(t.regs.rsp, stack.data(), stack.size()), stack.size());
  }

  auto tiny = CoreFile::Open(CopyPrefix(dump.path, dir / "tiny", 100));
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kDataLoss) << tiny.status();
}

}  // namespace
}  // namespace clrdiag::elf
