// clru's -gcinfo and constant annotations, on Heap and Full dumps of HeapApp on each runtime.
//
// The reference (dotnet-dump's SOS `u`) cannot disassemble (see clru_conformance_test.cc): it
// prints the header, then the GC info lines due before the first instruction, then one empty
// line per instruction without ever advancing. Its prefix is therefore compared strictly up to
// the first instruction: header, "Begin", the GC info header ("Prolog size:" ... "Code size:")
// and the "Untracked:" line. The rest is checked against facts clrdiag gets independently:
//  - -gcinfo: the GC info lines taken out of `clru -gcinfo` are exactly `gcinfo`'s "Pointer
//    table:" text for the same method, and each "<offset> ..." line stands after the last
//    instruction before that offset and before the first one at or after it (SOS's rule).
//  - constants: a string literal the fixture loads ("customer-" in HeapProgram.BuildCustomers)
//    is labelled, and `dumpobj` of the labelled address is a System.String with that text; the
//    MethodTable labelled for `new Customer` is the one `dumpheap -stat` reports for
//    Fixture.Customer, and `dumpmt` of every "(MT: name)" value across the sweep names it so.
//  - no crash: every jitted method of HeapApp.dll's types (dumpmodule -mt, dumpmt -md) is
//    disassembled with -gcinfo in one session on every runtime and dump type. .NET 8's DAC
//    dies on GetMethodTableData of a Module pointer (a constant the JIT passes to the static
//    base helper), so this sweep fails if a constant reaches the DAC unvetted.
//
// Intentional differences: as in clru_conformance_test.cc (the code lines are capstone's text
// laid out as SOS's under LLDB). SOS under LLDB only annotates constants of instructions spelled
// "mov " (LLDB spells 64-bit immediates "movabs", so SOS never annotates them there; WinDbg
// spells them "mov"): clrdiag annotates mov and movabs immediates and pushed immediates, as
// SOS under WinDbg does. `-map` alone changes nothing, as in SOS (it only adds the IL map to
// -il's output; -il is checked in clru_conformance_test.cc).
#include <signal.h>

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

bool IsHex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string ValueAfter(const std::string& text, const std::string& label) {
  size_t at = text.find(label);
  if (at == std::string::npos) return "";
  std::istringstream in(text.substr(at + label.size()));
  std::string v;
  in >> v;
  return v;
}

// A code line: "<16 hex digits> <hex bytes> ...".
bool IsCodeLine(const std::string& line, uint64_t* address = nullptr) {
  if (line.size() < 18 || line[16] != ' ' || !IsHex(line.substr(0, 16))) return false;
  if (address != nullptr) *address = std::stoull(line.substr(0, 16), nullptr, 16);
  return true;
}

// "<8 hex digits> ..." GC info line: its offset.
bool IsGcOffsetLine(const std::string& line, uint64_t* offset) {
  if (line.size() < 9 || line[8] != ' ' || !IsHex(line.substr(0, 8))) return false;
  *offset = std::stoull(line.substr(0, 8), nullptr, 16);
  return true;
}

class ClruAnnotationsTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(FileExists(DotnetDump()))
        << "the reference dotnet-dump is missing: run WITH_REFERENCE=1 scripts/install-deps.sh";
    // The run's shared dumps of HeapApp 2000 (shared_dumps.h).
    ASSERT_EQ(conformance::StartDaemonWithSharedDumps(daemon_, {"heap2000"}), "");
    const auto& [runtime, dump_type] = GetParam();
    conformance::SharedDump d = conformance::FindSharedDump("heap2000", runtime, dump_type);
    ASSERT_FALSE(d.id.empty()) << "no shared dump heap2000 " << runtime << " " << dump_type;
    id_ = d.id;
    path_ = d.path;
  }

  RunResult Ours(const std::vector<std::string>& commands) {
    return daemon_.Client(WithCommands({"analyze", id_}, commands));
  }

  // The reference's output of `sos <command>` until it has printed more than `lines` lines
  // (it never ends: see the top), without "Loading core dump".
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
      if (got.size() > lines + 1 || !p->Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    p->Signal(SIGKILL);
    p->Wait(std::chrono::seconds(10));
    got = Lines(ReadFile(opts.stdout_file));
    if (!got.empty()) got.erase(got.begin());
    if (got.size() > lines) got.resize(lines);
    return got;
  }

  // The MethodDesc of a HeapApp method by its full name (name2ee).
  std::string MethodDesc(const std::string& name) {
    RunResult r = Ours({"name2ee HeapApp.dll " + name});
    return ValueAfter(r.out, "MethodDesc:");
  }

  Daemon daemon_{conformance::WithoutGraphPrebuild()};
  std::string id_, path_;
};

