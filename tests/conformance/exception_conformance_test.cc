// Conformance of printexception / pe with dotnet-dump, on Heap and Full dumps of HeapApp
// started with --parked-exception: its main thread waits inside a catch block whose exception
// (InvalidOperationException "clrdiag nested exception", inner FormatException) was thrown
// while the FormatException was being handled, so the thread has a current exception and a
// nested one; Fixture.Roots.LastException holds an InvalidOperationException with an inner
// ArgumentException, thrown four and three frames deep, and Fixture.Roots.DynamicException an
// exception thrown by a DynamicMethod. Same lines (trailing blanks trimmed)
// for `pe <addr>` of every exception of the fixture, `pe`, `pe -nested` and `printexception`
// on the current (main) thread, clrthreads' Exception column for that thread, and `pe` on a
// dump of HeapApp without a current exception.
// The exception addresses are found with clrdiag's own dumpheap. The JSON form is checked
// against the text form.
//
// Intentional differences:
//  - Errors: for an object that is not an exception, an address that is no object, or an
//    unparsable address, the reference prints "Not a valid exception object", "Invalid
//    exception object: <%016x>" or "Invalid exception object <text>" as ordinary output (and
//    for the first two still reports the thread's nested exceptions and exits 0). clrdiag
//    reports the same text as the command's error (stderr, non-zero exit status) and runs the
//    next commands. Checked in BadInputIsAnErrorAndTheSessionGoesOn, with the reference's
//    wording.
//  - Heap dumps lack libcoreclr's RELRO pages; there GetMethodDescData of a dynamic (LCG)
//    method makes the DAC dereference a null class name and the reference dies (SIGSEGV).
//    clrdiag leaves such frames out on those dumps (as SOS leaves out any frame whose
//    MethodDesc it cannot read) and prints the rest. Checked in DynamicMethodFrame.
//  - "The current thread is unmanaged" (pe without an address, or its nested-exception check,
//    on a thread the runtime does not know) is an error in clrdiag; the reference prints it.
//  - -lines (-l): the reference adds " [file @ line]" from the portable PDB; clrdiag refuses
//    the option with a usage error until the PDB reader lands. -ccw (Windows COM) likewise.
//  - Command names: clrdiag also accepts "PrintException" (SOS's WinDbg spelling).
#include <cctype>
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

// The fixture's exceptions in one dump.
struct Targets {
  std::vector<std::string> invalid_operation;  // the stored one and the parked one
  std::string argument, format, customer;
  std::string dynamic;  // NotSupportedException thrown by a DynamicMethod
};

class ExceptionConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ =
        conformance::StartDaemonWithSharedDumps(*daemon_, {"heap1000_parked", "heap1000"});
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

  // Finds the two shared dumps (HeapApp with a thread parked in a catch block, and without)
  // of this test's runtime and type, and the fixture's exceptions in the first.
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    std::string error = Prepare(GetParam());
    ASSERT_TRUE(error.empty()) << error;
  }

  // Dumps for parameter `p` ("TYPE" or "RUNTIME:TYPE"); "" or what went wrong.
  static std::string Prepare(const std::string& p) {
    const std::string runtime = RuntimeOf(p), type = TypeOf(p);
    if (dumps_.count(p)) return "";
    for (const char* config : {"heap1000_parked", "heap1000"}) {
      conformance::SharedDump d = conformance::FindSharedDump(config, runtime, type);
      if (d.id.empty()) return std::string("no shared dump ") + config + " " + runtime + " " + type;
      (config == std::string("heap1000") ? plain_dumps_ : dumps_)[p] = {d.id, d.path};
    }
    return FindTargets(dumps_[p].id, &targets_[p]);
  }
  // The parameter of the Full dump of the same runtime as `p`.
  static std::string FullOf(const std::string& p) {
    size_t colon = p.find(':');
    return colon == std::string::npos ? "Full" : p.substr(0, colon) + ":Full";
  }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id}, commands));
  }

  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  // The addresses `dumpheap -mt <mt> -short` prints.
  static std::vector<std::string> Addresses(const std::string& id, const std::string& mt) {
    RunResult r = Ours(id, {"dumpheap -mt " + mt + " -short"});
    std::vector<std::string> out;
    std::istringstream in(Body(r.out));
    std::string a;
    while (r.exit_code == 0 && in >> a) out.push_back(a);
    return out;
  }

  static std::string FindTargets(const std::string& id, Targets* t) {
    RunResult stat = Ours(id, {"dumpheap -stat"});
    if (stat.exit_code != 0) return "dumpheap -stat failed: " + stat.err;
    std::map<std::string, std::string> mt_by_name;
    std::istringstream in(Body(stat.out));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream row(line);
      std::string mt, count, size, name;
      if (!(row >> mt >> count >> size)) continue;
      std::getline(row >> std::ws, name);
      mt_by_name[name] = mt;
    }
    for (const char* name :
         {"System.InvalidOperationException", "System.ArgumentException", "System.FormatException",
          "Fixture.Customer", "System.NotSupportedException"}) {
      if (mt_by_name[name].empty()) return std::string(name) + " is missing from:\n" + stat.out;
    }
    t->invalid_operation = Addresses(id, mt_by_name["System.InvalidOperationException"]);
    auto first = [&](const char* name) {
      auto a = Addresses(id, mt_by_name[name]);
      return a.empty() ? std::string() : a[0];
    };
    t->argument = first("System.ArgumentException");
    t->format = first("System.FormatException");
    t->customer = first("Fixture.Customer");
    t->dynamic = first("System.NotSupportedException");
    if (t->invalid_operation.size() != 2 || t->argument.empty() || t->format.empty() ||
        t->customer.empty() || t->dynamic.empty()) {
      return "dumpheap -mt did not find the fixture's exceptions in " + id;
    }
    return "";
  }

  static Daemon* daemon_;
  static std::map<std::string, CollectedDump> dumps_;
  static std::map<std::string, Targets> targets_;
  static std::map<std::string, CollectedDump> plain_dumps_;  // HeapApp without a current one
  static std::string setup_error_;
};

Daemon* ExceptionConformanceTest::daemon_ = nullptr;
std::map<std::string, CollectedDump> ExceptionConformanceTest::dumps_;
std::map<std::string, Targets> ExceptionConformanceTest::targets_;
std::map<std::string, CollectedDump> ExceptionConformanceTest::plain_dumps_;
std::string ExceptionConformanceTest::setup_error_;

TEST_P(ExceptionConformanceTest, PeOfAddressesSameAsDotnetDump) {
  const Targets& t = targets_[GetParam()];
  const std::vector<std::string> commands = {
      "pe " + t.invalid_operation[0], "pe " + t.invalid_operation[1], "pe " + t.argument,
      "printexception " + t.format,   "pe -nested 0x" + t.argument,
  };
  const CollectedDump& dump = dumps_[GetParam()];
  RunResult ours = Ours(dump.id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dump.path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  // What the fixture threw, as the reader would look for it.
  EXPECT_CONTAINS(ours.out, "Message:          clrdiag fixture exception\n");
  EXPECT_CONTAINS(ours.out, "InnerException:   System.ArgumentException, Use printexception ");
  EXPECT_CONTAINS(ours.out, "    SP               IP               Function\n");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.ThrowOuter()+0x");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.Level2()+0x");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.MakeException()+0x");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.ThrowInner()+0x");
  EXPECT_CONTAINS(ours.out, "Message:          clrdiag fixture inner exception\n");
  EXPECT_CONTAINS(ours.out, "HResult: 80070057\n");
  EXPECT_CONTAINS(ours.out, "There are nested exceptions on this thread.");
}

