// Conformance of `dumpheap -live` / `dumpheap -dead` with the reference: the same objects are
// reachable (statistics rows and Total line, -short address lists) on the same dump, for
// every runtime × dump type. HeapApp runs with --garbage, so the heap holds known dead
// objects (a dropped Fixture.Garbage[] and its linked Fixture.Garbage objects).
#include <cstdio>
#include <map>
#include <regex>
#include <sstream>

#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::DotnetDump;

constexpr int kGarbage = 300;

// Lines allowed to differ, by prefix, and why. Empty lines are dropped as well: the reference
// ends its root-cache warnings with one.
const std::vector<conformance::IntentionalDifference> kLiveDifferences = {
    {"Calculating live objects",
     "progress of the reachability pass: the reference prints it only for the first -live/-dead "
     "of a session (it keeps the set), we compute the set for each command and say so each "
     "time; its root count counts duplicate and null roots"},
    {"Caching GC roots", "the reference's root cache warning (first use in a session only)"},
    {"Subsequent runs of this command", "the same warning's second line"},
};

// The shared dumps (shared_dumps.h) read: HeapApp 2000 --garbage 300 (kGarbage).
constexpr const char* kDumps = "heap2000_garbage300";

class LiveConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({kDumps}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override { UseDump(kDumps); }
};

TEST_P(LiveConformanceTest, LiveAndDeadMatchDotnetDump) {
  const std::string &id = id_, &path = path_;

  const std::vector<std::string> commands = {
      "dumpheap -live -stat",
      "dumpheap -dead -stat",
      "dumpheap -live -type Fixture.Customer",
      "dumpheap -dead -short -type Fixture.Garbage",
      "dumpheap -live -short -type Fixture.Garbage",
      "dumpheap -dead -stat -type Fixture.",
  };
  std::map<std::string, std::string> ours_by_command;
  // One session per command on each side: the reference keeps its live set for the session
  // and prints its progress lines only the first time.
  for (const std::string& cmd : commands) {
    SCOPED_TRACE(cmd);
    RunResult ours = daemon_->Client(conformance::WithCommands({"analyze", id}, {cmd}));
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = RunCommand(conformance::WithCommands({DotnetDump(), "analyze", path}, {cmd}));
    ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    conformance::ExpectSameOutput(conformance::WithoutEmptyLines(conformance::Body(ours.out)),
                                  conformance::WithoutEmptyLines(conformance::Body(ref.out)),
                                  kLiveDifferences);
    ours_by_command[cmd] = conformance::Body(ours.out);
  }
  // Not vacuous: the garbage is dead and the customers are live.
  const std::string& dead = ours_by_command["dumpheap -dead -stat"];
  EXPECT_TRUE(std::regex_search(
      dead, std::regex(" +" + std::to_string(kGarbage) + " +[0-9,]+ Fixture\\.Garbage\n")))
      << dead;
  EXPECT_EQ(ours_by_command["dumpheap -live -short -type Fixture.Garbage"].find_first_of(
                "0123456789abcdef"),
            std::string::npos)
      << ours_by_command["dumpheap -live -short -type Fixture.Garbage"];
  EXPECT_TRUE(std::regex_search(ours_by_command["dumpheap -live -stat"],
                                std::regex(" +2,000 +64,000 Fixture\\.Customer\n")))
      << ours_by_command["dumpheap -live -stat"];
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, LiveConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// Bad input: -live with -dead. The reference silently drops both and lists every object;
// asking for opposites is a mistake, so we refuse with the usage (intentional difference).
// The JSON form of -live is the usual dumpheap shape, filtered.
class LiveOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.Start()) << daemon_.log(); }
  Daemon daemon_;
};

TEST_F(LiveOptionsTest, LiveWithDeadIsAUsageErrorAndJsonIsFiltered) {
  auto app = StartFixture("HeapApp", {"500", "--garbage", "50"});
  ASSERT_TRUE(app);
  RunResult c =
      daemon_.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string id = ParseJson(c.out)["id"];

  RunResult bad = daemon_.Client(
      conformance::WithCommands({"analyze", id}, {"dumpheap -live -dead -stat", "dumpheap -stat"}));
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_CONTAINS(bad.err, "-live and -dead exclude each other");
  EXPECT_CONTAINS(bad.err, "Usage: dumpheap");
  EXPECT_CONTAINS(bad.out, "Total ");  // the session went on

  RunResult help = daemon_.Client(conformance::WithCommands({"analyze", id}, {"help dumpheap"}));
  EXPECT_CONTAINS(help.out, "-live   only objects reachable");

  // --json: one document per command; the result has dumpheap's usual shape, filtered.
  RunResult j =
      daemon_.Client({"analyze", id, "--json", "-c", "dumpheap -stat", "-c", "dumpheap -live -stat",
                      "-c", "dumpheap -dead -stat", "-c", "exit"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::vector<nlohmann::json> docs;
  std::istringstream in(j.out);
  for (std::string line; std::getline(in, line);) {
    auto doc = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << line.substr(0, 300);
    docs.push_back(doc);
  }
  ASSERT_GE(docs.size(), 3u) << j.out;
  auto count_of = [](const nlohmann::json& result, const std::string& type) -> uint64_t {
    for (const auto& row : result["statistics"]) {
      if (row["type"] == type) return row["count"].get<uint64_t>();
    }
    return 0;
  };
  const auto &all = docs[0]["result"], &live = docs[1]["result"], &dead = docs[2]["result"];
  EXPECT_EQ(live["total_objects"].get<uint64_t>() + dead["total_objects"].get<uint64_t>(),
            all["total_objects"].get<uint64_t>());
  EXPECT_EQ(live["total_size"].get<uint64_t>() + dead["total_size"].get<uint64_t>(),
            all["total_size"].get<uint64_t>());
  EXPECT_EQ(count_of(live, "Fixture.Customer"), 500u);
  EXPECT_EQ(count_of(dead, "Fixture.Customer"), 0u);
  EXPECT_EQ(count_of(dead, "Fixture.Garbage"), 50u);
  EXPECT_EQ(count_of(live, "Fixture.Garbage"), 0u);
}

}  // namespace
}  // namespace clrdiag::testing
