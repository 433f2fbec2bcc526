// Conformance of the object commands (dumpobj/do, dumpmt) with dotnet-dump, on Heap and Full
// dumps of HeapApp on each runtime (net8.0 and net9.0 self-contained, net10.0 shared): the same
// lines (trailing blanks trimmed) for a Fixture.Customer, the List<Fixture.Customer>, a customer's
// name string, the Customer[] array and the stored InvalidOperationException, and for dumpmt /
// dumpmt -md of Fixture.Customer and System.String. The addresses are found with clrdiag's own
// dumpheap.
//
// Intentional differences:
//  - The reference crashes (SIGSEGV inside the DAC's GetObjectComWrappersData) on every dumpobj
//    of a Heap dump, so clrdiag's dumpobj on a Heap dump is compared with the reference's on a
//    Full dump of the same idle process taken right after: the objects are the same bytes.
//    clrdiag only asks for ComWrappers data when the object has a sync block (without one the
//    DAC has nothing to report).
//  - Errors: for an address that is not an object the reference prints "<Note: this object has
//    an invalid CLASS field>", "Invalid object" and a blank line, then drops the rest of its
//    -c commands; clrdiag reports "<address> is not a valid object" as the command's error (on
//    stderr, exit status non-zero) and runs the next commands. Checked separately below.
//  - Command names: dotnet-dump only knows "dumpobj"/"do" and "dumpmt"; clrdiag also accepts
//    "DumpObj"/"DumpMT" (SOS's WinDbg spelling). Not compared.
#include <map>
#include <memory>
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

// What the tests look at, found in the Full dump (the Heap dump holds the same heap).
struct Targets {
  std::string customer, list, array, name_string, exception;
  std::string customer_mt, string_mt;
};

// One runtime's two dumps of HeapApp and what the tests look at; found on first use.
struct RuntimeDumps {
  std::map<std::string, CollectedDump> dumps;  // by dump type
  Targets targets;
  std::string setup_error;
};

class ObjectConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {"heap2000"});
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
    // The shared Heap dump when this test needs it, and the Full one of the same process,
    // which the reference reads for it (see above) and in which the targets are found.
    if (DumpType() == "Heap") Collect(runtime, rt_, "Heap");
    Collect(runtime, rt_, "Full");
    if (rt_->setup_error.empty() && rt_->targets.customer.empty()) {
      rt_->setup_error = FindTargets(rt_->dumps["Full"].id, &rt_->targets);
    }
    ASSERT_TRUE(rt_->setup_error.empty()) << runtime << ": " << rt_->setup_error;
  }

  // Finds the shared dump of the runtime's HeapApp of `type` unless it is known.
  static void Collect(const std::string& runtime, RuntimeDumps* rt, const std::string& type) {
    if (!rt->setup_error.empty() || rt->dumps.count(type)) return;
    conformance::SharedDump d = conformance::FindSharedDump("heap2000", runtime, type);
    if (d.id.empty()) {
      rt->setup_error = "no shared dump heap2000 " + runtime + " " + type;
      return;
    }
    rt->dumps[type] = {d.id, d.path};
  }

  const std::string& DumpType() const { return std::get<1>(GetParam()); }

  // clrdiag's output for `commands` on the dump with catalog id `id`, without the first line.
  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id}, commands));
  }

  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  // The first address `dumpheap <args> -short` prints, or "".
  static std::string FirstAddress(const std::string& id, const std::string& args) {
    RunResult r = Ours(id, {"dumpheap " + args + " -short"});
    std::istringstream in(Body(r.out));
    std::string first;
    in >> first;
    return r.exit_code == 0 ? first : "";
  }

  // Fills `t` from `dumpheap -stat` (MethodTables by exact type name) and `dumpheap -mt`;
  // returns what is missing, or "".
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
    const std::string array_mt = mt_by_name["Fixture.Customer[]"];
    const std::string exception_mt = mt_by_name["System.InvalidOperationException"];
    if (t->customer_mt.empty() || t->string_mt.empty() || list_mt.empty() || array_mt.empty() ||
        exception_mt.empty()) {
      return "a fixture type is missing from dumpheap -stat:\n" + stat.out;
    }
    t->customer = FirstAddress(id, "-mt " + t->customer_mt);
    t->list = FirstAddress(id, "-mt " + list_mt);
    t->array = FirstAddress(id, "-mt " + array_mt + " -min 1000");  // the 2000 customers, not []
    t->exception = FirstAddress(id, "-mt " + exception_mt);
    if (t->customer.empty() || t->list.empty() || t->array.empty() || t->exception.empty()) {
      return "dumpheap -mt found no instance of a fixture type";
    }
    // The customer's Name: the value column of the field row ending in " Name".
    RunResult obj = Ours(id, {"dumpobj " + t->customer});
    std::istringstream fields(Body(obj.out));
    while (std::getline(fields, line)) {
      if (line.size() > 5 && line.compare(line.size() - 5, 5, " Name") == 0) {
        std::istringstream row(line);
        std::string col, prev;
        while (row >> col) {
          if (col == "Name") t->name_string = prev;
          prev = col;
        }
      }
    }
    if (t->name_string.empty()) return "no Name field in:\n" + obj.out;
    return "";
  }

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;  // by runtime
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;  // this test's runtime
};

