// Conformance of the memory commands (d/readmemory, db, dc, da, du, dw, dd, dp, dq),
// threadstate, registers/r, sos/ext, dumpmd and ip2md (with the source line from the
// fixture's portable PDB) with dotnet-dump, on Heap and Full dumps of HeapApp on each
// runtime: the same lines for one session's sequence of commands on a Fixture.Customer and its name
// string — every size variant, a bare `d` that continues where the last dump stopped in the
// remembered format, --end, --hex-prefix, --show-address:false, -a, the string modes, and an
// address that is not in the dump (`??`).
//
// Intentional differences (checked separately below, not compared):
//  - registers: eflags is the thread's real flags register; the reference prints 0 for it
//    (its register view of an ELF core leaves the flags out), and it swaps r8 and r9 (the
//    kernel's user_regs_struct stores r9 before r8; gdb on the same core shows our values).
//    `r rip` shows one register;
//    the reference refuses register names.
//  - A bare `d` before any address: the reference dumps address 0 (all `??`); clrdiag asks for
//    an address.
//  - A string that runs into memory not in the dump: the reference reads '?' forever (until
//    interrupted); clrdiag stops there and says so.
//  - Bad arguments: the reference prints its parser's message and drops its remaining -c
//    commands; clrdiag reports the problem and the usage on stderr (exit status non-zero),
//    leaves the remembered format unchanged, and runs the next command.
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/str_format.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

class MemoryConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap200"}); }
  static void TearDownTestSuite() { StopDaemon(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(UseDump("heap200"));

    // A customer (MT, Name, Id) and its name string, found with clrdiag's own commands.
    RunResult stat = Ours({"dumpheap -stat"});
    std::istringstream rows(Body(stat.out));
    std::string line, customer_mt;
    while (std::getline(rows, line)) {
      if (line.size() > 17 && line.compare(line.size() - 17, 17, " Fixture.Customer") == 0) {
        customer_mt = line.substr(0, line.find_first_not_of("0123456789abcdef"));
      }
    }
    ASSERT_FALSE(customer_mt.empty()) << stat.out;
    RunResult heap = Ours({"dumpheap -mt " + customer_mt + " -short"});
    std::istringstream in(Body(heap.out));
    std::string first;
    in >> first;
    ASSERT_TRUE(heap.exit_code == 0 && ParseHexAddress(first, &customer_)) << heap.out;
    // The MethodDesc of Fixture.Customer's constructor (dumpmt -md) and its code (dumpmd).
    RunResult methods = Ours({"dumpmt -md " + customer_mt});
    std::istringstream mt_rows(Body(methods.out));
    while (std::getline(mt_rows, line)) {
      if (line.find("Fixture.Customer..ctor") == std::string::npos) continue;
      std::istringstream cols(line);
      std::string entry;
      cols >> entry >> ctor_md_;
    }
    ASSERT_FALSE(ctor_md_.empty()) << methods.out;
    RunResult md = Ours({"dumpmd " + ctor_md_});
    size_t at = md.out.find("Current CodeAddr:");
    ASSERT_NE(at, std::string::npos) << md.out << md.err;
    std::istringstream code(md.out.substr(at + 17));
    std::string code_text;
    code >> code_text;
    ASSERT_TRUE(ParseHexAddress(code_text, &ctor_code_)) << md.out;

    RunResult words = Ours({"dq " + first + " -c 2 --show-address:false"});
    std::istringstream w(Body(words.out));
    std::string mt, name;
    w >> mt >> name;
    ASSERT_TRUE(ParseHexAddress(name, &name_)) << words.out;
  }

  static bool ParseHexAddress(const std::string& s, uint64_t* out) {
    std::string t = s.rfind("0x", 0) == 0 ? s.substr(2) : s;
    if (t.empty() || t.size() > 16) return false;
    *out = std::stoull(t, nullptr, 16);
    return true;
  }
  static std::string Hex(uint64_t v) { return absl::StrFormat("%x", v); }

  uint64_t customer_ = 0, name_ = 0;
  std::string ctor_md_;     // Fixture.Customer..ctor's MethodDesc
  uint64_t ctor_code_ = 0;  // and its code
};

TEST_P(MemoryConformanceTest, SameAsDotnetDump) {
  const std::string c = Hex(customer_), s = Hex(name_), chars = Hex(name_ + 12);
  const std::vector<std::string> commands = {
      "dq " + c,
      "d",  // continues after the 32 qwords, still as qwords
      "dp " + c + " -c 3",
      "db " + s,
      "dc " + s,
      "dw " + s + " -c 9",
      "dd 0x" + s + " --show-address:false",
      "dd " + s + " -h -c 5",
      "db " + s + " -e " + Hex(name_ + 0x28),
      "d -l 2 -c 10 -a " + s,
      "du " + chars,
      "d",  // still a unicode string: the bytes after the terminator
      "da " + chars,
      "readmemory " + c + " -c 6 -w 3 -l 8",
      "db 0x10 -c 20",  // not in any dump
      "threadstate 0x1020",
      "threadstate b220",
      "threadstate 0",
      "registers",
      "setthread 1",
      "r -v",
      "sos threadstate 0x20",
      "ext db " + s + " -c 16",
      "dumpmd " + ctor_md_,
      "ip2md " + Hex(ctor_code_),
      "ip2md " + Hex(ctor_code_ + 0x10),
  };
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out),
                   {{"eflags = ", "the reference shows 0 (it does not read the flags)"},
                    {"r8 = ", "the reference shows r9's value (swapped; gdb agrees with us)"},
                    {"r9 = ", "the reference shows r8's value"}});
  // What a user would check by eye: the name is there, unreadable memory shows as ??.
  EXPECT_CONTAINS(ours.out, "Text: 'customer-");
  EXPECT_CONTAINS(ours.out, absl::StrFormat("%016x: ?? ?? ??", 0x10));
  EXPECT_CONTAINS(ours.out, "    Legal to Join\n    CLR Owns\n");
  EXPECT_CONTAINS(ours.out, "rip Index = 23 Offset = 248 Size = 8\nrip = 0x");
  EXPECT_CONTAINS(ours.out, "Method Name:          Fixture.Customer..ctor(Int32, System.String)\n");
  EXPECT_CONTAINS(ours.out, "IsJitted:             yes\n");
  EXPECT_CONTAINS(ours.out, "HeapApp/Program.cs @ ");
}

