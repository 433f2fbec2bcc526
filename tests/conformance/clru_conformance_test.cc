// Conformance of clru (SOS's `u`) with dotnet-dump, on Heap and Full dumps of HeapApp on each
// runtime: a HeapApp method (Fixture.Deep.Level3, by a return address on its thread's stack and
// by its MethodDesc) and a framework method (System.Threading.WaitHandle.WaitOneNoCheck).
//
// dotnet-dump registers no `clru`; its native SOS has the command as `sos u`, but the
// dotnet-dump host has no disassembler: after the header and the first source line, every
// instruction comes out as an empty line and the address never advances, so the reference
// never ends. This test therefore runs the reference until it has printed its header, stops it,
// and compares that prefix strictly: the JIT kind, the method's name, "Begin <start>, size <n>"
// and the first "<file> @ <line>:" line (or its absence without a PDB, and with -n). The code
// lines themselves cannot be compared; they are checked for what the reference's x64 logic
// promises (below).
//
// Intentional differences:
//  - Code lines: the layout is SOS's under LLDB, the reference host that disassembles on Linux
//    ("<address> <bytes padded to 21> <mnemonic padded to 8> <operands>"), with capstone's
//    Intel operand text where LLDB would print LLVM's (the same syntax family: "qword ptr
//    [rip + 0x...]", hex immediates).
//  - Call annotations go further than SOS's text parsing under LLDB: a call through a
//    rip-relative slot is resolved (SOS only resolves WinDbg's absolute "[addr]" form), a call
//    to a precode stub names the stub's method, and calls also clobber rsi/rdi (System V).
//    Constants (SOS's "(MT: ...)", strings, "(Object: ...)", "(MD: ...)") are checked in
//    clru_annotations_conformance_test.cc, with -gcinfo. Not done yet: native symbols of
//    unmanaged call targets are not named (no symbol lookup in the worker), and ReadyToRun
//    code's calls through indirection cells are not resolved.
//  - Bad input: the reference prints "Unmanaged code" for any address it cannot place
//    (including 0 and text that is no number) and succeeds; clrdiag refuses text that is no
//    hex address (usage, non-zero), and for an unreadable address prints "Unmanaged code" and
//    then fails, non-zero, saying no code could be read there.
//  - -il is refused as not supported yet.
#include <signal.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::Lines;
using conformance::WithCommands;

// The instruction pointer of the first `clrstack -all` frame naming `method`, or "".
std::string FrameIp(const std::string& stacks, const std::string& method) {
  std::istringstream in(stacks);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string sp, ip, name;
    words >> sp >> ip >> name;
    if (name.rfind(method + "(", 0) == 0) return ip;
  }
  return "";
}

std::string ValueAfter(const std::string& text, const std::string& label) {
  size_t at = text.find(label);
  if (at == std::string::npos) return "";
  std::istringstream in(text.substr(at + label.size()));
  std::string v;
  in >> v;
  return v;
}

bool IsHex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

class ClruConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap2000"}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(UseDump("heap2000")); }

  // The reference's first `lines` lines for `sos <command>` (after "Loading core dump"), then
  // the reference is stopped: it loops forever on the first instruction (see the top).
  std::vector<std::string> ReferencePrefix(const std::string& command, size_t lines) {
    TempDir dir;
    SpawnOptions opts;
    opts.stdout_file = dir.path() + "/out";
    auto p = Process::Spawn({DotnetDump(), "analyze", path_, "-c", "sos " + command, "-c", "exit"},
                            opts);
    std::vector<std::string> got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < deadline) {
      got = Lines(ReadFile(opts.stdout_file));
      if (got.size() > lines || !p->Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    p->Signal(SIGKILL);
    p->Wait(std::chrono::seconds(10));
    got = Lines(ReadFile(opts.stdout_file));
    if (!got.empty()) got.erase(got.begin());  // "Loading core dump: ..."
    if (got.size() > lines) got.resize(lines);
    return got;
  }

  // Compares our first `lines` lines of `clru <args>` with the reference's.
  std::string ExpectSameHeader(const std::string& args, size_t lines) {
    RunResult ours = Ours({"clru " + args});
    EXPECT_EQ(ours.exit_code, 0) << ours.err;
    std::vector<std::string> a = Lines(Body(ours.out));
    std::vector<std::string> b = ReferencePrefix("u " + args, lines);
    EXPECT_EQ(b.size(), lines) << "the reference printed too little for u " << args;
    for (size_t i = 0; i < b.size(); ++i) {
      EXPECT_LT(i, a.size());
      if (i < a.size()) {
        EXPECT_EQ(a[i], b[i]) << "clru " << args << ", line " << i + 1;
      }
    }
    return Body(ours.out);
  }
};

