// Conformance with the reference: `clrdiag analyze` and `dotnet-dump analyze` on the same
// dump must print the same thing, line for line (after trimming trailing blanks), except for
// differences listed here with their reason.
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

class ConformanceTest : public ::testing::TestWithParam<std::string> {
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
  auto app = StartFixture("HeapApp", {"3000"});
  ASSERT_TRUE(app);
  RunResult c = daemon_.Client({"collect", "-p", std::to_string(app->pid()), "--type", GetParam(),
                                "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto info = ParseJson(c.out);
  std::string path = info["path"];

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
}

INSTANTIATE_TEST_SUITE_P(DumpTypes, ConformanceTest, ::testing::Values("Heap", "Full"));

TEST(ConformanceForeignDumpTest, DumpCollectedByDotnetDumpAnalyzes) {
  ASSERT_TRUE(FileExists(DotnetDump()));
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  auto app = StartFixture("HeapApp", {"1500"});
  ASSERT_TRUE(app);
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

}  // namespace
}  // namespace clrdiag::testing
