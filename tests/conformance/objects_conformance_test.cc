// Conformance of the object-inspection commands (dumparray, dumpvc, dumpdelegate, listnearobj,
// dso/dumpstackobjects, dumpruntimetypes, analyzeoom) with dotnet-dump, on Heap and Full dumps
// of `HeapApp --zoo` (and of `HeapApp --oom` for analyzeoom) on each runtime (net8.0 and net9.0
// self-contained, net10.0 shared). Line by line (trailing blanks trimmed): the reference is
// deterministic for all of them on one dump. The targets (Fixture.Point[], the PointHolder
// Zoo.Box and its Point field, Zoo.Large, the string[] Zoo.Duplicates, a Customer[] with null
// slots, the delegates Zoo.Instance/Multicast/Lambda) are found with clrdiag's own dumpheap and
// dumpobj on the Full dump; dso runs on every thread clrthreads lists (setthread N, then dso).
//
// Intentional differences:
//  - dumparray -details of an array of objects shows each element as dumpobj does, and the
//    reference's dumpobj crashes on Heap dumps (SIGSEGV in the DAC's GetObjectComWrappersData,
//    see object_conformance_test.cc). Those commands are compared, on a Heap dump, with the
//    reference's output on the Full dump of the same idle process taken right after (the same
//    objects at the same addresses). Everything else runs on the same dump in both tools.
//  - dumparray of an array whose lower bound is not 0 (ArrayZoo.Shifted, int[] from index 5):
//    the reference takes -start as the index itself, so it lists [0]..[7] with addresses
//    before the array; clrdiag counts -start from the first element and lists [5]..[7].
//    Not compared; its facts are checked at the end of SameAsDotnetDump. Multi-dimensional arrays
//    with -start or -length: the reference says "For multi-dimension array, length and start index
//    are supported" and prints nothing; clrdiag reports that they are not (an error).
//  - dumparray -start/-length: the reference reads them as decimal and takes "0x10" as 0
//    without a word; clrdiag rejects anything but a decimal number.
//  - Bad input: the reference prints "Invalid object", "Not an array, please use dumpobj
//    instead", "Not a managed object" or "Object of type 'X' is not a delegate." as ordinary
//    output (dso with bad bounds throws and ends the session); clrdiag reports each as the
//    command's error (stderr, non-zero exit status) and goes on with the next command.
//    Checked by ObjectsErrorTest, not compared.
#include <map>
#include <memory>
#include <regex>
#include <set>
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

struct Targets {
  std::string points, point_mt, box, box_point, large, duplicates, customers, buckets;
  std::string with_nulls;  // a string[] of the runtime's with empty slots
  std::string grid, names,
      shifted;  // ArrayZoo (ZooArrays.cs): int[2,3], string[2,2], int[] from index 5
  std::vector<std::string> actions, funcs;
  std::vector<int> threads;                 // DBG indices of the managed threads
  std::vector<std::string> alloc_contexts;  // "start:end" of the threads' allocation contexts
};

constexpr const char* kBucketsType =
    "System.Collections.Concurrent.ConcurrentDictionary<System.String, System.Int32>+"
    "VolatileNode[]";

struct RuntimeDumps {
  std::map<std::string, CollectedDump> dumps;  // by dump type
  Targets targets;
  std::string setup_error;
};

// The shared dumps (shared_dumps.h) read: HeapApp 200 --zoo --chain 20 with ZooArrays.cs
// (CLRDIAG_FIXTURE_ARRAYS=1), Heap and Full of one process; and for analyzeoom, HeapApp 10 --oom
// under a 128 MiB heap limit (DOTNET_GCHeapHardLimit=0x8000000).
constexpr const char* kDumps = "heap200_zoo_chain20_arrays";
constexpr const char* kOomDumps = "heap10_oom";

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  std::string s;
  while (in >> s) w.push_back(s);
  return w;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

class ObjectsConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {kDumps, kOomDumps});
  }

  static void TearDownTestSuite() {
    runtimes_.clear();
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    const std::string& runtime = std::get<0>(GetParam());
    rt_ = &runtimes_[runtime];
    if (DumpType() == "Heap") Use(runtime, "Heap", rt_);
    Use(runtime, "Full", rt_);
    if (rt_->setup_error.empty() && rt_->targets.points.empty()) {
      rt_->setup_error = FindTargets(rt_->dumps["Full"].id, &rt_->targets);
    }
    ASSERT_TRUE(rt_->setup_error.empty()) << runtime << ": " << rt_->setup_error;
  }

  // The shared dump of `runtime` and `type` (Heap and Full come from the same process).
  static void Use(const std::string& runtime, const std::string& type, RuntimeDumps* rt) {
    if (!rt->setup_error.empty() || rt->dumps.count(type)) return;
    conformance::SharedDump d = conformance::FindSharedDump(kDumps, runtime, type);
    if (d.id.empty()) {
      rt->setup_error = std::string("no shared dump ") + kDumps + " " + runtime + " " + type;
      return;
    }
    rt->dumps[type] = {d.id, d.path};
  }

  const std::string& DumpType() const { return std::get<1>(GetParam()); }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id}, commands));
  }

  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  // MethodTables by exact type name, from `dumpheap -stat`.
  static std::map<std::string, std::string> MethodTables(const std::string& id) {
    std::map<std::string, std::string> by_name;
    RunResult stat = Ours(id, {"dumpheap -stat"});
    for (const std::string& line : SplitLines(Body(stat.out))) {
      std::istringstream row(line);
      std::string mt, count, size, name;
      if (!(row >> mt >> count >> size)) continue;
      std::getline(row >> std::ws, name);
      by_name[name] = mt;
    }
    return by_name;
  }

  static std::vector<std::string> Addresses(const std::string& id, const std::string& args) {
    RunResult r = Ours(id, {"dumpheap " + args + " -short"});
    return r.exit_code == 0 ? Words(Body(r.out)) : std::vector<std::string>{};
  }

  // The value column of the field row named `field` in clrdiag's dumpobj output.
  static std::string FieldValue(const std::string& dumpobj, const std::string& field) {
    for (const std::string& line : SplitLines(dumpobj)) {
      std::vector<std::string> w = Words(line);
      if (w.size() >= 8 && w.back() == field) return w[w.size() - 2];
    }
    return "";
  }

  static std::string FindTargets(const std::string& id, Targets* t) {
    auto mts = MethodTables(id);
    for (const char* name :
         {"Fixture.Point[]", "Fixture.PointHolder", "System.Int32[]", "System.String[]",
          "Fixture.Customer[]", "System.Action", "System.Func<System.Int32, System.Int32>",
          kBucketsType, "System.Int32[,]", "System.String[,]", "System.Int32[*]"}) {
      if (mts[name].empty()) return std::string("no ") + name + " in dumpheap -stat";
    }
    auto first = [&](const std::string& args) {
      auto a = Addresses(id, args);
      return a.empty() ? std::string() : a[0];
    };
    t->points = first("-mt " + mts["Fixture.Point[]"] + " -min 100");  // not Array.Empty
    t->box = first("-mt " + mts["Fixture.PointHolder"]);
    t->large = first("-mt " + mts["System.Int32[]"] + " -min 400000");
    // Zoo.Duplicates: the string[] of 100 (856 bytes); the Customer[] of Roots.Customers (200
    // customers, 1624 bytes); the buckets of Zoo.Dictionary (an array of structs that hold a
    // reference).
    t->duplicates = first("-mt " + mts["System.String[]"] + " -min 824 -max 824");
    t->customers = first("-mt " + mts["Fixture.Customer[]"] + " -min 1624 -max 1624");
    t->buckets = first("-mt " + mts[kBucketsType]);
    t->grid = first("-mt " + mts["System.Int32[,]"]);
    t->names = first("-mt " + mts["System.String[,]"] + " -max 72");  // 2 x 2
    t->shifted = first("-mt " + mts["System.Int32[*]"]);
    t->actions = Addresses(id, "-mt " + mts["System.Action"]);
    t->funcs = Addresses(id, "-mt " + mts["System.Func<System.Int32, System.Int32>"]);
    if (t->points.empty() || t->box.empty() || t->large.empty() || t->duplicates.empty() ||
        t->customers.empty() || t->buckets.empty() || t->actions.size() != 4 || t->funcs.empty() ||
        t->grid.empty() || t->names.empty() || t->shifted.empty()) {
      return "a zoo object is missing (points " + t->points + ", box " + t->box + ", large " +
             t->large + ", duplicates " + t->duplicates + ", customers " + t->customers +
             ", actions " + std::to_string(t->actions.size()) + ")";
    }
    // A string[] with a null element: the first of the heap's string arrays that has one.
    std::vector<std::string> dumps;
    for (const std::string& a : Addresses(id, "-mt " + mts["System.String[]"])) {
      dumps.push_back("dumparray " + a);
    }
    RunResult all = Ours(id, dumps);
    {  // the n-th "Name:" block is the n-th array
      int block = -1;
      for (const std::string& line : SplitLines(all.out)) {
        if (line.rfind("Name:", 0) == 0) ++block;
        if (block >= 0 && line.rfind("[", 0) == 0 && line.size() > 5 &&
            line.compare(line.size() - 5, 5, " null") == 0) {
          t->with_nulls = Words(dumps[block]).back();
          break;
        }
      }
    }
    if (t->with_nulls.empty()) {
      return "no string[] with a null element:\n" + all.out;
    }
    RunResult arr = Ours(id, {"dumparray -length 0 " + t->points});
    for (const std::string& line : SplitLines(arr.out)) {
      if (line.rfind("Element Methodtable: ", 0) == 0) t->point_mt = Words(line).back();
    }
    RunResult box = Ours(id, {"dumpobj " + t->box});
    t->box_point = FieldValue(box.out, "P");
    if (t->point_mt.empty() || t->box_point.empty()) {
      return "no Point MethodTable or Box.P:\n" + arr.out + box.out;
    }
    // Managed threads: the DBG column of clrthreads.
    RunResult threads = Ours(id, {"clrthreads"});
    bool table = false;
    for (const std::string& line : SplitLines(Body(threads.out))) {
      std::vector<std::string> w = Words(line);
      if (!w.empty() && w[0] == "DBG") {
        table = true;
        continue;
      }
      if (table && w.size() > 3 && std::all_of(w[0].begin(), w[0].end(), ::isdigit)) {
        t->threads.push_back(std::stoi(w[0]));
        if (w.size() > 6 && w[6].find(':') != std::string::npos &&
            w[6] != "0000000000000000:0000000000000000") {
          t->alloc_contexts.push_back(w[6]);
        }
      }
    }
    if (t->threads.size() < 5) return "clrthreads listed too few threads:\n" + threads.out;
    return "";
  }

  // Runs `commands` in both tools and compares; `reference_dump` is the dump type the reference
  // reads.
  void Compare(const std::vector<std::string>& commands, const std::string& reference_dump,
               std::string* ours_out = nullptr) {
    RunResult ours = Ours(rt_->dumps[DumpType()].id, commands);
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    RunResult ref = Reference(rt_->dumps[reference_dump].path, commands);
    ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    ExpectSameOutput(Body(ours.out), Body(ref.out));
    if (ours_out) *ours_out = ours.out;
  }

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;
};

