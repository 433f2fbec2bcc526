// Conformance of syncblk with dotnet-dump, on Heap and Full dumps of `HeapApp --deadlock` (two
// threads each holding one lock and waiting for the other's) on each runtime: the same lines
// for syncblk, syncblk -all and syncblk <n>; and the facts a user looks for in a deadlock: two
// held monitors, each with one waiter, owned by two different threads, and each owner's stack
// is inside the fixture's deadlock code.
//
// Intentional differences (checked below, not compared):
//  - `syncblk N` past the end of the table: the reference prints the empty table; clrdiag says
//    there is no such entry (exit status non-zero).
//  - Bad arguments: the reference's parser message and its remaining -c commands dropped;
//    clrdiag reports the problem with the usage and runs the next command.
#include <memory>
#include <set>
#include <sstream>

#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

// The shared dumps (shared_dumps.h) read: HeapApp 100 --deadlock.
constexpr const char* kDumps = "heap100_deadlock";

class SyncConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({kDumps}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override { UseDump(kDumps); }
};

TEST_P(SyncConformanceTest, SameAsDotnetDumpAndNamesTheDeadlock) {
  const std::vector<std::string> commands = {"syncblk", "syncblk -all", "syncblk 1", "syncblk 2"};
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));

  // The deadlock's facts, from the JSON form.
  RunResult json = Ours({"syncblk"}, true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = ParseJson(json.out.substr(0, json.out.find('\n')));
  ASSERT_TRUE(doc.is_object() && doc.contains("result")) << json.out;
  const auto& entries = doc["result"]["entries"];
  ASSERT_EQ(entries.size(), 2u) << json.out;
  std::set<std::string> types;
  std::set<int> owners;
  for (const auto& e : entries) {
    types.insert(e["type"].get<std::string>());
    EXPECT_EQ(e["monitor_held"], 3) << e;  // held, and one thread waiting
    EXPECT_EQ(e["waiters"], 1) << e;
    ASSERT_TRUE(e["owner"]["debugger_index"].is_number()) << e;
    owners.insert(e["owner"]["debugger_index"].get<int>());
  }
  EXPECT_EQ(types, (std::set<std::string>{"Fixture.DeadlockLockA", "Fixture.DeadlockLockB"}));
  ASSERT_EQ(owners.size(), 2u) << "one thread owns both locks?\n" << json.out;
  // Each owner is blocked inside the fixture's deadlock code.
  for (int owner : owners) {
    RunResult stack = Ours({"setthread " + std::to_string(owner), "clrstack"});
    EXPECT_EQ(stack.exit_code, 0) << stack.err;
    EXPECT_CONTAINS(stack.out, "Fixture.Deadlock");
  }
}

// clrdiag's own handling of bad input; the same whatever the runtime, so checked on one.
class SyncErrorTest : public SyncConformanceTest {};

TEST_P(SyncErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  RunResult r = Ours({"syncblk 99", "syncblk -x", "syncblk"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "there is no sync block 99: the table has ");
  EXPECT_CONTAINS(r.err, "unexpected argument '-x'");
  EXPECT_CONTAINS(r.out, "Fixture.DeadlockLock");  // the last command still ran
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, SyncConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, SyncErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