// Checks the code lines of a clru text: addresses contiguous from Begin to Begin + size, each
// line "addr bytes mnemonic operands" with the bytes' length matching the step; the `>>> `
// mark on `asked` (if any), right after a call (a return address). Returns the code lines.
std::vector<std::string> CheckCodeLines(const std::string& text, const std::string& asked) {
  std::vector<std::string> lines = Lines(text);
  std::string begin_text = ValueAfter(text, "Begin ");
  begin_text = begin_text.substr(0, begin_text.find(','));
  uint64_t begin = std::stoull(begin_text, nullptr, 16);
  uint64_t size = std::stoull(ValueAfter(text, ", size "), nullptr, 16);
  uint64_t next = begin;
  std::vector<std::string> code;
  bool marked = false;
  std::string previous;
  for (const std::string& raw : lines) {
    std::string line = raw;
    bool mark = line.rfind(">>> ", 0) == 0;
    if (mark) line = line.substr(4);
    std::istringstream words(line);
    std::string address, bytes, mnemonic;
    words >> address >> bytes >> mnemonic;
    if (address.size() != 16 || !IsHex(address)) continue;
    EXPECT_TRUE(IsHex(bytes) && bytes.size() % 2 == 0) << line;
    EXPECT_FALSE(mnemonic.empty()) << line;
    // The mnemonic starts at column 38: 16 + 1 + 21 (bytes of up to 10 instruction bytes).
    if (bytes.size() < 20) {
      EXPECT_EQ(line.find(mnemonic, 17), 38u) << line;
    }
    EXPECT_EQ(std::stoull(address, nullptr, 16), next) << line;
    next += bytes.size() / 2;
    if (mark) {
      marked = true;
      EXPECT_EQ(std::stoull(address, nullptr, 16), std::stoull(asked, nullptr, 16));
      EXPECT_NE(previous.find(" call "), std::string::npos) << previous;
    }
    previous = line;
    code.push_back(line);
  }
  EXPECT_EQ(next, begin + size) << "the instructions do not cover the method";
  EXPECT_EQ(marked, !asked.empty());
  return code;
}