// A frame of a dynamic (LCG) method: its _stackTrace is an object[] whose first element is the
// frame data. On a Heap dump the reference dies inside the DAC (see the header), so clrdiag's
// output on the Heap dump is compared with the reference's on the Full dump of the same idle
// process, without the dynamic method's line.
TEST_P(ExceptionConformanceTest, DynamicMethodFrame) {
  const std::string full = FullOf(GetParam());
  std::string error = Prepare(full);
  ASSERT_TRUE(error.empty()) << error;
  const std::string& address = targets_[GetParam()].dynamic;
  ASSERT_EQ(address, targets_[full].dynamic);  // the same heap in both dumps
  RunResult ours = Ours(dumps_[GetParam()].id, {"pe " + address});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dumps_[full].path, {"pe " + address});
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  EXPECT_CONTAINS(ref.out, "!DynamicClass.ClrdiagDynamicThrow()+0x");
  std::string expected = Body(ref.out);
  if (TypeOf(GetParam()) == "Heap") {
    const size_t at = expected.find("DynamicClass.ClrdiagDynamicThrow()");
    ASSERT_NE(at, std::string::npos);
    const size_t begin = expected.rfind('\n', at) + 1;
    expected.erase(begin, expected.find('\n', at) + 1 - begin);
  }
  ExpectSameOutput(Body(ours.out), expected);
  EXPECT_CONTAINS(ours.out, "Message:          clrdiag dynamic exception\n");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.MakeDynamicException()+0x");
}

