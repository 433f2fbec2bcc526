// Conformance with dotnet-dump of two heap commands its help lists beyond the seed's table:
// `sizestats` (per generation, objects and free blocks by rounded size) and `dumpexceptions`
// (every exception object, with its message and top stack frame; -live, -dead, -gen, -type).
// The shared dumps "heap200_exceptions": HeapApp with CLRDIAG_HEAPAPP_EXCEPTIONS
// (tests/fixtures/HeapApp/DroppedExceptions.cs):
// dropped (dead) exceptions thrown from one method, a kept one, and a kept one never thrown,
// besides the fixture's own nested exception pair and the runtime's preallocated ones. Each
// runtime × dump type: the same lines, strictly, and the facts the fixture guarantees read from
// clrdiag's JSON forms.
//
// Intentional differences (filtered below):
//  - The reachability pass's progress lines ("Calculating live objects ...", the root cache
//    warning): the reference prints them only for the first -live/-dead of a session and counts
//    duplicate and null roots (as for dumpheap -live, live_conformance_test.cc).
//  - `-live -dead` together: the reference silently drops both; clrdiag refuses with the usage.
//  - A bad -gen value: the reference throws (a stack trace of its own code); clrdiag prints the
//    same message with the usage and goes on with the next command.
#include <regex>
#include <sstream>

#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::DotnetDump;

constexpr int kDropped =
    40;  // CLRDIAG_HEAPAPP_EXCEPTIONS of "heap200_exceptions" (shared_dumps.cc)

const std::vector<conformance::IntentionalDifference> kDifferences = {
    {"Calculating live objects", "progress of the reachability pass (see the file header)"},
    {"Caching GC roots", "the reference's root cache warning (first use in a session only)"},
    {"Subsequent runs of this command", "the same warning's second line"},
};

int CountMatches(const std::string& text, const std::regex& re) {
  return static_cast<int>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

class HeapStatsConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap200_exceptions"}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(UseDump("heap200_exceptions")); }
};

TEST_P(HeapStatsConformanceTest, SizeStatsAndDumpExceptionsMatchDotnetDump) {
  const std::vector<std::string> commands = {
      "sizestats",
      "dumpexceptions",
      "dumpexceptions -type fixture.",
      "dumpexceptions -gen gen0",
      "dumpexceptions -gen gen2 -type Exception",
      "dumpexceptions -dead",
      "dumpexceptions -live -type Kept",
  };
  std::map<std::string, std::string> ours_by_command;
  // One session per command on each side (the reference's live-set progress comes once per
  // session; so each command's output stands alone).
  for (const std::string& cmd : commands) {
    SCOPED_TRACE(cmd);
    RunResult ours = Ours({cmd});
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = Reference({cmd});
    ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    conformance::ExpectSameOutput(conformance::WithoutEmptyLines(conformance::Body(ours.out)),
                                  conformance::WithoutEmptyLines(conformance::Body(ref.out)),
                                  kDifferences);
    ours_by_command[cmd] = conformance::Body(ours.out);
  }

  // Not vacuous: what the fixture made is there.
  const std::string& all = ours_by_command["dumpexceptions"];
  EXPECT_EQ(CountMatches(all, std::regex(" Fixture\\.DroppedException\n")), kDropped) << all;
  EXPECT_EQ(CountMatches(all, std::regex("StackFrame: Fixture\\.ExceptionThrower\\.Throw\\(")),
            kDropped + 1)
      << all;
  EXPECT_CONTAINS(all, "Message: clrdiag kept exception");
  EXPECT_CONTAINS(all, "Message: clrdiag unthrown exception");
  const std::string& dead = ours_by_command["dumpexceptions -dead"];
  EXPECT_EQ(CountMatches(dead, std::regex(" Fixture\\.DroppedException\n")), kDropped) << dead;
  EXPECT_EQ(dead.find("KeptException"), std::string::npos) << dead;
  const std::string& kept = ours_by_command["dumpexceptions -live -type Kept"];
  EXPECT_CONTAINS(kept, "Total: 1 objects");
  const std::string& sizes = ours_by_command["sizestats"];
  EXPECT_CONTAINS(sizes, "Size Statistics for generation2 objects");
  EXPECT_CONTAINS(sizes, "Size Statistics for large free objects");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, HeapStatsConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// Bad input and the JSON forms, on the shared Heap dump of the default runtime.
class HeapStatsCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(conformance::StartDaemonWithSharedDumps(daemon_, {"heap200_exceptions"}), "");
  }
  Daemon daemon_{conformance::WithoutGraphPrebuild()};
};