Daemon* ObjectsConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> ObjectsConformanceTest::runtimes_;
std::string ObjectsConformanceTest::setup_error_;

// All the commands in one session per tool (a fixture and its dumps per test process under
// ctest: one test keeps the suite's wall time down).
TEST_P(ObjectsConformanceTest, SameAsDotnetDump) {
  const Targets& t = rt_->targets;
  // dumparray -details of object arrays goes through dumpobj: on a Heap dump the reference
  // reads the Full dump (see the header).
  const std::vector<std::string> via_dumpobj = {
      "dumparray -start 98 -details " + t.duplicates,
      "dumparray -start 198 -length 3 -details " + t.customers,
      "dumparray -length 2 -details -nofields " + t.customers,
      "dumparray -details " + t.with_nulls,
      "dumparray -details " + t.names,
  };
  std::vector<std::string> commands = {
      "dumparray " + t.points,
      "dumparray -details " + t.points,
      "dumparray -start 2 -length 3 -details -nofields " + t.points,
      "dumparray -nofields " + t.points,
      "dumparray -start 99998 -length 5 -details " + t.large,
      "dumparray -start 16 -length 4 " + t.large,
      "dumparray -start 196 -length 8 " + t.customers,
      "dumparray -start 100 " + t.duplicates,
      "dumparray -details " + t.buckets,
      "dumparray " + t.with_nulls,
      "dumparray " + t.grid,
      "dumparray -details " + t.grid,
      "dumparray " + t.names,
      "dumpvc " + t.point_mt + " " + t.box_point,
      "dumpvc " + t.point_mt + " " + t.points,
      "listnearobj " + t.box,
      "listnearobj " + t.box_point,  // interior: Box's Point field
      "listnearobj " + t.large,
      "lno " + t.points,
      "dumpruntimetypes",
      "analyzeoom",
  };
  // listnearobj at the start and the end of the threads' allocation contexts (gaps).
  for (const std::string& range : t.alloc_contexts) {
    commands.push_back("listnearobj " + range.substr(0, range.find(':')));
    commands.push_back("listnearobj " + range.substr(range.find(':') + 1));
  }
  for (const std::string& d : t.actions) commands.push_back("dumpdelegate " + d);
  for (const std::string& d : t.funcs) commands.push_back("dumpdelegate " + d);
  // dso on the current thread (also between two of its stack slots that hold objects), then
  // on every managed thread, chosen with setthread.
  std::vector<std::string> slots;
  for (const std::string& line : SplitLines(Body(Ours(rt_->dumps[DumpType()].id, {"dso"}).out))) {
    std::vector<std::string> w = Words(line);
    if (w.size() >= 3 && w[0].size() > 8 &&
        w[0].find_first_not_of("0123456789abcdef") == std::string::npos) {
      slots.push_back(w[0]);
    }
  }
  ASSERT_GE(slots.size(), 2u) << "the main thread's stack holds no two objects";
  commands.push_back("dso " + slots[1] + " " + slots.back());
  commands.push_back("dso");
  commands.push_back("dumpstackobjects -verify");
  for (int i : t.threads) {
    commands.push_back("setthread " + std::to_string(i));
    commands.push_back("dso");
    commands.push_back("dso -verify");
  }
  std::string ours, ours_details;
  if (DumpType() == "Full") {
    std::vector<std::string> all = via_dumpobj;
    all.insert(all.end(), commands.begin(), commands.end());
    Compare(all, "Full", &ours);
    ours_details = ours;
  } else {
    Compare(via_dumpobj, "Full", &ours_details);
    Compare(commands, DumpType(), &ours);
  }
  // Facts the fixture guarantees, whatever the reference says.
  EXPECT_CONTAINS(ours_details, "    String:          dup-string");
  EXPECT_CONTAINS(ours_details, "    Name:        Fixture.Customer\n");
  EXPECT_CONTAINS(ours, "Name:        Fixture.Point[]\n");
  EXPECT_CONTAINS(ours, "Array:       Rank 1, Number of elements 10, Type VALUETYPE\n");
  EXPECT_CONTAINS(ours, "Array:       Rank 1, Number of elements 100000, Type Int32\n");
  EXPECT_CONTAINS(ours, "                99999     m_value\n");
  EXPECT_CONTAINS(ours, "[199] 0000");  // the last customer; -length stops at the end
  EXPECT_CONTAINS(ours, "] null\n");    // an empty slot
  EXPECT_CONTAINS(ours, "Name:        Fixture.Point\n");
  EXPECT_CONTAINS(ours, "Array:       Rank 2, Number of elements 6, Type Int32\n");
  EXPECT_CONTAINS(ours, "[1][2] 0000");
  EXPECT_CONTAINS(ours, "                   12     m_value\n");  // Grid[1,2]
  EXPECT_CONTAINS(ours, "[1][1] null\n");                        // Names[1,1]
  EXPECT_CONTAINS(ours, " instance              420 Y\n");       // Box.P.Y
  EXPECT_CONTAINS(ours, " Fixture.Handler.OnEvent()\n");
  EXPECT_CONTAINS(ours, " Fixture.Handler.StaticB()\n");
  EXPECT_CONTAINS(ours, "-nofields has no effect unless -details is specified\n");
  EXPECT_CONTAINS(ours, "Heap local consistency confirmed.\n");
  ASSERT_FALSE(t.alloc_contexts.empty()) << "clrthreads showed no allocation context";
  EXPECT_CONTAINS(ours, " GC Allocation Context (expected gap in the heap)\n");
  EXPECT_CONTAINS(ours, " Fixture.PointHolder\n");
  EXPECT_CONTAINS(ours, "There was no managed OOM due to allocations on the GC heap\n");
  std::regex runtime_type_row(R"(\n +[0-9a-f]+ +[0-9a-f]+ +[0-9a-f]+ System\.String\n)");
  EXPECT_TRUE(std::regex_search(ours, runtime_type_row)) << "no RuntimeType of System.String";
  EXPECT_CONTAINS(ours, "          SP/REG           Object Name\n");
  // The worker threads wait on Roots.Gate: it is on their stacks.
  EXPECT_CONTAINS(ours, " System.Threading.ManualResetEvent\n");

  // An array whose lower bound is 5: the reference lists indices from 0 and addresses before
  // the array (it takes -start as the index itself); clrdiag lists [5]..[7] (see the header).
  RunResult r = Ours(rt_->dumps[DumpType()].id,
                     {"dumparray " + t.shifted, "dumparray -start 2 -details " + t.shifted});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = SplitLines(Body(r.out));
  std::vector<std::string> elements;
  for (const std::string& line : lines) {
    if (!line.empty() && line[0] == '[') elements.push_back(line);
  }
  ASSERT_EQ(elements.size(), 4u) << r.out;
  EXPECT_EQ(elements[0].substr(0, 4), "[5] ");
  EXPECT_EQ(elements[2].substr(0, 4), "[7] ");
  EXPECT_EQ(elements[3], elements[2]);  // -start 2 is the third element
  // The first element follows the MethodTable, the length word, the bound and the lower bound.
  uint64_t array = std::stoull(t.shifted, nullptr, 16);
  EXPECT_EQ(std::stoull(Words(elements[0])[1], nullptr, 16), array + 24);
  EXPECT_CONTAINS(r.out, "                  700     m_value\n");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ObjectsConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// analyzeoom after a real OutOfMemoryException (HeapApp --oom under a 128 MiB heap limit).
class AnalyzeOomConformanceTest : public ObjectsConformanceTest {
 protected:
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
};

TEST_P(AnalyzeOomConformanceTest, SameAsDotnetDump) {
  const std::string& runtime = std::get<0>(GetParam());
  conformance::SharedDump dump = conformance::FindSharedDump(kOomDumps, runtime, DumpType());
  ASSERT_FALSE(dump.id.empty()) << "no shared dump " << kOomDumps << " " << runtime << " "
                                << DumpType();
  const std::vector<std::string> commands = {"analyzeoom", "AnalyzeOOM"};
  RunResult ours = Ours(dump.id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dump.path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  EXPECT_EQ(ours.out.find("There was no managed OOM"), std::string::npos) << ours.out;
  RunResult json = daemon_->Client({"analyze", dump.id, "--json", "-c", "analyzeoom"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = ParseJson(json.out);
  ASSERT_TRUE(doc.contains("result")) << json.out;
  ASSERT_FALSE(doc["result"]["ooms"].empty()) << json.out;
  EXPECT_CONTAINS(ours.out, doc["result"]["ooms"][0]["reason"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, AnalyzeOomConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// Errors and JSON forms are clrdiag's own and the same whatever the runtime: checked on the
// default runtime only.
class ObjectsErrorTest : public ObjectsConformanceTest {};

TEST_P(ObjectsErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  const Targets& t = rt_->targets;
  const std::string& id = rt_->dumps[DumpType()].id;
  struct Case {
    std::string command, message;
  };
  const std::vector<Case> cases = {
      {"dumparray 0x1234", "0000000000001234 is not a valid object"},
      {"dumparray " + t.box, "is a Fixture.PointHolder, not an array: use dumpobj instead"},
      {"dumparray", "missing array address"},
      {"dumparray -start", "-start needs a decimal number"},
      {"dumparray -start 0x10 " + t.points, "-start needs a decimal number"},
      {"dumparray -start 11 " + t.points, "start index 11 is out of range"},
      {"dumparray -start 1 " + t.grid,
       "-start and -length are only supported for single-dimension arrays"},
      {"dumparray -bogus " + t.points, "unknown option '-bogus'"},
      {"dumparray zzz", "Invalid parameter zzz"},
      {"dumpvc 0x1234 " + t.box_point, "0000000000001234 is not a MethodTable"},
      {"dumpvc " + t.point_mt, "dumpvc takes a MethodTable and the address of a value"},
      {"dumpdelegate " + t.box, "Object of type 'Fixture.PointHolder' is not a delegate."},
      {"dumpdelegate 0x1234", "0000000000001234 is not a valid object"},
      {"dumpdelegate", "dumpdelegate takes one delegate address"},
      {"listnearobj 0x1234", "Failed to find the segment of the managed heap where the object"},
      {"listnearobj xyz", "Could not parse address: xyz"},
      {"listnearobj", "listnearobj takes one address"},
      {"dso -bogus", "unknown option '-bogus'"},
      {"dso 0x1000", "give both the top and the bottom of the stack, or neither"},
      {"dso zz 0x2000", "Failed to parse address 'zz'."},
      {"dumpruntimetypes extra", "unexpected argument 'extra'"},
      {"analyzeoom extra", "unexpected argument 'extra'"},
  };
  for (const Case& c : cases) {
    RunResult r = Ours(id, {c.command, "dumpvc " + t.point_mt + " " + t.box_point});
    EXPECT_NE(r.exit_code, 0) << c.command;
    EXPECT_CONTAINS(r.err, c.message);
    // The next command still ran.
    EXPECT_CONTAINS(r.out, "Name:        Fixture.Point\n");
  }
}

// Each JSON form says what the text says.
TEST_P(ObjectsErrorTest, JsonFormsMatchTheText) {
  const Targets& t = rt_->targets;
  const std::string& id = rt_->dumps[DumpType()].id;
  auto json = [&](const std::string& command) {
    RunResult r = daemon_->Client({"analyze", id, "--json", "-c", command});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    auto doc = ParseJson(r.out);
    EXPECT_TRUE(doc.contains("result")) << command << ": " << r.out;
    return doc.contains("result") ? doc["result"] : nlohmann::json();
  };
  auto text = [&](const std::string& command) { return Body(Ours(id, {command}).out); };

  auto arr = json("dumparray -details " + t.points);
  EXPECT_EQ(arr["length"], 10);
  EXPECT_EQ(arr["element_type"], "VALUETYPE");
  ASSERT_EQ(arr["elements"].size(), 10u);
  const std::string arr_text = text("dumparray " + t.points);
  for (const auto& e : arr["elements"]) {
    std::string addr = e["address"].get<std::string>().substr(2);
    EXPECT_CONTAINS(arr_text, "[" + std::to_string(e["index"].get<int>()) + "] " +
                                  std::string(16 - addr.size(), '0') + addr + "\n");
    // Point i: X = i, Y = 10 i.
    const auto& fields = e["details"]["fields"];
    ASSERT_EQ(fields.size(), 3u);
    int x = -1, y = -1;
    for (const auto& f : fields) {
      if (f["name"] == "X") x = std::stoi(f["value"].get<std::string>());
      if (f["name"] == "Y") y = std::stoi(f["value"].get<std::string>());
    }
    EXPECT_EQ(x, e["index"].get<int>());
    EXPECT_EQ(y, 10 * e["index"].get<int>());
  }

  auto vc = json("dumpvc " + t.point_mt + " " + t.box_point);
  EXPECT_EQ(vc["type"], "Fixture.Point");
  ASSERT_EQ(vc["fields"].size(), 3u);
  const std::string vc_text = text("dumpvc " + t.point_mt + " " + t.box_point);
  for (const auto& f : vc["fields"]) {
    EXPECT_CONTAINS(
        vc_text, " " + f["value"].get<std::string>() + " " + f["name"].get<std::string>() + "\n");
  }

  for (const std::string& d : t.actions) {
    auto del = json("dumpdelegate " + d);
    const std::string del_text = text("dumpdelegate " + d);
    ASSERT_FALSE(del["delegates"].empty());
    for (const auto& row : del["delegates"]) {
      EXPECT_CONTAINS(del_text, " " + row["method"].get<std::string>() + "\n");
    }
  }

  auto near = json("listnearobj " + t.box);
  EXPECT_EQ(near["consistent"], true);
  const std::string near_text = text("listnearobj " + t.box);
  for (const auto& o : near["objects"]) {
    EXPECT_CONTAINS(near_text, o["address"].get<std::string>().substr(2));
    EXPECT_CONTAINS(near_text, " " + o["type"].get<std::string>() + "\n");
  }

  auto types = json("dumpruntimetypes");
  const std::string types_text = text("dumpruntimetypes");
  EXPECT_EQ(types["runtime_types"].size() + 1, SplitLines(types_text).size());
  for (const auto& row : types["runtime_types"]) {
    EXPECT_CONTAINS(types_text, row["address"].get<std::string>().substr(2) + " ");
  }

  for (int i : t.threads) {
    RunResult r = daemon_->Client(
        {"analyze", id, "--json", "-c", "setthread " + std::to_string(i), "-c", "dso"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string dso_text = Body(Ours(id, {"setthread " + std::to_string(i), "dso"}).out);
    // One JSON document per command: the last line is dso's.
    auto lines = SplitLines(r.out);
    auto doc = ParseJson(lines.back());
    ASSERT_TRUE(doc.contains("result")) << r.out;
    EXPECT_EQ(doc["result"]["objects"].size() + 2, SplitLines(dso_text).size()) << dso_text;
    for (const auto& o : doc["result"]["objects"]) {
      EXPECT_CONTAINS(dso_text, o["object"].get<std::string>().substr(2) + " " +
                                    o["type"].get<std::string>() + "\n");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(DumpTypes, ObjectsErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Full")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
