// Conformance of gcinfo with dotnet-dump, on Heap and Full dumps of HeapApp on each runtime: the
// same lines for the GC info of fixture methods (small and fully interruptible, large with many
// untracked slots) and framework methods (ReadyToRun code with safe points, jitted overloads),
// given by MethodDesc and by code address, and for the managed frames of the main thread (by
// their return addresses). The MethodDescs and addresses come from clrdiag's own name2ee and
// clrstack output.
//
// Intentional differences (checked separately below):
//  - Bad input (no argument, not hex, an unknown option): the reference prints nothing (or its
//    usage); clrdiag reports the problem with the usage on stderr, exit status non-zero.
//  - An address that is no MethodDesc and not in managed code: the reference prints
//    "<address> is not a valid MethodDesc" on stdout; clrdiag prints the same message as the
//    error (stderr, non-zero exit status).
//  - `/d` (DML) and `-legacy`: SOS's own options; clrdiag accepts and ignores them. The installed
//    reference rejects `/d` ("Incorrect argument") and stops its remaining commands.
//  - The reference's newer builds may print the GC info through ISOSDacInterface18 (no "GC info"
//    line); the installed one prints the raw-blob form that clrdiag follows.
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

// Every first word after `label` on lines that start with it.
std::vector<std::string> Fields(const std::string& text, const std::string& label) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, label)) continue;
    std::istringstream in{std::string(line.substr(label.size()))};
    std::string v;
    if (in >> v) out.push_back(v);
  }
  return out;
}

class GcInfoConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap100_zoo"}); }
  static void TearDownTestSuite() { StopDaemon(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(UseDump("heap100_zoo"));

    RunResult found = Ours({
        "name2ee HeapApp.dll Fixture.HeapProgram.ThrowOuter",
        "name2ee HeapApp.dll Fixture.HeapProgram.Main",
        "name2ee HeapApp.dll Fixture.HeapProgram.BuildCustomers",
        "name2ee HeapApp.dll Fixture.Customer..ctor",
        "name2ee System.Private.CoreLib.dll System.String.Concat",
        "name2ee System.Private.CoreLib.dll System.Threading.Thread.Sleep",
        "name2ee System.Console.dll System.Console.WriteLine",
        "name2ee HeapApp.dll Fixture.Customer",
    });
    ASSERT_EQ(found.exit_code, 0) << found.out << found.err;
    method_descs_ = Fields(found.out, "MethodDesc:  ");
    // Jitted methods only (name2ee prints ffffffffffffffff for the others).
    for (const std::string& c : Fields(found.out, "JITTED Code Address: ")) {
      uint64_t a = std::stoull(c, nullptr, 16);
      if (a > 0x10000 && a != ~uint64_t{0}) code_.push_back(c);
    }
    auto mts = Fields(found.out, "MethodTable: ");
    ASSERT_GE(method_descs_.size(), 5u) << found.out;
    ASSERT_FALSE(code_.empty() || mts.empty()) << found.out;
    thrower_md_ = method_descs_[0];
    customer_mt_ = mts.back();

    // The return addresses of the main thread's managed frames.
    RunResult stack = Ours({"clrstack"});
    ASSERT_EQ(stack.exit_code, 0) << stack.err;
    std::set<std::string> seen;
    for (absl::string_view line : absl::StrSplit(stack.out, '\n')) {
      std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (w.size() < 3 || w[0].size() != 16 || w[1].size() != 16) continue;
      if (w[2][0] == '[') continue;  // an explicit frame: its IP is in the runtime
      if (seen.insert(w[1]).second) frames_.push_back(w[1]);
    }
    ASSERT_FALSE(frames_.empty()) << stack.out;
  }

  std::string thrower_md_, customer_mt_;
  std::vector<std::string> method_descs_, code_, frames_;
};

TEST_P(GcInfoConformanceTest, SameAsDotnetDump) {
  std::vector<std::string> commands;
  for (const std::string& md : method_descs_) commands.push_back("gcinfo " + md);
  for (const std::string& code : code_) {
    commands.push_back("gcinfo " + code);
    commands.push_back(
        absl::StrFormat("gcinfo %x", std::stoull(code, nullptr, 16) + 3));  // inside the code
  }
  for (const std::string& ip : frames_) commands.push_back("gcinfo " + ip);
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  // The listing has what it should: the fully interruptible fixture method and tracked slots.
  EXPECT_CONTAINS(ours.out, " interruptible\n");
  EXPECT_CONTAINS(ours.out, "Untracked: +rbp-");
}

