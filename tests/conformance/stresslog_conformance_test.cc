// Conformance of the stress log commands with dotnet-dump, on Heap and Full dumps of HeapApp
// run with the stress log on (DOTNET_StressLog=1, every facility, level 6 so the GC's promote
// and relocate records are logged; HeapApp's compacting GC before READY makes them) on each
// runtime: dumplog's console lines and the whole file it writes, and histinit, histstats,
// histroot, histobj, histobjfind and histclear on a root and objects taken from the log.
//
// Intentional differences (checked below, not compared):
//  - `dumplog` without a file name streams the log into the session's output (the reference
//    writes StressLog.txt in its current directory; the worker's directory means nothing to a
//    client). `dumplog <file>` needs an absolute path and a local admin's session.
//  - Messages with floating-point arguments: the reference prints whatever the FPU registers
//    held (the log stores no doubles); clrdiag prints 0. Lines holding "%f"-style values are
//    the only ones skipped (kFloatLines), and only if present.
//  - Failures (no stress log, bad arguments): the reference prints its message on stdout and
//    drops its remaining -c commands; clrdiag prints the same message on stderr, exits non-zero
//    and runs the next command.
//  - `logging enable`: the reference's trace is .NET's TraceSource lines; clrdiag's is its
//    worker's per-command trace ("clrdiag-worker: ..."). Only the switch messages are compared.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

struct Dump {
  std::string id, path;
};

class StressLogConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {"heap100_stresslog"});
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
    dumps_.clear();
  }

  // One dump per (runtime, type, stress log on/off): with the stress log, the shared dumps
  // (shared_dumps.h, "heap100_stresslog": HeapApp 100 with DOTNET_StressLog=1, every
  // facility, level 6, a 1 MiB log per thread);
  // without it, collected once for the suite.
  static Dump Collect(const std::string& runtime, const std::string& type, bool stress_log) {
    if (stress_log) {
      conformance::SharedDump d = conformance::FindSharedDump("heap100_stresslog", runtime, type);
      return {d.id, d.path};
    }
    std::string key = runtime + "/" + type + "/nolog";
    if (auto it = dumps_.find(key); it != dumps_.end()) return it->second;
    std::unique_ptr<Process> app = StartFixture("HeapApp", {"100"}, runtime);
    if (!app) return {};
    RunResult c =
        daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", type, "--json"});
    auto info = ParseJson(c.out);
    if (c.exit_code != 0 || !info.is_object() || !info.contains("id")) return {};
    Dump d{info["id"].get<std::string>(), info["path"].get<std::string>()};
    dumps_[key] = d;
    return d;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    dump_ = Collect(std::get<0>(GetParam()), std::get<1>(GetParam()), true);
    ASSERT_FALSE(dump_.id.empty()) << "HeapApp with the stress log did not start or collect";
  }

  RunResult Ours(const std::vector<std::string>& commands, bool json = false) {
    std::vector<std::string> argv = {"analyze", dump_.id};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }
  RunResult Reference(const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", dump_.path}, commands), {},
                      std::chrono::seconds(300));
  }

  static Daemon* daemon_;
  static std::string setup_error_;
  static std::map<std::string, Dump> dumps_;
  Dump dump_;
};

Daemon* StressLogConformanceTest::daemon_ = nullptr;
std::string StressLogConformanceTest::setup_error_;
std::map<std::string, Dump> StressLogConformanceTest::dumps_;

// Lines of the log whose format has floating-point conversions (see the file comment).
std::vector<conformance::IntentionalDifference> FloatLines(const std::string& log) {
  std::vector<conformance::IntentionalDifference> skip;
  std::istringstream in(log);
  std::string line;
  static const std::regex kFloatMessage(R"(^\s*[0-9a-f]+ +[0-9.]+ : \S+ +(.*\d+\.\d{3}(ms|mb)).*)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kFloatMessage)) {
      skip.push_back({line.substr(0, line.find(" : ") + 3), "doubles are not in the log"});
    }
  }
  return skip;
}

