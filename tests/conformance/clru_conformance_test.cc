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
//
// -il [-map] (SOS's `u -il`, docs/clru-il-notes.md): the reference prints everything before the
// first instruction, so the header, the IL-to-native map (-map) and the whole IL listed before
// "Begin" are compared strictly with it (Fixture.Deep.Level3 by return address, the ReadyToRun
// WaitOneNoCheck with its try/finally, and Fixture.HeapProgram.CatcherMain with nested
// try/catch blocks in the --parked-exception dump). The IL interleaved with the code cannot be
// compared (the reference never gets past its first instruction); it is checked against facts
// clrdiag gets independently: each IL line equals `dumpil`'s line at that offset (dumpil is
// conformance-tested), a group stands right before a native instruction inside the map range
// that SOS's rule gives it, no IL instruction is shown twice and a group's offsets rise, the
// map tiles the method's code, its IL offsets are instruction offsets within the IL's size,
// the JSON map has as many entries as the text, and taking the IL out leaves plain clru's text.
//
// A dynamic method (the fixture's DynamicMethod "ClrdiagDynamicThrow", by its MethodDesc and
// its code address) stops after its name with "Disassembly of dynamic methods is not
// supported", successfully (exit 0), with and without -il: compared in full with the reference
// on Full dumps, where it ends there too (its IL map cannot be read: "Failed to get IL address
// map"). On Heap dumps the reference's SOS dies (SIGSEGV) on that MethodDesc; clrdiag prints
// the same lines as on the Full dump.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
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
  static void SetUpTestSuite() { StartDaemon({"heap2000", "heap1000_parked"}); }
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

  size_t CheckIl(const std::string& target, const std::string& md);
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
  r = Ours({"clru -il -map 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.out, "Unmanaged code\n");
  EXPECT_CONTAINS(r.err, "0000000000000000 is not in managed code and no code could be read");
  r = Ours({"clru -x 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "unknown option '-x'");
}

// A line of IL in clru -il's output (an instruction or an exception block marker), indented.
bool IsIlLine(const std::string& line) {
  std::string t = line.substr(std::min(line.find_first_not_of(' '), line.size()));
  return t.rfind("IL_", 0) == 0 || t == ".try" || t == "{" || t == ".catch" || t == ".finally" ||
         t.rfind("} // end .", 0) == 0;
}

// "IL_xxxx: ..." (indent removed): its offset.
bool IlOffset(const std::string& text, uint32_t* offset) {
  if (text.rfind("IL_", 0) != 0) return false;
  size_t colon = text.find(':');
  if (colon == std::string::npos || !IsHex(text.substr(3, colon - 3))) return false;
  *offset = static_cast<uint32_t>(std::stoul(text.substr(3, colon - 3), nullptr, 16));
  return true;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

std::string Unindented(const std::string& line) {
  return line.substr(std::min(line.find_first_not_of(' '), line.size()));
}

struct MapEntry {
  uint32_t il;
  uint64_t start, end;
};
constexpr uint32_t kLastRealIlOffset = 0xfffffffc;  // above: prolog, epilog, no mapping

// Checks `clru -il -map <target>` (text `il`) against plain `clru <target>` (`plain`), `dumpil`
// of the method (`dumpil`, its IL code size `code_size`) and the JSON of `clru -il <target>`
// (`json`). Returns how many IL instructions were interleaved.
size_t CheckIlClru(const std::string& il, const std::string& plain, const std::string& dumpil,
                   uint64_t code_size, const nlohmann::json& json) {
  std::vector<std::string> lines = Lines(il);
  EXPECT_GE(lines.size(), 3u) << il;
  if (lines.size() < 3) return 0;
  // dumpil's instruction lines by offset, and its listing after "ilAddr = ...".
  std::vector<std::string> want_listing;
  std::map<uint32_t, std::string> dumpil_at;
  bool in_body = false;
  for (const std::string& l : Lines(dumpil)) {
    if (in_body) {
      want_listing.push_back(l);
      uint32_t offset = 0;
      if (IlOffset(Unindented(l), &offset)) dumpil_at[offset] = Unindented(l);
    }
    if (l.rfind("ilAddr = ", 0) == 0) in_body = true;
  }
  EXPECT_FALSE(dumpil_at.empty()) << dumpil;

  // Header, map, listing, then "Begin".
  std::vector<MapEntry> map;
  std::vector<std::string> listing;
  size_t at = 2;
  for (; at < lines.size() && lines[at].rfind("Begin ", 0) != 0; ++at) {
    std::istringstream words(lines[at]);
    std::string il_text, start, end;
    words >> il_text >> start >> end;
    if (listing.empty() && il_text.size() == 8 && IsHex(il_text) && start.size() == 16 &&
        end.size() == 16) {
      map.push_back({static_cast<uint32_t>(std::stoul(il_text, nullptr, 16)),
                     std::stoull(start, nullptr, 16), std::stoull(end, nullptr, 16)});
    } else {
      listing.push_back(lines[at]);
    }
  }
  EXPECT_LT(at, lines.size()) << "no Begin line\n" << il;
  if (at >= lines.size()) return 0;
  EXPECT_EQ(listing, want_listing) << "the IL before Begin is not dumpil's\n" << il << dumpil;
  const uint64_t begin = std::stoull(lines[at].substr(6, 16), nullptr, 16);
  const uint64_t size = std::stoull(ValueAfter(lines[at], ", size "), nullptr, 16);

  // The map tiles the code from Begin (the last entry ends at the code's start, as the DAC
  // gives it); its IL offsets are instructions of the method.
  EXPECT_GE(map.size(), 2u) << il;
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_GE(map[i].start, begin) << il;
    EXPECT_LT(map[i].start, begin + size) << il;
    if (i == 0) EXPECT_EQ(map[i].start, begin) << il;
    if (i + 1 < map.size()) {
      EXPECT_EQ(map[i].end, map[i + 1].start) << "entry " << i << "\n" << il;
    } else {
      EXPECT_EQ(map[i].end, begin) << il;
    }
    if (map[i].il <= kLastRealIlOffset) {
      EXPECT_LT(map[i].il, code_size) << il;
      EXPECT_TRUE(dumpil_at.count(map[i].il)) << "IL offset " << map[i].il << " is no instruction";
    }
  }
  EXPECT_EQ(json["il_map"].size(), map.size());

  // From Begin on: the IL lines taken out leave plain clru's lines.
  std::vector<std::string> native = {lines[0], lines[1]};
  std::vector<std::string> interleaved;  // the IL lines, for the JSON
  std::set<uint32_t> shown;
  int indent = 0;
  size_t instructions = 0;
  for (size_t i = at; i < lines.size(); ++i) {
    if (!IsIlLine(lines[i])) {
      native.push_back(lines[i]);
      continue;
    }
    // A group: IL lines up to the native instruction they stand before.
    size_t end = i;
    while (end < lines.size() && IsIlLine(lines[end])) ++end;
    EXPECT_LT(end, lines.size()) << "IL after the last instruction\n" << il;
    if (end >= lines.size()) break;
    std::string code = lines[end];
    if (code.rfind(">>> ", 0) == 0) code = code.substr(4);
    EXPECT_TRUE(code.size() > 17 && code[16] == ' ' && IsHex(code.substr(0, 16)))
        << "IL not followed by an instruction: " << lines[end] << "\n"
        << il;
    const uint64_t address = std::stoull(code.substr(0, 16), nullptr, 16);
    uint32_t first = UINT32_MAX, previous = 0;
    for (size_t k = i; k < end; ++k) {
      interleaved.push_back(lines[k]);
      const std::string text = Unindented(lines[k]);
      // Indentation: the region's own count of the blocks opened and closed, from 0.
      if (text.rfind("} ", 0) == 0) indent -= 2;
      EXPECT_EQ(lines[k].size() - text.size(), static_cast<size_t>(std::abs(indent))) << lines[k];
      if (text == "{") indent += 2;
      uint32_t offset = 0;
      if (!IlOffset(text, &offset)) continue;
      ++instructions;
      EXPECT_EQ(text, dumpil_at[offset]) << "not dumpil's line at " << offset;
      EXPECT_TRUE(shown.insert(offset).second) << "IL_" << offset << " shown twice\n" << il;
      if (first == UINT32_MAX) {
        first = offset;
      } else {
        EXPECT_GT(offset, previous) << il;
      }
      previous = offset;
    }
    // The group's first instruction starts it: its first non-empty map range holds the code.
    auto entry = std::find_if(map.begin(), map.end(),
                              [&](const MapEntry& e) { return e.il == first && e.end > e.start; });
    EXPECT_NE(entry, map.end()) << "IL_" << first << " has no map range\n" << il;
    if (entry != map.end()) {
      EXPECT_GE(address, entry->start) << lines[end];
      EXPECT_LT(address, entry->end) << lines[end];
    }
    i = end - 1;
  }
  EXPECT_EQ(native, Lines(plain)) << "without the IL, not plain clru's text";

  // JSON: the listing and the interleaved lines.
  std::vector<std::string> json_listing, json_interleaved;
  for (const auto& l : json["il_lines"]) json_listing.push_back(l);
  for (const auto& region : json["regions"]) {
    for (const auto& insn : region["instructions"]) {
      if (!insn.contains("il")) continue;
      for (const auto& l : insn["il"]) json_interleaved.push_back(l);
    }
  }
  EXPECT_EQ(Lines(Joined(json_listing)), listing);
  EXPECT_EQ(Lines(Joined(json_interleaved)), interleaved);
  return instructions;
}

// clru -il -map of `target` against dumpil of `md` and plain clru, and the reference's text up
// to "Begin". Returns the number of interleaved IL instructions.
size_t ClruConformanceTest::CheckIl(const std::string& target, const std::string& md) {
  RunResult il = Ours({"clru -il -map " + target});
  EXPECT_EQ(il.exit_code, 0) << il.err;
  RunResult plain = Ours({"clru " + target});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  RunResult dumpil = Ours({"dumpil " + md});
  EXPECT_EQ(dumpil.exit_code, 0) << dumpil.err;
  nlohmann::json dumpil_json = OursJson("dumpil " + md);
  nlohmann::json json = OursJson("clru -il " + target);
  size_t n = CheckIlClru(Body(il.out), Body(plain.out), Body(dumpil.out),
                         dumpil_json.value("code_size", uint64_t{0}), json);
  // -map alone changes nothing.
  EXPECT_EQ(Body(Ours({"clru -map " + target}).out), Body(plain.out));
  // The reference up to its "Begin" line.
  std::vector<std::string> ours = Lines(Body(il.out));
  size_t prefix = 0;
  while (prefix < ours.size() && ours[prefix].rfind("Begin ", 0) != 0) ++prefix;
  ours.resize(std::min(prefix + 1, ours.size()));
  EXPECT_EQ(ReferencePrefix("u -il -map " + target, ours.size()), ours)
      << "clru -il -map " << target;
  return n;
}

TEST_P(ClruConformanceTest, IlInterleavedAsDumpilAndPrefixAsDotnetDump) {
  RunResult stacks = Ours({"clrstack -all"});
  ASSERT_EQ(stacks.exit_code, 0) << stacks.err;
  std::string app_ip = FrameIp(stacks.out, "Fixture.Deep.Level3");
  std::string fw_ip = FrameIp(stacks.out, "System.Threading.WaitHandle.WaitOneNoCheck");
  ASSERT_FALSE(app_ip.empty()) << stacks.out;
  ASSERT_FALSE(fw_ip.empty()) << stacks.out;
  std::string app_md = ValueAfter(Ours({"ip2md " + app_ip}).out, "MethodDesc:");
  std::string fw_md = ValueAfter(Ours({"ip2md " + fw_ip}).out, "MethodDesc:");
  ASSERT_FALSE(app_md.empty());
  ASSERT_FALSE(fw_md.empty());
  // A jitted HeapApp method by return address (source lines, the ">>> " mark) and by
  // MethodDesc; a framework method with a try/finally (ReadyToRun code on .NET 10).
  EXPECT_GT(CheckIl(app_ip, app_md), 0u);
  EXPECT_GT(CheckIl(app_md, app_md), 0u);
  EXPECT_GT(CheckIl(fw_ip, fw_md), 0u);
  std::string text = Ours({"clru -il " + fw_ip}).out;
  EXPECT_CONTAINS(text, "\n.try\n{\n");
}

TEST_P(ClruConformanceTest, IlWithNestedExceptionBlocks) {
  ASSERT_NO_FATAL_FAILURE(UseDump("heap1000_parked"));
  std::string md =
      ValueAfter(Ours({"name2ee HeapApp.dll Fixture.HeapProgram.CatcherMain"}).out, "MethodDesc:");
  ASSERT_FALSE(md.empty());
  EXPECT_GT(CheckIl(md, md), 0u);
  std::string text = Body(Ours({"clru -il " + md}).out);
  // The listing before Begin has the nested blocks, as dumpil has them.
  EXPECT_CONTAINS(text, "  .try\n  {\n    IL_0008: ");

  // With the other options: each group comes right after the source line (or the previous
  // instruction), before the GC info, the EH marks and the offset; without the IL (and the
  // listing before Begin), the text is the same options' text.
  const std::string options = "-gcinfo -ehinfo -o ";
  std::vector<std::string> il = Lines(Body(Ours({"clru -il " + options + md}).out));
  std::vector<std::string> plain = Lines(Body(Ours({"clru " + options + md}).out));
  std::vector<std::string> without_il;
  bool after_begin = false;
  size_t groups = 0;
  for (size_t i = 0; i < il.size(); ++i) {
    after_begin = after_begin || il[i].rfind("Begin ", 0) == 0;
    if (!IsIlLine(il[i])) {
      if (i < 2 || after_begin) without_il.push_back(il[i]);
      continue;
    }
    if (!after_begin || IsIlLine(il[i - 1])) continue;
    ++groups;
    const std::string& before = il[i - 1];
    // "<offset> <address> ..." (-o), or "<file> @ <line>:".
    const bool code = before.size() > 22 && before[4] == ' ' && IsHex(before.substr(5, 16));
    EXPECT_TRUE(code || (before.size() > 1 && before.back() == ':'))
        << "IL group after: " << before;
  }
  EXPECT_GT(groups, 0u);
  EXPECT_EQ(without_il, plain);
}

// The Value column of `dumpobj`/`dumpvc`'s field line named `field` (and its MT column).
std::string FieldValue(const std::string& text, const std::string& field,
                       std::string* mt = nullptr) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.size() >= 8 && w.back() == field) {
      if (mt != nullptr) *mt = w[0];
      return w[w.size() - 2];
    }
  }
  return "";
}

