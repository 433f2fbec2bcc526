// Conformance of the module commands (clrmodules/assemblies, modules/lm, dumpdomain, runtimes)
// with dotnet-dump: on Heap and Full dumps of HeapApp, on each runtime (net8.0 and net9.0
// self-contained, net10.0 shared), both tools must print the same lines
// (trailing blanks trimmed), except the intentional differences listed here with their reason.
// Also checks clrdiag's own setclrpath, which works differently by design.
#include <cstdlib>
#include <sstream>

#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::IntentionalDifference;
using conformance::WithCommands;

// Lines allowed to differ, by prefix, and why.
const std::vector<IntentionalDifference> kIntentionalDifferences = {
    {"        CDac ",
     "runtimes: dotnet-dump lists the cDAC bundled with itself; clrdiag never uses a cDAC"},
    {"    DAC: ",
     "runtimes: the DAC's path is where each tool found it; for a dump the daemon took, "
     "clrdiag loads the copy saved in the dump store (checked separately below)"},
};

void ExpectSameOutput(const std::string& ours, const std::string& reference) {
  conformance::ExpectSameOutput(ours, reference, kIntentionalDifferences);
}

// The text after `label` up to the end of its line, or "".
std::string ValueAfter(const std::string& text, const std::string& label) {
  size_t at = text.find(label);
  if (at == std::string::npos) return "";
  at += label.size();
  size_t end = text.find('\n', at);
  std::string v = text.substr(at, end - at);
  v.erase(0, v.find_first_not_of(' '));
  return v;
}

class ModuleConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap2000"}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(UseDump("heap2000")); }

  // Runs the commands in both tools; returns (ours, reference), each without its first line.
  std::pair<std::string, std::string> Run(const std::vector<std::string>& commands) {
    RunResult ours = daemon_->Client(WithCommands({"analyze", id_}, commands));
    EXPECT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
    EXPECT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    return {Body(ours.out), Body(ref.out)};
  }
};

TEST_P(ModuleConformanceTest, SameOutputAsDotnetDump) {
  auto [ours, ref] = Run({"clrmodules", "assemblies -v", "clrmodules -n thread", "lm",
                          "modules -n core", "dumpdomain", "runtimes"});
  ExpectSameOutput(ours, ref);
  EXPECT_CONTAINS(ours, "/System.Private.CoreLib.dll\n");
  EXPECT_CONTAINS(ours, "/HeapApp.dll\n");
  EXPECT_CONTAINS(ours, "Total image size: ");
  EXPECT_CONTAINS(ours, "Name:               clrhost\n");
  EXPECT_CONTAINS(ours, "#0 .NET Core runtime ");

  // The DAC line: the store's copy of the runtime the daemon saved with the dump.
  std::string dac = ValueAfter(ours, "    DAC: ");
  EXPECT_NE(dac.find("/libmscordaccore.so (don't verify)"), std::string::npos) << dac;
  EXPECT_TRUE(FileExists(dac.substr(0, dac.find(" ("))));

  // One domain by address.
  std::string domain = ValueAfter(ours, "Domain 1:");
  ASSERT_FALSE(domain.empty()) << ours;
  std::string system = ValueAfter(ours, "System Domain:");
  ASSERT_FALSE(system.empty()) << ours;
  auto [ours2, ref2] = Run({"dumpdomain " + domain, "dumpdomain " + system});
  ExpectSameOutput(ours2, ref2);
  EXPECT_CONTAINS(ours2, "Domain 1:           " + domain + "\n");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ModuleConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// setclrpath differs from dotnet-dump by design: the DAC is chosen (by build-id) when the
// session opens, so the command shows that DAC's directory and only checks a new one.
TEST(SetClrPathTest, ShowsTheDacDirectoryAndChecksNewOnes) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"1000"});
  ASSERT_TRUE(app);
  RunResult c = d.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out)["id"];
  std::string build_id = ParseJson(c.out)["coreclr_build_id"];
  std::string store_dir = d.dump_dir() + "/runtimes/" + build_id;

  RunResult r = d.Client(WithCommands({"analyze", id}, {"setclrpath"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Load path for DAC/DBI: '" + store_dir + "'\n");

  // A directory with the dump's runtime is recorded, and runtimes shows it.
  r = d.Client(WithCommands({"analyze", id}, {"setclrpath " + store_dir + "/", "setclrpath",
                                              "runtimes", "setclrpath -c", "runtimes"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Set load path for DAC/DBI to '" + store_dir + "'\n");
  EXPECT_CONTAINS(r.out, "    Runtime module directory: " + store_dir + "\n");
  size_t first = r.out.find("Runtime module directory:");
  EXPECT_EQ(r.out.find("Runtime module directory:", first + 1), std::string::npos) << r.out;

  // One without it is refused with the reason; a relative one is a usage error.
  TempDir empty;
  r = d.Client(WithCommands({"analyze", id}, {"setclrpath " + empty.path()}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, empty.path() + " cannot serve this dump");
  EXPECT_CONTAINS(r.err, build_id);
  r = d.Client(WithCommands({"analyze", id}, {"setclrpath some/dir"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "absolute");
}

}  // namespace
}  // namespace clrdiag::testing