TEST_P(GcInfoConformanceTest, NotAMethodIsAnErrorWithTheReferencesMessage) {
  const std::vector<std::string> bad = {"gcinfo 1234", "gcinfo " + customer_mt_};
  std::string expected_err;
  for (const std::string& c : bad) {
    RunResult ours = Ours({c});
    EXPECT_NE(ours.exit_code, 0) << c;
    RunResult ref = Reference({c});
    ASSERT_EQ(ref.exit_code, 0) << ref.err;
    const std::string message = Body(ref.out);
    ASSERT_NE(message.find(" is not a valid MethodDesc"), std::string::npos) << ref.out;
    EXPECT_CONTAINS(ours.err, message.substr(0, message.find('\n'))) << c;
    EXPECT_EQ(Body(ours.out), "") << c;
  }
}

TEST_P(GcInfoConformanceTest, BadArgumentsAreErrors) {
  RunResult r = Ours({"gcinfo", "gcinfo zz", "gcinfo -x " + thrower_md_,
                      "gcinfo " + thrower_md_ + " " + thrower_md_, "gcinfo " + thrower_md_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "give one MethodDesc or code address");
  EXPECT_CONTAINS(r.err, "'zz' is not a hex address");
  EXPECT_CONTAINS(r.err, "unknown option '-x'");
  EXPECT_CONTAINS(r.out, "Pointer table:");  // the last command still ran
}

TEST_P(GcInfoConformanceTest, JsonHasTheSameValues) {
  RunResult text = Ours({"gcinfo " + thrower_md_});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult json =
      daemon_->Client(WithCommands({"analyze", id_, "--json"}, {"gcinfo " + thrower_md_}));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json result;
  std::istringstream docs(json.out);
  std::string line;
  while (std::getline(docs, line)) {
    auto doc = ParseJson(line);
    if (doc.is_object() && doc.contains("result") && doc["command"] != "exit") {
      result = doc["result"];
    }
  }
  ASSERT_TRUE(result.is_object()) << json.out;
  auto hex = [](const std::string& s) {
    return absl::StrFormat("0x%x", std::stoull(s, nullptr, 16));
  };
  EXPECT_EQ(result["method_desc"], hex(thrower_md_));
  const std::string out = Body(text.out);
  EXPECT_EQ(result["entry_point"], hex(Fields(out, "entry point ").at(0)));
  EXPECT_EQ(result["gc_info"], hex(Fields(out, "GC info ").at(0)));
  EXPECT_EQ(result["jit"], "JIT");
  EXPECT_EQ(absl::StrFormat("%x", result["header"]["code_size"].get<uint32_t>()),
            Fields(out, "Code size: ").at(0));
  EXPECT_EQ(result["header"]["frame_register"], Fields(out, "Frame pointer: ").at(0));
  // The untracked slots and the interruptible ranges as the text lists them.
  // (The JSON has them in the GC info's order; SOS prints them last first.)
  std::string untracked = "Untracked:";
  const auto& slots = result["untracked"];
  for (size_t i = slots.size(); i-- > 0;) untracked += " +" + slots[i]["text"].get<std::string>();
  EXPECT_CONTAINS(out, untracked + "\n");
  ASSERT_FALSE(result["interruptible_ranges"].empty()) << result;
  for (const auto& r : result["interruptible_ranges"]) {
    EXPECT_CONTAINS(out, absl::StrFormat("%08x interruptible\n", r["start"].get<uint32_t>()));
    EXPECT_CONTAINS(out, absl::StrFormat("%08x not interruptible\n", r["stop"].get<uint32_t>()));
  }
  size_t changes = 0;
  for (const auto& c : result["changes"]) {
    if (c["kind"] == "live" || c["kind"] == "dead") {
      ++changes;
      EXPECT_CONTAINS(out,
                      (c["kind"] == "live" ? " +" : " -") + c["slot"]["text"].get<std::string>());
    }
  }
  EXPECT_GT(changes, 0u) << result;
}

INSTANTIATE_TEST_SUITE_P(Dumps, GcInfoConformanceTest, conformance::AllRuntimesAndDumpTypes(),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