// Checks `clru -gcinfo -n` text against `gcinfo` of the same method; returns the number of GC
// info lines.
size_t CheckGcInfoAgainstGcinfo(const std::string& clru, const std::string& gcinfo) {
  std::vector<std::string> lines = Lines(clru);
  uint64_t begin = 0;
  std::vector<std::string> gc;
  std::vector<uint64_t> offsets;  // each code line's offset
  struct Placed {
    uint64_t offset;
    size_t code_lines_before;
  };
  std::vector<Placed> placed;
  bool after_begin = false;
  for (std::string l : lines) {
    uint64_t address = 0, offset = 0;
    if (l.rfind(">>> ", 0) == 0) l = l.substr(4);
    if (l.rfind("Begin ", 0) == 0) {
      begin = std::stoull(l.substr(6, 16), nullptr, 16);
      after_begin = true;
    } else if (IsCodeLine(l, &address)) {
      offsets.push_back(address - begin);
    } else if (after_begin) {
      gc.push_back(l);
      if (IsGcOffsetLine(l, &offset)) placed.push_back({offset, offsets.size()});
    }
  }
  std::vector<std::string> want = Lines(gcinfo.substr(gcinfo.find("Pointer table:\n") + 15));
  EXPECT_EQ(gc, want) << "the interleaved GC info is not gcinfo's text\n" << clru << gcinfo;
  for (const Placed& p : placed) {
    // After every instruction before the offset, before every instruction at or after it.
    if (p.code_lines_before > 0) {
      EXPECT_LT(offsets[p.code_lines_before - 1], p.offset) << clru;
    }
    if (p.code_lines_before < offsets.size()) {
      EXPECT_GE(offsets[p.code_lines_before], p.offset) << clru;
    }
  }
  EXPECT_GT(offsets.size(), 0u);
  return gc.size();
}

TEST_P(ClruAnnotationsTest, GcInfoInterleavedAsSos) {
  std::string md = MethodDesc("Fixture.HeapProgram.BuildCustomers");
  ASSERT_FALSE(md.empty());
  // A framework method with tracked registers (optimized or ReadyToRun code).
  RunResult stacks = Ours({"clrstack -all"});
  std::string fw_ip;
  {
    std::istringstream in(stacks.out);
    std::string line;
    while (std::getline(in, line) && fw_ip.empty()) {
      std::istringstream words(line);
      std::string sp, ip, name;
      words >> sp >> ip >> name;
      if (name.rfind("System.Threading.WaitHandle.WaitOneNoCheck(", 0) == 0) fw_ip = ip;
    }
  }
  ASSERT_FALSE(fw_ip.empty()) << stacks.out;

  for (const std::string& target : {md, fw_ip}) {
    RunResult ours = Ours({"clru -gcinfo -n " + target});
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    RunResult gi = Ours({"gcinfo " + target});
    ASSERT_EQ(gi.exit_code, 0) << gi.err;
    size_t gc_lines = CheckGcInfoAgainstGcinfo(Body(ours.out), Body(gi.out));
    EXPECT_GE(gc_lines, 12u);  // the header lines at least

    // The reference up to the first instruction: header, Begin, the GC info due at offset 0,
    // then the first (empty) instruction line.
    std::vector<std::string> a = Lines(Body(ours.out));
    size_t head = 0;
    while (head < a.size() && !IsCodeLine(a[head]) && a[head].rfind(">>> ", 0) != 0) ++head;
    ASSERT_LT(head, a.size());
    std::vector<std::string> b = ReferencePrefix("u -gcinfo -n " + target, head + 1);
    ASSERT_EQ(b.size(), head + 1) << "the reference printed too little";
    for (size_t i = 0; i < head; ++i) EXPECT_EQ(a[i], b[i]) << "line " << i + 1;
    EXPECT_EQ(b[head], "") << "the reference's first (empty) instruction line";
  }

  // With source lines: the source line comes before the GC info, as in SOS.
  RunResult with_lines = Ours({"clru -gcinfo " + md});
  ASSERT_EQ(with_lines.exit_code, 0) << with_lines.err;
  std::vector<std::string> a = Lines(Body(with_lines.out));
  ASSERT_GT(a.size(), 6u);
  EXPECT_EQ(a[3], "");
  EXPECT_NE(a[4].find("Program.cs @ "), std::string::npos) << with_lines.out;
  EXPECT_EQ(a[5].rfind("Prolog size: ", 0), 0u) << with_lines.out;
  std::vector<std::string> b = ReferencePrefix("u -gcinfo " + md, 6);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(a[i], b[i]) << "line " << i + 1;

  // -map alone: the same text as without it, in both tools' headers.
  RunResult map = Ours({"clru -map -n " + md});
  EXPECT_EQ(map.exit_code, 0) << map.err;
  EXPECT_EQ(Body(map.out), Body(Ours({"clru -n " + md}).out));
  std::vector<std::string> ref_map = ReferencePrefix("u -map -n " + md, 3);
  std::vector<std::string> ours_map = Lines(Body(map.out));
  ASSERT_EQ(ref_map.size(), 3u);
  ASSERT_GE(ours_map.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ours_map[i], ref_map[i]);

  // JSON: the GC info address, each instruction's GC lines.
  RunResult j = daemon_.Client(WithCommands({"analyze", id_, "--json"}, {"clru -gcinfo -n " + md}));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json json;
  std::istringstream docs(j.out);
  for (std::string doc; std::getline(docs, doc);) {
    if (doc.find("\"regions\"") != std::string::npos) json = ParseJson(doc)["result"];
  }
  ASSERT_FALSE(json.is_null()) << j.out;
  std::string gc_address = ValueAfter(Ours({"gcinfo " + md}).out, "GC info ");
  ASSERT_FALSE(gc_address.empty());
  EXPECT_EQ(std::stoull(json["gc_info"].get<std::string>(), nullptr, 16),
            std::stoull(gc_address, nullptr, 16));
  ASSERT_FALSE(json["regions"][0]["instructions"].empty());
  const auto& first = json["regions"][0]["instructions"][0];
  ASSERT_TRUE(first.contains("gc_info")) << first.dump();
  EXPECT_EQ(first["gc_info"][0], a[5]);
}

