// Conformance of the stack and thread-selection commands (clrstack, threads / setthread) with
// dotnet-dump, on Heap, Full, Mini and Triage dumps of HeapApp (main thread asleep, three workers
// and the "clrdiag-deep" thread blocked in WaitOne, the latter under Fixture.Deep.Level1 → Level2 →
// Level3). Each dump is compared with the reference's output on the same dump, line for line
// (trailing blanks trimmed), source lines ("[.../Program.cs @ 42]", read from HeapApp.pdb next to
// HeapApp.dll) included.
//
// Intentional differences:
//  - Errors (setthread 9999, clrstack -bogus, setthread abc): dotnet-dump prints its message on
//    stdout and stops running the remaining -c commands; clrdiag reports the error (with the
//    usage for bad arguments) on stderr, exits non-zero at the end and runs the next commands.
//    Checked separately below, not compared.
//  - clrstack -f (native frames), -i (ICorDebug), -gc, -r and /d are refused by name: clrdiag
//    has no native unwinder or ICorDebug yet.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
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

struct CollectedDump {
  std::string id;
  std::string path;
};

class StackConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {"heap500"});
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  // The parameter is "TYPE" (the .NET 10 fixture) or "RUNTIME:TYPE" (e.g. "net8.0:Heap").
  static std::string RuntimeOf(const std::string& p) {
    size_t colon = p.find(':');
    return colon == std::string::npos ? kDefaultRuntime : p.substr(0, colon);
  }
  static std::string TypeOf(const std::string& p) { return p.substr(p.find(':') + 1); }

  // Finds the shared dump of HeapApp of this test's runtime and type.
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    const std::string runtime = RuntimeOf(GetParam());
    const std::string type = TypeOf(GetParam());
    if (dumps_.count(GetParam())) return;
    conformance::SharedDump d = conformance::FindSharedDump("heap500", runtime, type);
    ASSERT_FALSE(d.id.empty()) << "no shared dump heap500 " << runtime << " " << type;
    dumps_[GetParam()] = {d.id, d.path};
  }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id}, commands));
  }
  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  // Runs `commands` on the dump of this test's type with both tools and compares the output.
  // Returns clrdiag's output.
  std::string Compare(const std::vector<std::string>& commands) {
    const CollectedDump& dump = dumps_[GetParam()];
    RunResult ours = Ours(dump.id, commands);
    EXPECT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = Reference(dump.path, commands);
    EXPECT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    ExpectSameOutput(Body(ours.out), Body(ref.out));
    return Body(ours.out);
  }

  // The OS thread ids of the dump, in `threads` order, from clrdiag's own listing.
  static std::vector<uint32_t> ThreadIds(const std::string& id) {
    std::vector<uint32_t> tids;
    std::istringstream in(Body(Ours(id, {"threads"}).out));
    std::string line;
    while (std::getline(in, line)) {
      size_t open = line.find('('), close = line.find(')');
      if (open != std::string::npos && close > open) {
        tids.push_back(static_cast<uint32_t>(std::stoul(line.substr(open + 1, close - open - 1))));
      }
    }
    return tids;
  }

  static Daemon* daemon_;
  static std::map<std::string, CollectedDump> dumps_;
  static std::string setup_error_;
};

Daemon* StackConformanceTest::daemon_ = nullptr;
std::map<std::string, CollectedDump> StackConformanceTest::dumps_;
std::string StackConformanceTest::setup_error_;

using StackConformance = StackConformanceTest;

TEST_P(StackConformance, ThreadsSameAsDotnetDump) {
  std::string out = Compare({"threads", "threads -v"});
  EXPECT_EQ(out.rfind("*0 0x", 0), 0u) << out;  // thread 0 is current at the start
}

TEST_P(StackConformance, ClrStackAllSameAsDotnetDump) {
  std::string out = Compare({"clrstack -all"});
  // The deep thread's chain, innermost first, with lines from HeapApp.pdb.
  size_t l3 = out.find(" Fixture.Deep.Level3(Int32) [");
  size_t l2 = out.find(" Fixture.Deep.Level2(Int32) [");
  size_t l1 = out.find(" Fixture.Deep.Level1(Int32) [");
  ASSERT_NE(l3, std::string::npos) << out;
  EXPECT_LT(l3, l2);
  EXPECT_LT(l2, l1);
  EXPECT_NE(out.find("Program.cs @ ", l3), std::string::npos);
  EXPECT_CONTAINS(out, " Fixture.HeapProgram.WorkerWait() [");
  EXPECT_CONTAINS(out, " Fixture.HeapProgram.Main(System.String[]) [");
  EXPECT_CONTAINS(out, "        Child SP               IP Call Site\n");
}

