// A MethodTable address typed by a user may be anything. .NET 8's DAC crashes (SIGSEGV) in
// GetMethodTableData on readable memory that is not a MethodTable (e.g. inside a Module): the
// reference dotnet-dump dies silently on `objsize -mt`, `dumpmt -md` or `dumpvc` of such an
// address, and before this check clrdiag's worker did too (the session ended). Every command
// that takes a MethodTable now vets it first (DacProcess::LooksLikeMethodTable).
//
// Checked on each runtime (Heap dumps, where the crash was seen):
//  - no false refusal: every MethodTable `dumpheap -stat` lists (Free included) is accepted by
//    `dumpmt` (one Name line each);
//  - stray addresses (each 8 bytes of the first 0x200 of the fixture's Module) are refused with
//    "is not a MethodTable" by dumpmt, dumpmt -md and dumpvc, objsize -mt finds nothing, and the
//    session lives on to the last command.
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class StrayMethodTableTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_EQ(conformance::StartDaemonWithSharedDumps(daemon_, {"heap200_exceptions"}), "");
  }
  Daemon daemon_;
};

TEST_P(StrayMethodTableTest, RealOnesAcceptedStrayOnesRefusedWithoutCrash) {
  const std::string id = conformance::FindSharedDump("heap200_exceptions", GetParam(), "Heap").id;
  ASSERT_FALSE(id.empty()) << GetParam();

  // The fixture module's address.
  RunResult mods = daemon_.Client({"analyze", id, "--json", "-c", "clrmodules", "-c", "exit"});
  ASSERT_EQ(mods.exit_code, 0) << mods.err;
  uint64_t module = 0;
  const nlohmann::json doc = ParseJson(mods.out.substr(0, mods.out.find('\n')));
  for (const auto& m : doc["result"]["modules"]) {
    const std::string name = m["name"];
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "HeapApp.dll") == 0) {
      module = std::stoull(m["module"].get<std::string>(), nullptr, 16);
    }
  }
  ASSERT_NE(module, 0u) << mods.out.substr(0, 2000);

  // Every MethodTable of the heap statistics is accepted, with its type's name.
  RunResult stat = daemon_.Client(conformance::WithCommands({"analyze", id}, {"dumpheap -stat"}));
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  std::vector<std::pair<std::string, std::string>> mts;  // MethodTable, name
  const std::regex row("^ *([0-9a-f]{12,16}) +[0-9,]+ +[0-9,]+ (.+)$");
  std::istringstream in(stat.out);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) mts.emplace_back(m[1], m[2]);
  }
  ASSERT_GT(mts.size(), 20u) << stat.out;
  std::vector<std::string> commands;
  for (const auto& [mt, name] : mts) commands.push_back("dumpmt " + mt);
  RunResult real = daemon_.Client(conformance::WithCommands({"analyze", id}, commands));
  EXPECT_EQ(real.err.find("is not a MethodTable"), std::string::npos) << real.err;
  // One "Name:" line per MethodTable (dumpmt prints the DAC's name, generic arguments in
  // brackets, so the names themselves are not compared); "Free MethodTable" for the free one.
  size_t free_rows = 0;
  for (const auto& [mt, name] : mts) free_rows += name == "Free" ? 1 : 0;
  size_t name_lines = 0;
  std::istringstream dumped(real.out);
  for (std::string line; std::getline(dumped, line);) name_lines += line.rfind("Name:", 0) == 0;
  EXPECT_EQ(name_lines, mts.size() - free_rows) << real.out.substr(0, 3000);

  // Stray addresses inside the Module: refused, and the session survives to eeversion.
  commands.clear();
  std::set<std::string> stray;
  for (uint64_t off = 0; off < 0x200; off += 8) {
    const std::string a = absl::StrFormat("%x", module + off);
    stray.insert(a);
    commands.push_back("dumpmt " + a);
    commands.push_back("dumpmt -md " + a);
    commands.push_back(absl::StrFormat("dumpvc %s %x", a, module));
    commands.push_back("objsize -mt " + a);
  }
  commands.push_back("eeversion");
  RunResult r = daemon_.Client(conformance::WithCommands({"analyze", id}, commands));
  EXPECT_EQ(r.err.find("killed"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_CONTAINS(r.out, "@Commit");  // the last command ran
  EXPECT_NE(r.err.find("is not a MethodTable"), std::string::npos) << r.err.substr(0, 2000);
  // objsize -mt of a stray address finds no object.
  EXPECT_NE(r.out.find("Objects which (<unknown type>) transitively keep alive"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, StrayMethodTableTest, ::testing::ValuesIn(FixtureRuntimes()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

}  // namespace
}  // namespace clrdiag::testing