TEST_P(StressLogConformanceTest, DumpLogWritesTheSameFileAsDotnetDump) {
  TempDir dir("clrdiag-stresslog");
  std::string ref_file = dir / "StressLog.txt", our_file = dir / "ours/StressLog.txt";
  ASSERT_EQ(::mkdir((dir / "ours").c_str(), 0755), 0);
  RunResult ref = Reference({"dumplog " + ref_file});
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  RunResult ours = Ours({"dumplog " + our_file});
  ASSERT_EQ(ours.exit_code, 0) << ours.out << ours.err;
  ExpectSameOutput(Body(ours.out), absl::StrReplaceAll(Body(ref.out), {{ref_file, our_file}}));
  std::string ref_log = ReadFile(ref_file), our_log = ReadFile(our_file);
  ASSERT_FALSE(ref_log.empty());
  ExpectSameOutput(our_log, ref_log, FloatLines(ref_log));
  // The log has the GC's relocation records the hist* commands need.
  EXPECT_CONTAINS(our_log, "RELOCATED");
  EXPECT_CONTAINS(our_log, "IGCHeap::Promote: Promote GC Root");

  // Without a file name, the same log arrives in the output (with the clocks in full).
  RunResult streamed = Ours({"dumplog"});
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_CONTAINS(streamed.out, "Attempting to dump Stress log to the session output\n");
  // Line for line the file's messages, but for bytes that are not UTF-8 (a %s argument that
  // points at anything), which the output (protobuf strings) carries as U+FFFD.
  std::string file_body = our_log.substr(our_log.find("\nTHREAD  TIMESTAMP"));
  size_t at = streamed.out.find("\nTHREAD  TIMESTAMP");
  ASSERT_NE(at, std::string::npos) << streamed.out.substr(0, 2000);
  std::vector<std::string> want = conformance::Lines(file_body);
  std::vector<std::string> got = conformance::Lines(streamed.out.substr(at));
  ASSERT_GE(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    bool ascii = std::all_of(want[i].begin(), want[i].end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) {
      EXPECT_EQ(got[i], want[i]) << "line " << i;
    } else {
      EXPECT_EQ(got[i].substr(0, got[i].find(" : ")), want[i].substr(0, want[i].find(" : ")));
    }
  }
  EXPECT_CONTAINS(streamed.out, "    Start time         ");
  EXPECT_CONTAINS(streamed.out, "SUCCESS: Stress log dumped\n");

  // JSON: one entry per message and thread end; entries counts the messages.
  RunResult json = Ours({"dumplog"}, true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = ParseJson(json.out.substr(0, json.out.find('\n')));
  ASSERT_TRUE(doc.is_object() && doc.contains("result")) << json.out.substr(0, 500);
  const auto& r = doc["result"];
  size_t messages = 0;
  for (const auto& m : r["messages"]) {
    messages += m.contains("message") || m.contains("task_switch_from") ? 1 : 0;
  }
  EXPECT_EQ(messages, r["entries"].get<size_t>());
  EXPECT_EQ(r["header"]["facilities_to_log"], 0xffffffffu);
  EXPECT_EQ(r["header"]["level_to_log"], 6);
}

TEST_P(StressLogConformanceTest, HistCommandsSameAsDotnetDump) {
  // A relocated root and the object it pointed to before and after, from our own log.
  RunResult log = Ours({"dumplog"});
  ASSERT_EQ(log.exit_code, 0) << log.err;
  std::smatch m;
  static const std::regex kReloc(
      R"(GC Root 0x([0-9a-f]+) RELOCATED 0x([0-9a-f]+) -> 0x([0-9a-f]+))");
  ASSERT_TRUE(std::regex_search(log.out, m, kReloc)) << "no relocation record in the log";
  std::string root = m[1], before = m[2], after = m[3];
  const std::vector<std::string> commands = {"histstats",
                                             "histinit",
                                             "histstats",
                                             "histroot " + root,
                                             "histobj " + after,
                                             "histobjfind " + after,
                                             "histobjfind " + before,
                                             "histobj 0",
                                             "histclear",
                                             "histstats",
                                             "histroot " + root};
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));

  // What a user looks for: at least one GC with relocations, and the root's move in it.
  RunResult json = Ours({"histinit", "histstats", "histroot " + root}, true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::vector<nlohmann::json> docs;
  std::istringstream in(json.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) docs.push_back(ParseJson(line));
  }
  ASSERT_GE(docs.size(), 3u) << json.out;  // and the exit command's
  ASSERT_FALSE(docs[1]["result"]["gcs"].empty());
  EXPECT_GT(docs[1]["result"]["gcs"][0]["relocs"].get<int>(), 0);
  bool moved = false;
  for (const auto& g : docs[2]["result"]["gcs"]) {
    if (g.contains("value") && g["value"] == "0x" + after) moved = true;
  }
  EXPECT_TRUE(moved) << docs[2];
}

// Errors, the switches and help; the same whatever the runtime, so checked on one.
class StressLogErrorTest : public StressLogConformanceTest {};