// Every thread made current in turn (native-only threads included), by index and by OS id.
TEST_P(StackConformance, SetThreadThenClrStackSameAsDotnetDump) {
  std::vector<uint32_t> tids = ThreadIds(dumps_[GetParam()].id);
  ASSERT_GE(tids.size(), 6u);
  std::vector<std::string> commands;
  for (size_t i = 0; i < tids.size(); ++i) {
    commands.push_back("setthread " + std::to_string(i));
    commands.push_back("clrstack");
  }
  commands.push_back("threads");
  commands.push_back("setthread -t " + std::to_string(tids[2]));
  commands.push_back("threads");
  commands.push_back("clrstack -n");
  commands.push_back("threads 1");
  commands.push_back("clrstack -c 2");
  std::string out = Compare(commands);
  EXPECT_CONTAINS(out, "Unable to walk the managed stack.");  // some thread is native only
  EXPECT_CONTAINS(out, "\n*2 0x");
}

TEST_P(StackConformance, ClrStackArgumentsAndLocalsSameAsDotnetDump) {
  std::vector<uint32_t> tids = ThreadIds(dumps_[GetParam()].id);
  std::vector<std::string> commands;
  for (size_t i = 0; i < tids.size(); ++i) {
    commands.push_back("setthread " + std::to_string(i));
    commands.push_back("clrstack -a");
  }
  commands.push_back("setthread 0");
  commands.push_back("clrstack -p");
  commands.push_back("clrstack -l");
  commands.push_back("clrstack -all -p");
  std::string out = Compare(commands);
  // In Mini and Triage dumps the DAC names no parameter (GetArgumentByIndex fails): both tools
  // print the heading alone.
  if (TypeOf(GetParam()) == "Heap" || TypeOf(GetParam()) == "Full") {
    EXPECT_CONTAINS(out, "    PARAMETERS:\n        depth (0x");
  } else {
    EXPECT_CONTAINS(out, "    PARAMETERS:\n\n");
  }
}

