// Conformance with the reference: `clrdiag analyze` and `dotnet-dump analyze` on the same
// dump must print the same thing, line for line (after trimming trailing blanks), except for
// differences listed here with their reason.
#include <cstdio>

#include "tests/conformance/compare.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

// Lines allowed to differ, by prefix, and why.
const std::vector<conformance::IntentionalDifference> kIntentionalDifferences = {
    {"SOS Version:", "we are not SOS: the line names clrdiag's own version"},
};

using conformance::DotnetDump;

void ExpectSameOutput(const std::string& ours, const std::string& reference) {
  conformance::ExpectSameOutput(ours, reference, kIntentionalDifferences);
}

// Parameter: (runtime, dump type). Each runtime's HeapApp is dumped by the daemon and both
// tools read the same dump; for net8.0/net9.0 the DAC comes from the self-contained app's
// directory, saved in the dump store by the daemon's collector.
class ConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(FileExists(DotnetDump()))
        << "the reference dotnet-dump is missing: run WITH_REFERENCE=1 scripts/install-deps.sh";
    ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  }
  Daemon daemon_;
};

const std::vector<std::string> kCommands = {
    // The second -stat, and the filtered one, come from the session's heap index.
    "eeversion", "dumpheap -stat", "clrthreads", "dumpheap -stat", "dumpheap -stat -type Fixture.",
    "dumpheap -type Fixture.Customer[]",
    "dumpheap -min 80000 -stat", "dumpheap -short -max 24 -type Fixture.Customer[]",
};

std::vector<std::string> CommandArgs() {
  std::vector<std::string> args;
  for (const auto& c : kCommands) {
    args.push_back("-c");
    args.push_back(c);
  }
  args.push_back("-c");
  args.push_back("exit");
  return args;
}

TEST_P(ConformanceTest, SameOutputAsDotnetDump) {
  const auto& [runtime, dump_type] = GetParam();
  auto app = StartFixture("HeapApp", {"3000"}, runtime);
  ASSERT_TRUE(app) << "HeapApp for " << runtime << " did not start";
  RunResult c =
      daemon_.Client({"collect", "-p", std::to_string(app->pid()), "--type", dump_type, "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto info = ParseJson(c.out);
  std::string path = info["path"];
  // The daemon saved this runtime's libcoreclr.so and DAC (from the app's own directory for
  // the self-contained ones): the analysis below must use them.
  EXPECT_EQ(info["runtime_files_stored"], true) << c.out;

  std::vector<std::string> ours_argv = {"analyze", info["id"]};
  for (const auto& a : CommandArgs()) ours_argv.push_back(a);
  RunResult ours = daemon_.Client(ours_argv);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;

  std::vector<std::string> ref_argv = {DotnetDump(), "analyze", path};
  for (const auto& a : CommandArgs()) ref_argv.push_back(a);
  RunResult ref = RunCommand(ref_argv);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;

  // Both start with "Loading core dump: <what> ..."; we name the catalog id we were given.
  auto body = [](const std::string& s) { return s.substr(s.find('\n') + 1); };
  ExpectSameOutput(body(ours.out), body(ref.out));
  EXPECT_CONTAINS(ours.out, " Fixture.Customer\n");
  // eeversion's first line is the runtime's file version: the runtime asked for.
  const std::string major = runtime.substr(3, runtime.find('.') - 3) + ".0.";
  EXPECT_EQ(body(ours.out).rfind(major, 0), 0u) << ours.out;
  std::printf("[ runtime  ] %s %s: %s\n", runtime.c_str(), dump_type.c_str(),
              body(ours.out).substr(0, body(ours.out).find('\n')).c_str());
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// A dump the daemon did not take: its DAC is not in the store. For the shared runtime it is
// found among the host's frameworks; for a self-contained app (net8.0) beside the app, in the
// runtime directory the dump names.
class ConformanceForeignDumpTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConformanceForeignDumpTest, DumpCollectedByDotnetDumpAnalyzes) {
  ASSERT_TRUE(FileExists(DotnetDump()));
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"1500"}, GetParam());
  ASSERT_TRUE(app) << "HeapApp for " << GetParam() << " did not start";
  TempDir t;
  std::string dump = t / "theirs.core";
  RunResult c = RunCommand({DotnetDump(), "collect", "-p", std::to_string(app->pid()), "--type",
                            "Heap", "-o", dump});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  std::vector<std::string> ours_argv = {"analyze", dump};
  for (const auto& a : CommandArgs()) ours_argv.push_back(a);
  RunResult ours = d.Client(ours_argv);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  std::vector<std::string> ref_argv = {DotnetDump(), "analyze", dump};
  for (const auto& a : CommandArgs()) ref_argv.push_back(a);
  RunResult ref = RunCommand(ref_argv);
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  ExpectSameOutput(ours.out, ref.out);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, ConformanceForeignDumpTest,
                         ::testing::Values("net8.0", kDefaultRuntime),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

}  // namespace
}  // namespace clrdiag::testing