TEST_P(ClruAnnotationsTest, ConstantsLabelledAndChecked) {
  std::string md = MethodDesc("Fixture.HeapProgram.BuildCustomers");
  ASSERT_FALSE(md.empty());
  RunResult r = Ours({"clru -n " + md});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The interpolated string's literal part and the Customer MethodTable of `new Customer`.
  std::string literal, customer_mt;
  for (const std::string& l : Lines(Body(r.out))) {
    if (!IsCodeLine(l)) continue;
    size_t comma = l.find(", 0x");
    if (comma == std::string::npos) continue;
    std::string value = l.substr(comma + 4, l.find(' ', comma + 2) - comma - 4);
    if (l.find(" (\"customer-\")") != std::string::npos) literal = value;
    if (EndsWith(l, " (MT: Fixture.Customer)")) customer_mt = value;
  }
  ASSERT_FALSE(literal.empty()) << r.out;
  ASSERT_FALSE(customer_mt.empty()) << r.out;
  RunResult obj = Ours({"dumpobj " + literal});
  EXPECT_EQ(obj.exit_code, 0) << obj.err;
  EXPECT_CONTAINS(obj.out, "Name:        System.String\n");
  EXPECT_CONTAINS(obj.out, "String:      customer-\n");
  RunResult stat = Ours({"dumpheap -stat -type Fixture.Customer"});
  std::string mt_from_heap;
  for (const std::string& l : Lines(stat.out)) {
    if (EndsWith(l, " Fixture.Customer")) mt_from_heap = l.substr(0, l.find(' '));
  }
  ASSERT_FALSE(mt_from_heap.empty()) << stat.out;
  EXPECT_EQ(std::stoull(customer_mt, nullptr, 16), std::stoull(mt_from_heap, nullptr, 16));

  // JSON: the same facts, structured.
  RunResult j = daemon_.Client(WithCommands({"analyze", id_, "--json"}, {"clru -n " + md}));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  bool saw_string = false, saw_mt = false;
  std::istringstream docs(j.out);
  for (std::string doc; std::getline(docs, doc);) {
    if (doc.find("\"regions\"") == std::string::npos) continue;
    const nlohmann::json parsed = ParseJson(doc);
    for (const auto& insn : parsed["result"]["regions"][0]["instructions"]) {
      if (!insn.contains("constant")) continue;
      const auto& c = insn["constant"];
      if (c["kind"] == "String" && c["string"] == "customer-") {
        saw_string = std::stoull(c["value"].get<std::string>(), nullptr, 16) ==
                     std::stoull(literal, nullptr, 16);
      }
      if (c["kind"] == "MethodTable" && c["name"] == "Fixture.Customer") saw_mt = true;
    }
  }
  EXPECT_TRUE(saw_string) << j.out;
  EXPECT_TRUE(saw_mt) << j.out;
}