TEST_P(ClruConformanceTest, DynamicMethodIsNotDisassembled) {
  ASSERT_NO_FATAL_FAILURE(UseDump("heap1000_parked"));
  // The DynamicMethod's MethodDesc: DynamicMethod._methodHandle (a RuntimeMethodInfoStub),
  // its m_value (a RuntimeMethodHandleInternal), that one's m_handle.
  RunResult objects = Ours({"dumpheap -type System.Reflection.Emit.DynamicMethod -short"});
  ASSERT_EQ(objects.exit_code, 0) << objects.err;
  std::vector<std::string> dynamic = Lines(Body(objects.out));
  ASSERT_EQ(dynamic.size(), 1u) << objects.out;
  std::string text = Ours({"dumpobj " + dynamic[0]}).out;
  std::string stub = FieldValue(text, "_methodHandle");
  if (stub.empty()) stub = FieldValue(text, "m_methodHandle");
  ASSERT_FALSE(stub.empty()) << text;
  std::string mt;
  text = Ours({"dumpobj " + stub}).out;
  std::string handle = FieldValue(text, "m_value", &mt);
  ASSERT_FALSE(handle.empty()) << text;
  text = Ours({"dumpvc " + mt + " " + handle}).out;
  std::string md = FieldValue(text, "m_handle");
  ASSERT_FALSE(md.empty()) << text;
  text = Ours({"dumpmd " + md}).out;
  EXPECT_CONTAINS(text, "DynamicClass.ClrdiagDynamicThrow()");
  std::string ip = ValueAfter(text, "Current CodeAddr:");
  ASSERT_FALSE(ip.empty()) << text;

  const std::string expected =
      "Normal JIT generated code\nDynamicClass.ClrdiagDynamicThrow()\n"
      "Disassembly of dynamic methods is not supported\n";
  for (const std::string& target : {md, ip}) {
    RunResult r = Ours({"clru " + target});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Body(r.out), expected) << "clru " << target;
  }
  // With -il the map is asked for first (a dynamic method has none), then the same stop.
  RunResult il = Ours({"clru -il -map " + md});
  EXPECT_EQ(il.exit_code, 0) << il.err;
  EXPECT_EQ(Body(il.out),
            "Normal JIT generated code\nDynamicClass.ClrdiagDynamicThrow()\n"
            "Failed to get IL address map, proceeding without IL map\n"
            "Disassembly of dynamic methods is not supported\n");
  nlohmann::json j = OursJson("clru -il " + md);
  EXPECT_EQ(j["message"], "Disassembly of dynamic methods is not supported");
  EXPECT_EQ(j["name"], "DynamicClass.ClrdiagDynamicThrow()");
  EXPECT_TRUE(j.contains("dynamic_method_object"));
  EXPECT_TRUE(j.contains("il_map_error"));
  EXPECT_FALSE(j.contains("regions"));

  // The reference ends there too: compared in full. (On Heap dumps its SOS dies, SIGSEGV, on
  // this MethodDesc, `dumpmd` included: the dynamic method's code heap is not in such a dump.)
  if (std::get<1>(GetParam()) != "Full") return;
  std::vector<std::string> commands = {"clru " + md, "clru -il -map " + md, "clru -il " + ip};
  std::vector<std::string> ref_commands;
  ref_commands.reserve(commands.size());
  for (const std::string& c : commands) ref_commands.push_back("sos u" + c.substr(4));
  RunResult ours = Ours(commands);
  RunResult ref = Reference(ref_commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  EXPECT_CONTAINS(ref.out, "Disassembly of dynamic methods is not supported");
  conformance::ExpectSameOutput(Body(ours.out), Body(ref.out));
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ClruConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