TEST_P(ClruConformanceTest, HeaderAsDotnetDumpAndAnnotatedCode) {
  RunResult stacks = Ours({"clrstack -all"});
  ASSERT_EQ(stacks.exit_code, 0) << stacks.err;
  std::string app_ip = FrameIp(stacks.out, "Fixture.Deep.Level3");
  std::string fw_ip = FrameIp(stacks.out, "System.Threading.WaitHandle.WaitOneNoCheck");
  ASSERT_FALSE(app_ip.empty()) << stacks.out;
  ASSERT_FALSE(fw_ip.empty()) << stacks.out;
  RunResult md = Ours({"ip2md " + app_ip});
  std::string app_md = ValueAfter(md.out, "MethodDesc:");
  ASSERT_FALSE(app_md.empty()) << md.out;

  // A HeapApp method by return address: header and the first source line (PDB beside it).
  std::string text = ExpectSameHeader(app_ip, 5);
  EXPECT_CONTAINS(text, "Normal JIT generated code\nFixture.Deep.Level3(Int32)\nBegin ");
  EXPECT_CONTAINS(text, "Program.cs @ ");
  std::vector<std::string> code = CheckCodeLines(text, app_ip);
  EXPECT_GT(code.size(), 5u);
  // Level3 signals Reached (EventWaitHandle.Set, a direct call) and waits on a WaitHandle.
  EXPECT_CONTAINS(text, "(System.Threading.EventWaitHandle.Set(), mdToken: 0000000006");

  // By MethodDesc, without source lines, with offsets: no mark, same header.
  text = ExpectSameHeader("-n " + app_md, 3);
  EXPECT_EQ(text.find("Program.cs @"), std::string::npos);
  CheckCodeLines(text, "");
  text = Ours({"clru -o -n " + app_md}).out;
  EXPECT_CONTAINS(text, "\n0000 ");

  // A framework method (no PDB beside CoreLib: no source lines in either tool).
  text = ExpectSameHeader(fw_ip, 3);
  EXPECT_CONTAINS(text, "System.Threading.WaitHandle.WaitOneNoCheck(");
  std::vector<std::string> ref = ReferencePrefix("u " + fw_ip, 4);
  ASSERT_EQ(ref.size(), 4u);
  EXPECT_EQ(ref[3], "");  // the reference's first (empty) instruction: no source line first
  EXPECT_EQ(text.find(" @ "), std::string::npos);
  code = CheckCodeLines(text, fw_ip);
  EXPECT_FALSE(code.empty());

  // -ehinfo on a method without clauses changes nothing but is accepted.
  RunResult eh = Ours({"clru -ehinfo -n " + app_md});
  EXPECT_EQ(eh.exit_code, 0) << eh.err;
  EXPECT_EQ(Body(eh.out), Body(Ours({"clru -n " + app_md}).out));

  // The JSON form.
  RunResult j = daemon_->Client(WithCommands({"analyze", id_, "--json"}, {"clru " + app_ip}));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json json;
  std::istringstream docs(j.out);
  for (std::string doc; std::getline(docs, doc);) {
    if (doc.find("\"regions\"") != std::string::npos) json = ParseJson(doc)["result"];
  }
  ASSERT_FALSE(json.is_null()) << j.out;
  EXPECT_EQ(json["name"], "Fixture.Deep.Level3(Int32)");
  EXPECT_EQ(json["jit"], "JIT");
  ASSERT_EQ(json["regions"].size(), 1u);
  uint64_t covered = 0;
  for (const auto& insn : json["regions"][0]["instructions"]) {
    covered += insn["bytes"].get<std::string>().size() / 2;
  }
  EXPECT_EQ(covered, json["regions"][0]["size"].get<uint64_t>());
  EXPECT_TRUE(json["regions"][0]["instructions"][0].contains("source"));
}

TEST_P(ClruConformanceTest, UnmanagedAndBadAddresses) {
  // An address in native code (the IP of the main thread's innermost explicit frame, in libc
  // or libcoreclr): the reference says "Unmanaged code"; clrdiag then shows the next
  // instructions there.
  RunResult stacks = Ours({"clrstack"});
  std::string native;
  {
    std::istringstream in(stacks.out);
    std::string line;
    while (std::getline(in, line) && native.empty()) {
      std::istringstream words(line);
      std::string sp, ip, frame;
      words >> sp >> ip >> frame;
      if (frame.rfind("[", 0) == 0 && frame.back() == ':' && IsHex(ip)) native = ip;
    }
  }
  ASSERT_FALSE(native.empty()) << stacks.out;
  RunResult r = Ours({"clru " + native});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ours = Lines(Body(r.out));
  std::vector<std::string> ref = ReferencePrefix("u " + native, 1);
  ASSERT_EQ(ref.size(), 1u);
  ASSERT_FALSE(ours.empty());
  EXPECT_EQ(ours[0], ref[0]);
  EXPECT_EQ(ours[0], "Unmanaged code");
  EXPECT_EQ(ours.size(), 11u) << r.out;
  EXPECT_EQ(ours[1].substr(0, 16), std::string(16 - native.size(), '0') + native);

  // Unreadable, no number, no argument, unsupported options: errors, non-zero.
  r = Ours({"clru 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.out, "Unmanaged code\n");
  EXPECT_CONTAINS(r.err, "0000000000000000 is not in managed code and no code could be read");
  r = Ours({"clru zz"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "'zz' is not a hex address");
  r = Ours({"clru"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "give one MethodDesc or code address");
  r = Ours({"clru -il 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "clru -il is not supported yet");
  r = Ours({"clru -x 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "unknown option '-x'");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ClruConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