TEST_P(ClruAnnotationsTest, EveryJittedFixtureMethodWithoutCrash) {
  // HeapApp.dll's Module: from Fixture.Customer's MethodTable.
  RunResult stat = Ours({"dumpheap -stat -type Fixture.Customer"});
  std::string customer_mt;
  for (const std::string& l : Lines(stat.out)) {
    if (EndsWith(l, " Fixture.Customer")) customer_mt = l.substr(0, l.find(' '));
  }
  ASSERT_FALSE(customer_mt.empty()) << stat.out;
  std::string module = ValueAfter(Ours({"dumpmt " + customer_mt}).out, "Module:");
  ASSERT_FALSE(module.empty());
  RunResult types = Ours({"dumpmodule -mt " + module});
  std::vector<std::string> commands;
  for (const std::string& l : Lines(types.out)) {
    std::istringstream words(l);
    std::string mt, token;
    words >> mt >> token;
    if (mt.size() == 16 && IsHex(mt) && token.rfind("0x02", 0) == 0) {
      commands.push_back("dumpmt -md " + mt);
    }
  }
  ASSERT_GT(commands.size(), 10u) << types.out;
  RunResult tables = Ours(commands);
  std::set<std::string> mds;
  for (const std::string& l : Lines(tables.out)) {
    std::istringstream words(l);
    std::string entry, md, jit;
    words >> entry >> md >> jit;
    if (entry.size() == 16 && IsHex(entry) && md.size() == 16 && IsHex(md) && jit != "NONE") {
      mds.insert(md);
    }
  }
  ASSERT_GT(mds.size(), 50u) << tables.out;
  commands.clear();
  for (const std::string& md : mds) commands.push_back("clru -gcinfo " + md);
  RunResult all = Ours(commands);
  // Some listed methods are FCalls (native code; both tools say "not a valid MethodDesc"), so
  // the run as a whole may fail; the session must survive every method.
  std::string text = all.out + all.err;
  EXPECT_EQ(text.find("killed"), std::string::npos) << all.err;
  size_t done = 0, refused = 0;
  for (size_t at = 0; (at = text.find(" generated code\n", at)) != std::string::npos; ++at) ++done;
  for (size_t at = 0; (at = text.find("not a valid MethodDesc", at)) != std::string::npos; ++at) {
    ++refused;
  }
  EXPECT_EQ(done + refused, mds.size()) << all.err;
  EXPECT_GT(done, 40u);

  // Every distinct "(MT: name)": dumpmt names it so; every string literal without escapes:
  // dumpobj shows that text.
  std::map<std::string, std::string> mts, strings;
  for (const std::string& l : Lines(all.out)) {
    if (!IsCodeLine(l)) continue;
    size_t comma = l.find(", 0x");
    if (comma == std::string::npos) continue;
    size_t end = l.find(' ', comma + 2);
    if (end == std::string::npos) continue;
    std::string value = l.substr(comma + 4, end - comma - 4);
    std::string rest = l.substr(end);
    if (rest.rfind(" (MT: ", 0) == 0) mts[value] = rest.substr(6, rest.size() - 7);
    if (rest.rfind(" (\"", 0) == 0 && rest.find('\\') == std::string::npos) {
      strings[value] = rest.substr(3, rest.size() - 5);
    }
  }
  EXPECT_GT(mts.size(), 5u);
  EXPECT_GT(strings.size(), 5u);
  commands.clear();
  for (const auto& [v, name] : mts) commands.push_back("dumpmt " + v);
  RunResult dumped = Ours(commands);
  EXPECT_EQ(dumped.exit_code, 0) << dumped.err;
  for (const auto& [v, name] : mts) {
    EXPECT_CONTAINS(dumped.out, "Name:                " + name + "\n");
  }
  commands.clear();
  for (const auto& [v, s] : strings) commands.push_back("dumpobj " + v);
  dumped = Ours(commands);
  EXPECT_EQ(dumped.exit_code, 0) << dumped.err;
  for (const auto& [v, s] : strings) {
    EXPECT_CONTAINS(dumped.out, "String:      " + s + "\n");
  }
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ClruAnnotationsTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