TEST_F(HeapStatsCommandsTest, BadArgumentsAreUsageErrorsAndJsonAgreesWithText) {
  const std::string id =
      conformance::FindSharedDump("heap200_exceptions", kDefaultRuntime, "Heap").id;
  ASSERT_FALSE(id.empty());

  for (const auto& [cmd, problem] : std::vector<std::pair<std::string, std::string>>{
           {"dumpexceptions -live -dead", "-live and -dead exclude each other"},
           {"dumpexceptions -gen gen7",
            "Unknown generation: gen7. Only gen0, gen1, gen2, loh (large), poh (pinned) and foh "
            "(frozen) are supported"},
           {"dumpexceptions -type", "-type needs a value"},
           {"dumpexceptions 1234", "unexpected argument '1234'"},
           {"sizestats -x", "unexpected argument '-x'"},
       }) {
    SCOPED_TRACE(cmd);
    RunResult bad = daemon_.Client(conformance::WithCommands({"analyze", id}, {cmd, "eeversion"}));
    EXPECT_EQ(bad.exit_code, 1) << bad.out;
    EXPECT_CONTAINS(bad.err, problem);
    EXPECT_CONTAINS(bad.err, "Usage: ");
    EXPECT_EQ(bad.out.find("Total:"), std::string::npos) << bad.out;
    EXPECT_CONTAINS(bad.out, "@Commit");  // the session went on to eeversion
  }

  RunResult help =
      daemon_.Client(conformance::WithCommands({"analyze", id}, {"help dumpexceptions"}));
  EXPECT_CONTAINS(help.out, "-dead   only exceptions no root reaches");

  RunResult text =
      daemon_.Client(conformance::WithCommands({"analyze", id}, {"dumpexceptions", "sizestats"}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult j = daemon_.Client({"analyze", id, "--json", "-c", "dumpexceptions", "-c",
                                "dumpexceptions -dead", "-c", "sizestats", "-c", "exit"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::vector<nlohmann::json> docs;
  std::istringstream in(j.out);
  for (std::string line; std::getline(in, line);) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << line.substr(0, 300);
    docs.push_back(doc);
  }
  ASSERT_GE(docs.size(), 3u) << j.out;
  const auto& all = docs[0]["result"];
  const auto& dead = docs[1]["result"];
  // The JSON lists what the text lists: the same total and the same addresses.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text.out, m, std::regex("Total: ([0-9]+) objects")));
  EXPECT_EQ(all["total"].get<int>(), std::stoi(m[1]));
  int dropped = 0;
  for (const auto& e : all["exceptions"]) {
    const std::string address = e["address"];
    EXPECT_CONTAINS(text.out, address.substr(2) + " ");
    if (e["type"] == "Fixture.DroppedException") {
      ++dropped;
      EXPECT_TRUE(e["stack_frame"].is_string()) << e.dump();
    }
    if (e["type"] == "Fixture.NeverThrownException") {
      EXPECT_TRUE(e["stack_frame"].is_null()) << e.dump();
      EXPECT_EQ(e["message"], "clrdiag unthrown exception");
    }
  }
  EXPECT_EQ(dropped, kDropped);
  EXPECT_EQ(dead["total"].get<int>(), kDropped) << dead.dump();
  // sizestats: each section's rows add up to its count; the small object generations hold the
  // fixture's 200 customers and more.
  const auto& sections = docs[2]["result"]["sections"];
  ASSERT_FALSE(sections.empty());
  uint64_t small_objects = 0;
  for (const auto& s : sections) {
    uint64_t sum = 0;
    for (const auto& row : s["sizes"]) sum += row["count"].get<uint64_t>();
    EXPECT_EQ(sum, s["objects"].get<uint64_t>());
    const std::string g = s["generation"];
    if (g.rfind("generation", 0) == 0 && !s["free"].get<bool>()) small_objects += sum;
  }
  EXPECT_GT(small_objects, 200u);
}

}  // namespace
}  // namespace clrdiag::testing