TEST_P(ExceptionConformanceTest, PeOfCurrentThreadSameAsDotnetDump) {
  const std::vector<std::string> commands = {"pe", "pe -nested", "printexception -nested",
                                             "clrthreads"};
  const CollectedDump& dump = dumps_[GetParam()];
  RunResult ours = Ours(dump.id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dump.path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  EXPECT_CONTAINS(ours.out, "Message:          clrdiag nested exception\n");
  EXPECT_CONTAINS(ours.out, "InnerException:   System.FormatException, Use printexception ");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.ThrowNested(System.Exception)+0x");
  EXPECT_CONTAINS(ours.out,
                  "\nNested exception -------------------------------------------------------"
                  "------\n");
  EXPECT_CONTAINS(ours.out, "Message:          clrdiag first exception\n");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.CatcherLevel3()+0x");
  EXPECT_CONTAINS(ours.out, " HeapApp.dll!Fixture.HeapProgram.CatcherLevel1()+0x");
  // clrthreads' Exception column names the main thread's exception.
  EXPECT_CONTAINS(ours.out, " Ukn System.InvalidOperationException 0000");
  EXPECT_CONTAINS(ours.out, " (nested exceptions)\n");
}

TEST_P(ExceptionConformanceTest, NoCurrentExceptionSameAsDotnetDump) {
  const std::vector<std::string> commands = {"pe", "pe -nested"};
  const CollectedDump& dump = plain_dumps_[GetParam()];
  RunResult ours = Ours(dump.id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dump.path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  EXPECT_CONTAINS(ours.out, "There is no current managed exception on this thread\n");
}

// Not an exception, not an object, not an address, bad options: clear errors in the
// reference's words, a non-zero exit status, and the session runs the next commands.
TEST_P(ExceptionConformanceTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  const Targets& t = targets_[GetParam()];
  const CollectedDump& dump = dumps_[GetParam()];
  struct Case {
    std::string command;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"pe " + t.customer, "Not a valid exception object"},
      {"pe 1234", "Invalid exception object: 0000000000001234"},
      {"pe xyz", "Invalid exception object xyz"},
      {"pe -foo", "Unknown option: -foo"},
      {"pe " + t.argument + " " + t.format, "Incorrect argument: " + t.format},
  };
  for (const Case& c : cases) {
    RunResult ours = Ours(dump.id, {c.command, "pe " + t.argument});
    EXPECT_NE(ours.exit_code, 0) << c.command;
    EXPECT_CONTAINS(ours.err, c.message);
    // The next command ran.
    EXPECT_CONTAINS(ours.out, "Message:          clrdiag fixture inner exception\n");
    EXPECT_EQ(ours.out.find(c.message), std::string::npos) << ours.out;
    // The reference says the same (on stdout).
    RunResult ref = Reference(dump.path, {c.command});
    EXPECT_CONTAINS(ref.out, c.message);
  }
  RunResult lines = Ours(dump.id, {"pe -lines " + t.argument});
  EXPECT_NE(lines.exit_code, 0);
  EXPECT_CONTAINS(lines.err, "-lines is not supported yet");
}

// The JSON form (analyze --json) says what the text form says: the same exceptions, frames and
// nested chain; errors are documents with an "error".
TEST_P(ExceptionConformanceTest, JsonAgreesWithText) {
  const CollectedDump& dump = dumps_[GetParam()];
  RunResult text = Ours(dump.id, {"pe -nested"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult js = daemon_->Client(WithCommands({"analyze", dump.id, "--json"}, {"pe -nested"}));
  ASSERT_EQ(js.exit_code, 0) << js.err;
  std::istringstream lines(js.out);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  auto doc = ParseJson(line);
  ASSERT_TRUE(doc.is_object()) << line;
  EXPECT_EQ(doc["command"], "pe -nested");
  const auto& r = doc["result"];
  ASSERT_TRUE(r.is_object()) << line;
  EXPECT_EQ(r["has_nested_exceptions"], true);
  ASSERT_TRUE(r["nested_exceptions"].is_array());
  ASSERT_EQ(r["nested_exceptions"].size(), 1u);

  // Every exception of the text, in order, with its frames.
  std::vector<nlohmann::json> exceptions = {r["exception"], r["nested_exceptions"][0]};
  for (const auto& e : exceptions) {
    const std::string address = e["address"].get<std::string>();
    ASSERT_LE(address.size(), 18u);
    EXPECT_CONTAINS(text.out, "Exception object: " + std::string(18 - address.size(), '0') +
                                  address.substr(2) + "\n" +
                                  "Exception type:   " + e["type"].get<std::string>() + "\n" +
                                  "Message:          " + e["message"].get<std::string>() + "\n");
    EXPECT_EQ(e["stack_trace_state"], "frames");
    for (const auto& f : e["stack_trace"]) {
      EXPECT_EQ(f["module"], "HeapApp.dll");
      char offset[32];
      std::snprintf(offset, sizeof(offset), "+0x%x", f["offset"].get<unsigned>());
      EXPECT_CONTAINS(text.out, f["module"].get<std::string>() + "!" +
                                    f["method"].get<std::string>() + offset + "\n");
    }
    EXPECT_TRUE(e["stack_trace_string"].is_null());
  }
  EXPECT_EQ(exceptions[0]["message"], "clrdiag nested exception");
  EXPECT_EQ(exceptions[0]["hresult"], "0x80131509");
  EXPECT_EQ(exceptions[0]["inner_exception"]["type"], "System.FormatException");
  EXPECT_EQ(exceptions[0]["inner_exception"]["address"], exceptions[1]["address"]);
  EXPECT_EQ(exceptions[1]["stack_trace"].size(), 4u);

  // clrthreads names the same exception for the main thread.
  RunResult threads = daemon_->Client(WithCommands({"analyze", dump.id, "--json"}, {"clrthreads"}));
  ASSERT_EQ(threads.exit_code, 0) << threads.err;
  auto t = ParseJson(threads.out.substr(0, threads.out.find('\n')));
  ASSERT_TRUE(t.is_object()) << threads.out;
  int with_exception = 0;
  for (const auto& row : t["result"]["threads"]) {
    if (row["exception"].is_null()) continue;
    ++with_exception;
    EXPECT_EQ(row["exception"]["address"], exceptions[0]["address"]);
    EXPECT_EQ(row["exception"]["type"], "System.InvalidOperationException");
    EXPECT_EQ(row["exception"]["nested_exceptions"], true);
  }
  EXPECT_EQ(with_exception, 1);

  RunResult bad = daemon_->Client(WithCommands({"analyze", dump.id, "--json"}, {"pe 1234"}));
  EXPECT_NE(bad.exit_code, 0);
  auto err = ParseJson(bad.out.substr(0, bad.out.find('\n')));
  ASSERT_TRUE(err.is_object()) << bad.out;
  EXPECT_CONTAINS(err["error"].get<std::string>(), "Invalid exception object: 0000000000001234");
}

INSTANTIATE_TEST_SUITE_P(DumpTypes, ExceptionConformanceTest, ::testing::Values("Heap", "Full"));
// The self-contained .NET 8 and .NET 9 builds of the fixture.
INSTANTIATE_TEST_SUITE_P(OlderRuntimes, ExceptionConformanceTest,
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