// Bad input: a clear error on stderr, non-zero exit, and the session goes on.
TEST_P(StackConformance, BadInputIsAnErrorAndTheSessionGoesOn) {
  const std::string& id = dumps_[GetParam()].id;
  RunResult r = Ours(id, {"setthread 9999", "threads", "clrstack -bogus", "setthread abc",
                          "setthread -t 1", "clrstack -f", "clrstack -c", "clrstack"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "Invalid thread index: 9999");
  EXPECT_CONTAINS(r.err, "Unknown option: -bogus");
  EXPECT_CONTAINS(r.err, "Usage: clrstack [-all]");
  EXPECT_CONTAINS(r.err, "'abc' is not a thread index or id");
  EXPECT_CONTAINS(r.err, "Invalid thread id: 1");
  EXPECT_CONTAINS(r.err, "option -f is not supported");
  EXPECT_CONTAINS(r.err, "-c needs a number of frames");
  // The commands after the errors ran: thread 0 is still current.
  EXPECT_CONTAINS(r.out, "*0 0x");
  EXPECT_CONTAINS(r.out, "OS Thread Id: 0x");
  EXPECT_CONTAINS(r.out, " Fixture.HeapProgram.Main(System.String[]) [");
}

// The JSON form (analyze --json) says what the text form says: per thread the same frames with
// the same stack pointers, methods and source lines; `threads` and `setthread` likewise.
TEST_P(StackConformance, JsonAgreesWithText) {
  const std::string& id = dumps_[GetParam()].id;
  const std::vector<std::string> commands = {"clrstack -all", "setthread 2", "threads",
                                             "setthread -t 1"};
  RunResult text = Ours(id, {"clrstack -all"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::vector<std::string> argv = {"analyze", id, "--json"};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  RunResult r = daemon_->Client(argv);
  EXPECT_NE(r.exit_code, 0);  // setthread -t 1: no such thread
  std::vector<nlohmann::json> docs;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line.substr(0, 300);
    docs.push_back(j);
  }
  ASSERT_EQ(docs.size(), commands.size()) << r.out;
  for (size_t i = 0; i < commands.size(); ++i) EXPECT_EQ(docs[i]["command"], commands[i]);

  // Rebuild the text rows from the JSON and compare with the text form.
  std::string rebuilt;
  for (const auto& t : docs[0]["result"]["threads"]) {
    char header[64];
    snprintf(header, sizeof(header), "OS Thread Id: 0x%x\n", t["os_thread_id"].get<unsigned>());
    rebuilt += header;
    ASSERT_TRUE(t["managed"].get<bool>());
    rebuilt += "        Child SP               IP Call Site\n";
    for (const auto& f : t["frames"]) {
      auto hex = [](const nlohmann::json& v, bool upper) {
        char buf[32];
        snprintf(buf, sizeof(buf), upper ? "%016llX" : "%016llx",
                 std::stoull(v.get<std::string>().substr(2), nullptr, 16));
        return std::string(buf);
      };
      rebuilt += hex(f["child_sp"], true) + " ";
      if (f["kind"] == "runtime") {
        rebuilt += hex(f["ip"], false) + " [" + f["frame_name"].get<std::string>() + ": " +
                   hex(f["frame_address"], false) + "] " +
                   (f["method"].is_null() ? "" : f["method"].get<std::string>()) + "\n";
      } else {
        rebuilt += hex(f["ip"], true) + " " + f["method"].get<std::string>();
        if (!f["source"].is_null()) {
          rebuilt += " [" + f["source"]["file"].get<std::string>() + " @ " +
                     std::to_string(f["source"]["line"].get<int>()) + "]";
        }
        rebuilt += "\n";
      }
    }
  }
  ExpectSameOutput(rebuilt, Body(text.out));

  EXPECT_EQ(docs[1]["result"]["current"], 2);
  const auto& threads = docs[2]["result"]["threads"];
  ASSERT_GT(threads.size(), 2u);
  EXPECT_EQ(docs[1]["result"]["os_thread_id"], threads[2]["os_thread_id"]);
  EXPECT_TRUE(threads[2]["current"].get<bool>());
  EXPECT_FALSE(threads[0]["current"].get<bool>());
  EXPECT_EQ(docs[3]["error"], "Invalid thread id: 1");
}

// Symbols: a copy of HeapApp runs from a private directory, so its PDB can be swapped after the
// dump is taken. With the right PDB both tools print source lines; with another build's PDB
// under the same name (its id does not match the assembly's CodeView record) or with none,
// both print the frames without them.
TEST(StackSymbolsConformanceTest, StaleOrMissingPdbGivesNoLinesLikeDotnetDump) {
  ASSERT_TRUE(FileExists(DotnetDump()));
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  TempDir t;
  const std::string app_dir = t / "HeapApp";
  std::filesystem::copy(FixturesDir() + "/HeapApp", app_dir,
                        std::filesystem::copy_options::recursive);
  auto app = Process::Spawn({app_dir + "/HeapApp", "200"});
  ASSERT_TRUE(app && app->WaitForLine("READY", std::chrono::seconds(60)));
  RunResult c = d.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto info = ParseJson(c.out);
  const std::string id = info["id"], path = info["path"];
  auto compare = [&](const std::string& what) {
    RunResult ours = d.Client(WithCommands({"analyze", id}, {"clrstack -all"}));
    EXPECT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path}, {"clrstack -all"}));
    EXPECT_EQ(ref.exit_code, 0) << ref.err;
    SCOPED_TRACE(what);
    ExpectSameOutput(Body(ours.out), Body(ref.out));
    return Body(ours.out);
  };
  EXPECT_CONTAINS(compare("matching PDB"), "/Program.cs @ ");

  const std::string pdb = app_dir + "/HeapApp.pdb";
  std::filesystem::copy_file(FixturesDir() + "/SleepApp/SleepApp.pdb", pdb,
                             std::filesystem::copy_options::overwrite_existing);
  std::string stale = compare("another build's PDB");
  EXPECT_EQ(stale.find(" @ "), std::string::npos) << stale;
  EXPECT_CONTAINS(stale, " Fixture.Deep.Level3(Int32)\n");

  std::filesystem::remove(pdb);
  std::string missing = compare("no PDB");
  EXPECT_EQ(missing.find(" @ "), std::string::npos) << missing;
  EXPECT_CONTAINS(missing, " Fixture.Deep.Level3(Int32)\n");
}

INSTANTIATE_TEST_SUITE_P(DumpTypes, StackConformance,
                         ::testing::Values("Heap", "Full", "Mini", "Triage"));
// The self-contained .NET 8 and .NET 9 builds of the fixture (Heap and Full).
INSTANTIATE_TEST_SUITE_P(OlderRuntimes, StackConformance,
                         ::testing::Values("net8.0:Heap", "net8.0:Full", "net9.0:Heap",
                                           "net9.0:Full"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace clrdiag::testing