// clrdiag's own behaviour is the same whatever the runtime and dump type: checked on one (each
// test under ctest runs in its own process and costs a fixture and a dump).
class MemoryCommandTest : public MemoryConformanceTest {};

TEST_P(MemoryCommandTest, JsonHasTheSameValues) {
  const std::string c = Hex(customer_);
  RunResult text = Ours({"dq " + c + " -c 4 --show-address:false"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult json = daemon_->Client(
      WithCommands({"analyze", id_, "--json"},
                   {"dq " + c + " -c 4", "du " + Hex(name_ + 12), "threadstate 1020"}));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::istringstream docs(json.out), words(Body(text.out));
  std::string line;
  std::vector<nlohmann::json> results;
  while (std::getline(docs, line)) {
    auto doc = ParseJson(line);
    if (doc.is_object() && doc.contains("result") && doc["command"] != "exit") {
      results.push_back(doc["result"]);
    }
  }
  ASSERT_EQ(results.size(), 3u) << json.out;
  ASSERT_EQ(results[0]["values"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    std::string word;
    words >> word;
    uint64_t v = 0;
    ASSERT_TRUE(ParseHexAddress(word, &v));
    EXPECT_EQ(results[0]["values"][i].get<std::string>(), "0x" + Hex(v));
  }
  EXPECT_EQ(results[0]["next_address"].get<std::string>(), "0x" + Hex(customer_ + 32));
  EXPECT_EQ(results[1]["text"].get<std::string>().rfind("customer-", 0), 0u) << results[1];
  EXPECT_EQ(results[2]["flags"], nlohmann::json({"Legal to Join", "CLR Owns"}));
}

// clrdiag's own error handling (see the header): the session goes on after each.
TEST_P(MemoryCommandTest, BadInputIsAnErrorAndChangesNothing) {
  const std::string c = Hex(customer_);
  RunResult first = Ours({"d"});
  EXPECT_NE(first.exit_code, 0);
  EXPECT_CONTAINS(first.err, "give an address");

  RunResult code = Ours({"dumpmd 1234", "dumpmd", "ip2md 10", "ip2md zz", "dumpmd " + ctor_md_});
  EXPECT_NE(code.exit_code, 0);
  EXPECT_CONTAINS(code.err, "0000000000001234 is not a MethodDesc");
  EXPECT_CONTAINS(code.err, "give one MethodDesc address");
  EXPECT_CONTAINS(code.err, "0000000000000010 is not in managed code");
  EXPECT_CONTAINS(code.err, "give one code address");
  EXPECT_CONTAINS(code.out, "Fixture.Customer..ctor");  // the last command still ran

  RunResult regs = Ours({"r rip rsp", "r xyz", "sos", "sos sos help"});
  EXPECT_EQ(regs.out.find("rax"), std::string::npos) << regs.out;
  EXPECT_CONTAINS(regs.out, "rip = 0x");
  EXPECT_CONTAINS(regs.out, "rsp = 0x");
  EXPECT_CONTAINS(regs.err, "unknown register or option 'xyz'");
  EXPECT_CONTAINS(regs.err, "name the SOS command to run");
  EXPECT_CONTAINS(regs.err, "sos runs an SOS command, not itself");

  RunResult r = Ours({"dq " + c + " -c 2", "d -c nine", "d -x", "db zz", "d " + c + " -e 10",
                      "threadstate", "threadstate qq", "d"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "-c needs a number, not 'nine'");
  EXPECT_CONTAINS(r.err, "unknown option '-x'");
  EXPECT_CONTAINS(r.err, "'zz' is not a hex address");
  EXPECT_CONTAINS(r.err, "Cannot dump a negative range");
  EXPECT_CONTAINS(r.err, "give one thread state value");
  EXPECT_CONTAINS(r.err, "'qq' is not a hex number");
  // The last `d` goes on after the first dq's row (a row is 32 bytes whatever the count),
  // still two qwords per dump.
  EXPECT_CONTAINS(r.out, absl::StrFormat("%016x: ", customer_ + 32));

  RunResult missing = Ours({"da 0x10"});
  EXPECT_EQ(missing.exit_code, 0) << missing.err;
  EXPECT_CONTAINS(missing.out, "Text: ''\n");
  EXPECT_CONTAINS(missing.out, "runs into memory not in the dump at 0000000000000010");
}

// A string running into memory the dump does not hold ends there (the reference never ends).
// Also: a string running into memory the dump does not hold ends there.

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, MemoryConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, MemoryCommandTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