TEST_P(StressLogErrorTest, NoStressLogIsAnErrorAsInTheReference) {
  Dump plain = Collect(std::get<0>(GetParam()), std::get<1>(GetParam()), false);
  ASSERT_FALSE(plain.id.empty());
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", plain.path}, {"dumplog"}));
  EXPECT_NE(ref.exit_code, 0);
  EXPECT_CONTAINS(ref.out, "No Stress log in the image, no file written");
  RunResult ours = daemon_->Client(WithCommands({"analyze", plain.id}, {"dumplog"}));
  EXPECT_NE(ours.exit_code, 0);
  EXPECT_CONTAINS(ours.err,
                  "----- No thread logs in the image: The stress log was probably not initialized "
                  "correctly. -----");
  EXPECT_CONTAINS(ours.err, "No Stress log in the image, no file written");

  RunResult ref_init =
      RunCommand(WithCommands({DotnetDump(), "analyze", plain.path}, {"histinit"}));
  EXPECT_NE(ref_init.exit_code, 0);
  EXPECT_CONTAINS(ref_init.out, "No Stress log in the image, GCHist commands unavailable");
  RunResult init = daemon_->Client(WithCommands({"analyze", plain.id}, {"histinit", "histstats"}));
  EXPECT_NE(init.exit_code, 0);
  EXPECT_CONTAINS(init.out, "Attempting to read Stress log\n");
  EXPECT_CONTAINS(init.err, "No Stress log in the image, GCHist commands unavailable");
  EXPECT_CONTAINS(init.out, "No duplicate promote or relocate messages found in the log.");
}

TEST_P(StressLogErrorTest, BadArgumentsAreErrorsAndTheSessionGoesOn) {
  RunResult r =
      Ours({"histroot", "histobj xyz", "histobjfind 1 2", "dumplog relative.txt",
            "dumplog -addr 1234", "histclear now", "logging /tmp/x.log", "dbgout on", "histstats"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "!Root <valid object pointer>");
  EXPECT_CONTAINS(r.err, "!object <valid object pointer>");
  EXPECT_CONTAINS(r.err, "!ObjSearch <valid object pointer>");
  EXPECT_CONTAINS(r.err, "name the file with an absolute path");
  EXPECT_CONTAINS(r.err, "unknown option '-addr'");
  EXPECT_CONTAINS(r.err, "unexpected argument 'now'");
  EXPECT_CONTAINS(r.err, "a log file ('/tmp/x.log') is not supported");
  EXPECT_CONTAINS(r.err, "unexpected argument 'on'");
  EXPECT_CONTAINS(r.out, "No duplicate promote or relocate messages found in the log.");
  // Each command has help.
  for (const char* c : {"dumplog", "histinit", "histclear", "histstats", "histroot", "histobj",
                        "histobjfind", "logging", "dbgout"}) {
    RunResult h = Ours({std::string("help ") + c});
    EXPECT_EQ(h.exit_code, 0) << c << h.err;
    EXPECT_CONTAINS(h.out, c);
  }
}

TEST_P(StressLogErrorTest, LoggingAndDbgoutShowTheWorkersTraceAndStop) {
  const std::vector<std::string> switches = {"logging", "dbgout", "dbgout -off", "logging -d"};
  for (const auto& s : switches) {
    RunResult ours = Ours({s});
    RunResult ref = Reference({s});
    ASSERT_EQ(ref.exit_code, 0) << s << ref.out << ref.err;
    EXPECT_EQ(ours.exit_code, 0) << s << ours.err;
    ExpectSameOutput(Body(ours.out), Body(ref.out));
  }
  RunResult r = Ours({"eeversion", "logging enable", "eeversion", "logging disable", "eeversion",
                      "dbgout", "histinit", "dbgout -off", "histinit"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The trace appears only between enable and disable: one command traced (eeversion), plus
  // `logging disable` itself.
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t p = r.out.find(needle); p != std::string::npos; p = r.out.find(needle, p + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(count("clrdiag-worker: running 'eeversion'"), 1u) << r.out;
  EXPECT_EQ(count("clrdiag-worker: 'eeversion' finished in "), 1u) << r.out;
  EXPECT_EQ(count("clrdiag-worker: running 'logging'"), 1u) << r.out;
  EXPECT_EQ(count("dbgout: stress log at 0x"), 1u) << r.out;
  EXPECT_CONTAINS(r.out, "Logging is enabled\n");
  EXPECT_CONTAINS(r.out, "Logging is disabled\n");
  // JSON output is never mixed with the trace.
  RunResult j = Ours({"logging enable", "dbgout", "histinit"}, true);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  std::istringstream in(j.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      EXPECT_TRUE(ParseJson(line).is_object()) << line;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, StressLogConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, StressLogErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