Daemon* ObjectConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> ObjectConformanceTest::runtimes_;
std::string ObjectConformanceTest::setup_error_;

TEST_P(ObjectConformanceTest, DumpObjSameAsDotnetDump) {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {
      "dumpobj " + t.customer,       "dumpobj " + t.list,      "dumpobj " + t.name_string,
      "dumpobj " + t.array,          "dumpobj " + t.exception, "do " + t.customer,
      "dumpobj -nofields " + t.list,
  };
  RunResult ours = Ours(rt_->dumps[DumpType()].id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  // On a Heap dump the reference crashes: it reads the Full dump of the same process.
  RunResult ref = Reference(rt_->dumps["Full"].path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  EXPECT_CONTAINS(ours.out, "Name:        Fixture.Customer\n");
  EXPECT_CONTAINS(ours.out, "String:      customer-");
  EXPECT_CONTAINS(ours.out, "Array:       Rank 1, Number of elements 2000, Type CLASS\n");
  EXPECT_CONTAINS(ours.out, "Name:        System.InvalidOperationException\n");
  EXPECT_CONTAINS(ours.out, " _innerException\n");
}

TEST_P(ObjectConformanceTest, DumpMtSameAsDotnetDump) {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {
      "dumpmt " + t.customer_mt,
      "dumpmt -md " + t.customer_mt,
      "dumpmt " + t.string_mt,
      "dumpmt -md " + t.string_mt,
  };
  const CollectedDump& dump = rt_->dumps[DumpType()];
  RunResult ours = Ours(dump.id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(dump.path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  EXPECT_CONTAINS(ours.out, "Name:                Fixture.Customer\n");
  EXPECT_CONTAINS(ours.out, " Fixture.Customer..ctor(Int32, System.String)\n");
  EXPECT_CONTAINS(ours.out, "ComponentSize:       0x2\n");
}

// Error handling is clrdiag's own and the same whatever the runtime: checked on the default
// runtime only (each extra runtime would cost a fixture and two dumps under ctest).
class ObjectErrorTest : public ObjectConformanceTest {};

// Not an object: a clear error, and the session runs the next commands.
TEST_P(ObjectErrorTest, NotAnObjectIsAnErrorAndTheSessionGoesOn) {
  const Targets& t = rt_->targets;
  RunResult r =
      Ours(rt_->dumps[DumpType()].id, {"dumpobj 0x1234", "dumpmt 0x1234", "dumpobj",
                                       "dumpobj " + t.customer, "dumpmt " + t.customer_mt});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "0000000000001234 is not a valid object");
  EXPECT_CONTAINS(r.err, "0000000000001234 is not a MethodTable");
  EXPECT_CONTAINS(r.err, "missing object address");
  EXPECT_CONTAINS(r.out, "Name:        Fixture.Customer\n");
  EXPECT_CONTAINS(r.out, "Name:                Fixture.Customer\n");
  EXPECT_EQ(r.out.find("Invalid object"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ObjectConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DumpTypes, ObjectErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap", "Full")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
