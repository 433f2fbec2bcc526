// Conformance of the root commands (gcroot, pathto, objsize) with dotnet-dump, on Heap and Full
// dumps of `HeapApp 2000 --zoo` on each runtime (net8.0 and net9.0 self-contained, net10.0
// shared), with CLRDIAG_HEAPAPP_STACK_ROOT=1 (tests/fixtures/HeapApp/StackRoot.cs: a
// Fixture.StackOnly held only by a local of a blocked thread): the same lines (trailing blanks
// trimmed) for
//  - gcroot of the Fixture.ChainEnd (held only through the 1000-link chain from Zoo.ChainHead),
//    of a Fixture.Customer (static → List → array → customer), of the Fixture.StrongTarget (a
//    Normal GC handle), of the pinned byte[16] (a Pinned GC handle) and of the StackOnly (a
//    stack root: thread, frame with source line, register slot), gcroot -nostacks, -limit;
//  - pathto from the first Fixture.ChainLink (the head) to the ChainEnd, and back (no path);
//  - objsize of the List<Fixture.Customer>, of a customer, with -stat and -short;
//  - with CLRDIAG_HEAPAPP_FREACHABLE=1 (tests/fixtures/HeapApp/Fragment.cs: the finalizer
//    thread parked, 5 Fixture.ReadyToFinalize in the ready-for-finalization queue): gcroot of
//    one of them and of its payload (a "Finalizer Queue" root), of one of the zoo's 25 dead
//    Fixture.Finalizable (registered for finalization only: no root);
//  - gcroot -gcgen (an older object survives; 2 and above: a plain gcroot), objsize -strings
//    -stat -mt <System.String> (every string of the heap by value).
// The addresses are found with clrdiag's own dumpheap.
//
// Intentional differences:
//  - Static variables: when a chain starts at the runtime's statics array (System.Object[]),
//    the reference notes "(static variable: T.f)" after the second object, but its lookup
//    names the wrong field (List<Fixture.Customer> is shown as "Object.s_osVersion" on net8.0);
//    clrdiag prints no note. The note is removed from the reference's lines before comparing.
//  - `gcroot -all`: the reference's help text still mentions -all but its parser rejects it
//    ("Unrecognized command or argument '-all'.", exit 0); clrdiag fails with the same words
//    (exit non-zero). Where -all comes before the address, the reference's parser takes -all
//    as the target and names the address instead; clrdiag still names -all. `objsize`
//    without an address: the reference throws ("Could not parse target object address: 0"),
//    clrdiag reports the missing address. Checked in RootsErrorTest.
//  - `gcroot -gcgen 0|1` of an object of that generation or younger reads the GC's internal
//    root array, which is only filled during a GC: on these dumps both tools fail with the
//    reference's message (the reference throws and drops its later -c commands; clrdiag
//    fails the command, exit non-zero). Unparsable -gcgen values: the reference's parser
//    message names the .NET type (System.Nullable`1[System.Int32]); clrdiag's says "a
//    generation number". `objsize -strings` of a closure holding a non-string: both list the
//    objects up to it, then the reference throws, clrdiag fails the command.
//  - Errors: where the reference prints a message and succeeds (pathto from a non-object,
//    objsize of a non-object), clrdiag reports the same words as the command's error (exit
//    non-zero). `gcroot` of a non-object: the reference glues its warning to the next line
//    ("Warning: 1234 is not a valid objectCaching GC roots..."); clrdiag ends the warning's
//    line. Then both print "Found 0 unique roots.". pathto to a non-object: the reference checks
//    the source twice (a slip) and searches in vain; clrdiag says the target is not an object.
//  - objsize -strings: the reference's console drops characters outside ASCII from the values
//    (clrdiag writes UTF-8; compared without them) and, with TERM set, cuts the values to fit
//    80 columns (clrdiag: always 128 characters; the reference runs with TERM unset).
//  - The reference's ClrMD (4.2.7479) leaves objects it saw but did not walk marked as seen
//    after a successful search, so a later root may miss a path; clrdiag reproduces that order
//    (the same roots are printed), see core/dac/root_graph.h.
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include "nlohmann/json.hpp"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

constexpr int kChainLinks = 1000;  // HeapApp --zoo's default --chain

struct CollectedDump {
  std::string id;
  std::string path;
};

// What the tests look at, found in the Full dump (the Heap dump holds the same heap).
struct Targets {
  std::string chain_end, chain_head, customer, list, strong, pinned, stack_only;
  // Fragment.cs (CLRDIAG_HEAPAPP_FREACHABLE=1): a Fixture.ReadyToFinalize in the
  // ready-for-finalization queue and its payload; one of the zoo's 25 dead Fixture.Finalizable
  // (only registered for finalization: no root).
  std::string ready, payload, dead_finalizable;
  std::string string_mt;
};

struct RuntimeDumps {
  std::map<std::string, CollectedDump> dumps;  // by dump type
  Targets targets;
  std::string setup_error;
};

// The shared dumps (shared_dumps.h) read: HeapApp 2000 --zoo with StackRoot.cs's stack-only
// object (CLRDIAG_HEAPAPP_STACK_ROOT=1) and Fragment.cs's finalizer queue roots
// (CLRDIAG_HEAPAPP_FREACHABLE=1).
constexpr const char* kDumps = "heap2000_zoo_roots";

// `text` without the bytes of characters outside ASCII: the reference's console drops them
// from -strings values, clrdiag writes them as UTF-8 (see the header).
std::string AsciiOnly(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x80) out.push_back(c);
  }
  return out;
}

// The reference's lines without its static-variable notes (see above).
std::string WithoutStaticNotes(const std::string& text) {
  static const std::regex note(R"( \(static variable: [^)\n]*\))");
  return std::regex_replace(text, note, " ");
}

class RootsConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    setup_error_ = conformance::StartDaemonWithSharedDumps(*daemon_, {kDumps});
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
    if (!rt_->dumps.count(DumpType())) {
      conformance::SharedDump d = conformance::FindSharedDump(kDumps, runtime, DumpType());
      ASSERT_FALSE(d.id.empty()) << "no shared dump " << kDumps << " " << runtime << " "
                                 << DumpType();
      rt_->dumps[DumpType()] = {d.id, d.path};
    }
    if (rt_->setup_error.empty() && rt_->targets.chain_end.empty()) {
      rt_->setup_error = FindTargets(rt_->dumps[DumpType()].id, &rt_->targets);
    }
    ASSERT_TRUE(rt_->setup_error.empty()) << runtime << ": " << rt_->setup_error;
  }

  const std::string& DumpType() const { return std::get<1>(GetParam()); }
  const CollectedDump& Dump() const { return rt_->dumps[DumpType()]; }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands,
                        bool json = false) {
    std::vector<std::string> argv = {"analyze", id};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }

  // TERM unset: the reference then cuts -strings values at 128 characters, as clrdiag always
  // does (with TERM set it fits them to 80 columns).
  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    SpawnOptions opts;
    opts.unset_env = {"TERM"};
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands), opts);
  }

  // The addresses `dumpheap <args> -short` prints.
  static std::vector<std::string> Addresses(const std::string& id, const std::string& args) {
    RunResult r = Ours(id, {"dumpheap " + args + " -short"});
    std::vector<std::string> out;
    std::istringstream in(Body(r.out));
    std::string a;
    while (r.exit_code == 0 && in >> a) out.push_back(a);
    return out;
  }

  static std::string FindTargets(const std::string& id, Targets* t) {
    auto first = [&](const std::string& args) {
      std::vector<std::string> a = Addresses(id, args);
      return a.empty() ? std::string() : a.front();
    };
    t->chain_end = first("-type Fixture.ChainEnd");
    // The links are allocated head first and keep their order through compaction.
    t->chain_head = first("-type Fixture.ChainLink");
    // -type matches substrings (List<Fixture.Customer> too): the customer by its MethodTable.
    RunResult stat = Ours(id, {"dumpheap -stat -type Fixture.Customer"});
    std::istringstream rows(Body(stat.out));
    std::string line;
    while (std::getline(rows, line)) {
      std::istringstream row(line);
      std::string mt, count, size, name;
      if (row >> mt >> count >> size >> name && name == "Fixture.Customer") {
        t->customer = first("-mt " + mt);
      }
    }
    t->list = first("-type System.Collections.Generic.List<Fixture.Customer>");
    t->ready = first("-type Fixture.ReadyToFinalize");
    t->payload = first("-type Fixture.FinalizerPayload");
    // Allocated after the last GC: the only Fixture.Finalizable objects in gen0.
    t->dead_finalizable = first("-gen gen0 -type Fixture.Finalizable");
    {
      RunResult strings = Ours(id, {"dumpheap -stat -type System.String"});
      std::istringstream srows(Body(strings.out));
      std::string sline;
      while (std::getline(srows, sline)) {
        std::istringstream row(sline);
        std::string mt, count, size, name;
        if (row >> mt >> count >> size >> name && name == "System.String") t->string_mt = mt;
      }
    }
    t->strong = first("-type Fixture.StrongTarget");
    t->stack_only = first("-type Fixture.StackOnly");
    // The pinned byte[16]: 24 bytes of header and length, 16 of data.
    for (const std::string& a : Addresses(id, "-type System.Byte[] -min 40 -max 40")) {
      RunResult r = Ours(id, {"gcroot -nostacks " + a});
      if (r.out.find("(pinned handle)") != std::string::npos) {
        t->pinned = a;
        break;
      }
    }
    if (t->chain_end.empty() || t->chain_head.empty() || t->customer.empty() || t->list.empty() ||
        t->strong.empty() || t->pinned.empty() || t->stack_only.empty() || t->ready.empty() ||
        t->payload.empty() || t->dead_finalizable.empty() || t->string_mt.empty()) {
      return "a --zoo object is missing: ChainEnd '" + t->chain_end + "', ChainLink '" +
             t->chain_head + "', Customer '" + t->customer + "', List '" + t->list +
             "', StrongTarget '" + t->strong + "', pinned byte[16] '" + t->pinned +
             "', StackOnly '" + t->stack_only + "', ReadyToFinalize '" + t->ready +
             "', FinalizerPayload '" + t->payload + "', gen0 Finalizable '" + t->dead_finalizable +
             "', String MT '" + t->string_mt + "'";
    }
    return "";
  }

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;
};

Daemon* RootsConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> RootsConformanceTest::runtimes_;
std::string RootsConformanceTest::setup_error_;

// 1234567 → "1,234,567".
std::string WithCommas(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// One session per tool (the reference's start-up dominates): gcroot, pathto, objsize.
TEST_P(RootsConformanceTest, SameAsDotnetDump) {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {
      "gcroot " + t.chain_end,
      "gcroot " + t.customer,
      "gcroot " + t.strong,
      "gcroot " + t.pinned,
      "gcroot " + t.stack_only,
      "gcroot -nostacks " + t.customer,
      "gcroot -limit 1 " + t.list,
      "pathto " + t.chain_head + " " + t.chain_end,
      "pathto " + t.chain_end + " " + t.chain_head,
      "pathto " + t.list + " " + t.customer,
      "objsize " + t.list,
      "objsize " + t.customer,
      "objsize -stat " + t.list,
      "objsize -short " + t.customer,
      "objsize " + t.chain_head,
      // The finalizer queue: an object ready for finalization (and what it holds) is rooted
      // there; a dead object only registered for finalization is not.
      "gcroot " + t.ready,
      "gcroot " + t.payload,
      "gcroot " + t.dead_finalizable,
      "gcroot -nostacks " + t.payload,
      // -gcgen: an older object survives a gen0 collection; 2 and above is a plain gcroot.
      "gcroot -gcgen 0 " + t.chain_end,
      "gcroot -gcgen 2 " + t.customer,
      "gcroot -gcgen 3 -nostacks " + t.list,
      "gcroot -gcgen -1 " + t.dead_finalizable,
      // -strings: statistics per string value of what the objects keep alive (all strings).
      "objsize -strings -stat -mt " + t.string_mt,
  };
  RunResult ours = Ours(Dump().id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(Dump().path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(AsciiOnly(Body(ours.out)), WithoutStaticNotes(Body(ref.out)));
  // The facts, whatever the reference says. gcroot: the whole chain from a strong handle (the
  // statics array), the customer through its List and array, the handles' own objects, the
  // stack-only object from its thread's frame.
  EXPECT_CONTAINS(ours.out, " Fixture.ChainEnd \n");
  EXPECT_CONTAINS(ours.out, " Fixture.Customer[] \n");
  EXPECT_CONTAINS(ours.out, " (strong handle)\n");
  EXPECT_CONTAINS(ours.out, " (pinned handle)\n");
  EXPECT_CONTAINS(ours.out, " Fixture.StrongTarget \n");
  EXPECT_CONTAINS(ours.out, " Fixture.StackRoot.Hold()");
  EXPECT_CONTAINS(ours.out, " Fixture.StackOnly \n");
  // Only the dead Fixture.Finalizable (registered for finalization, not ready) has no root.
  const size_t none = ours.out.find("Found 0 unique roots.");
  EXPECT_NE(none, std::string::npos);
  EXPECT_EQ(ours.out.find("Found 0 unique roots.", none + 1), std::string::npos);
  // pathto: the chain from the head (1000 links and the end), and no way back.
  EXPECT_CONTAINS(ours.out, "Could not find a path from " + t.chain_end + " to " + t.chain_head);
  // objsize: the 2000 customers, their names, the array and the list; the chain and its end.
  EXPECT_CONTAINS(ours.out, "Total 4,002 objects, ");
  EXPECT_CONTAINS(ours.out, " Fixture.ChainEnd\n");
  EXPECT_CONTAINS(ours.out, "1,000    40,000 Fixture.ChainLink\n");
  // The finalizer queue roots, the survivors of -gcgen, the customers' names.
  EXPECT_CONTAINS(ours.out, "Finalizer Queue:\n");
  EXPECT_CONTAINS(ours.out, " (finalizer root)\n          -> " + t.ready);
  EXPECT_CONTAINS(ours.out, " Fixture.FinalizerPayload \n");
  EXPECT_CONTAINS(ours.out, "Object " + t.chain_end + " will survive this collection:\n");
  EXPECT_CONTAINS(ours.out, " > 0 = condemned generation.\n");
  EXPECT_CONTAINS(ours.out, "Object " + t.dead_finalizable +
                                " will survive this collection:\n    gen(" + t.dead_finalizable +
                                ") = Generation0 > -1 = condemned generation.\n");
  EXPECT_CONTAINS(ours.out, "             1             48 customer-1999\n");
}

// The JSON forms say what the text forms say.
TEST_P(RootsConformanceTest, JsonAgreesWithText) {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {"gcroot " + t.chain_end,
                                             "objsize " + t.list,
                                             "pathto " + t.chain_head + " " + t.chain_end,
                                             "gcroot " + t.ready,
                                             "gcroot -gcgen 0 " + t.chain_end,
                                             "objsize -strings -stat -mt " + t.string_mt};
  RunResult text = Ours(Dump().id, commands);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  RunResult js = Ours(Dump().id, commands, /*json=*/true);
  ASSERT_EQ(js.exit_code, 0) << js.err;
  std::vector<nlohmann::json> docs;
  std::istringstream lines(js.out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line.substr(0, 300);
    docs.push_back(j);
  }
  ASSERT_EQ(docs.size(), commands.size() + 1) << js.out.substr(0, 2000);  // and "exit"
  for (size_t i = 0; i < commands.size(); ++i) EXPECT_EQ(docs[i]["command"], commands[i]);
  // gcroot: one root, a strong handle, whose path is the text's rows.
  const auto& g = docs[0]["result"];
  ASSERT_EQ(g["count"], 1);
  ASSERT_EQ(g["roots"].size(), 1u);
  EXPECT_EQ(g["roots"][0]["kind"], "handle");
  EXPECT_EQ(g["roots"][0]["handle_kind"], "strong handle");
  std::string rows;
  for (const auto& p : g["roots"][0]["path"]) {
    char buf[64];
    snprintf(buf, sizeof(buf), "          -> %-16llx ",
             std::stoull(p["address"].get<std::string>().substr(2), nullptr, 16));
    rows += buf + p["type"].get<std::string>() + " \n";
  }
  EXPECT_CONTAINS(text.out, rows);
  EXPECT_EQ(g["roots"][0]["path"].back()["address"], "0x" + t.chain_end);
  // objsize: the totals of the text.
  const auto& o = docs[1]["result"];
  EXPECT_CONTAINS(text.out, "Total " + WithCommas(o["total_objects"].get<uint64_t>()) +
                                " objects, " + WithCommas(o["total_size"].get<uint64_t>()) +
                                " bytes\n");
  EXPECT_EQ(o["objects"].size(), o["total_objects"].get<uint64_t>());
  uint64_t sum = 0;
  for (const auto& s : o["statistics"]) sum += s["total_size"].get<uint64_t>();
  EXPECT_EQ(sum, o["total_size"].get<uint64_t>());
  // pathto: found, from the head to the end.
  const auto& p = docs[2]["result"];
  EXPECT_TRUE(p["found"].get<bool>());
  EXPECT_EQ(p["path"].size(), static_cast<size_t>(kChainLinks + 1));
  EXPECT_EQ(p["path"].front()["address"], "0x" + t.chain_head);
  // gcroot of an object ready for finalization: one finalizer queue root, as the text says.
  const auto& f = docs[3]["result"];
  ASSERT_EQ(f["count"], 1) << f.dump();
  EXPECT_EQ(f["roots"][0]["kind"], "finalizer");
  EXPECT_CONTAINS(text.out,
                  f["roots"][0]["address"].get<std::string>().substr(2) + " (finalizer root)\n");
  EXPECT_EQ(f["roots"][0]["path"].back()["address"], "0x" + t.ready);
  // -gcgen 0 of an older object: it survives, in the generation the text names.
  const auto& s = docs[4]["result"];
  EXPECT_TRUE(s["survives"].get<bool>());
  EXPECT_CONTAINS(text.out, "gen(" + t.chain_end + ") = " + s["generation"].get<std::string>() +
                                " > 0 = condemned generation.\n");
  // objsize -strings of every string: the groups add up, the text has each customer's name.
  const auto& st = docs[5]["result"];
  uint64_t counted = 0;
  bool found = false;
  for (const auto& g : st["strings"]) {
    counted += g["count"].get<uint64_t>();
    EXPECT_EQ(g["total_size"].get<uint64_t>(),
              g["count"].get<uint64_t>() * g["size"].get<uint64_t>());
    if (g["value"] == "customer-1999") {
      found = true;
      EXPECT_CONTAINS(text.out, "             1             48 customer-1999\n");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(counted, st["total_objects"].get<uint64_t>());
}

// Bad input is clrdiag's own: checked on the default runtime only.
class RootsErrorTest : public RootsConformanceTest {};

TEST_P(RootsErrorTest, BadInputIsAClearError) {
  const Targets& t = rt_->targets;
  struct Case {
    std::string command, error;
  };
  const std::vector<Case> cases = {
      {"gcroot", "missing object address"},
      {"gcroot zz", "Could not parse target object address: zz"},
      {"gcroot -all " + t.chain_end, "Unrecognized command or argument '-all'."},
      {"gcroot " + t.chain_end + " -all", "Unrecognized command or argument '-all'."},
      {"gcroot " + t.chain_end + " 1234", "Unrecognized command or argument '1234'."},
      {"gcroot -gcgen", "Required argument missing for option: '-gcgen'."},
      {"gcroot -gcgen x " + t.chain_end, "Cannot parse argument 'x' for option '-gcgen'"},
      {"gcroot -gcgen 0 1234", "Address 1234 is not in the managed heap."},
      {"gcroot -gcgen 0 " + t.dead_finalizable,
       "Could not gather needed data, possibly due to memory constraints in the debuggee.\n"
       "To try again, re-issue the '!findroots -gen 0' command."},
      {"gcroot -gcgen 1 " + t.dead_finalizable, "re-issue the '!findroots -gen 1' command."},
      {"objsize -strings " + t.chain_end,
       "Object " + t.chain_end + " is not a string, actual type: Fixture.ChainEnd."},
      {"gcroot -limit x " + t.chain_end, "-limit needs a number of roots"},
      {"pathto " + t.chain_end, "pathto needs a source and a target object address"},
      {"pathto 1234 " + t.chain_end, "Source address 1234 is not a valid object."},
      {"pathto " + t.chain_end + " 1234", "Target address 1234 is not a valid object."},
      {"objsize", "missing object address (or -mt <MethodTable>)"},
      {"objsize 1234", "1234 is not a valid object"},
      {"objsize -bogus " + t.list, "unknown option '-bogus'"},
  };
  for (const Case& c : cases) {
    RunResult r = Ours(Dump().id, {c.command});
    EXPECT_NE(r.exit_code, 0) << c.command;
    EXPECT_CONTAINS(r.err, c.error);
  }
  // gcroot of a non-object: a warning and no roots, as the reference.
  RunResult r = Ours(Dump().id, {"gcroot 1234"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Warning: 1234 is not a valid object\n");
  EXPECT_CONTAINS(r.out, "Found 0 unique roots.\n");
  RunResult ref = Reference(Dump().path, {"gcroot 1234", "objsize 1234", "pathto 1234 " + t.list});
  EXPECT_CONTAINS(ref.out, "Warning: 1234 is not a valid object");
  EXPECT_CONTAINS(ref.out, "Found 0 unique roots.\n");
  EXPECT_CONTAINS(ref.out, "1234 is not a valid object\n");
  EXPECT_CONTAINS(ref.out, "Source address 1234 is not a valid object.\n");
  // The reference's words for the same mistakes (each on its own: an exception ends its run).
  // `gcroot -all ADDR`: its parser takes -all as the target and then names the address as
  // the argument too many; clrdiag names -all. The other forms: the same message.
  RunResult all = Reference(Dump().path, {"gcroot -all " + t.chain_end});
  EXPECT_CONTAINS(all.out, "Unrecognized command or argument '" + t.chain_end + "'.");
  const std::vector<Case> same = {
      {"gcroot " + t.chain_end + " -all", "Unrecognized command or argument '-all'."},
      {"gcroot " + t.chain_end + " 1234", "Unrecognized command or argument '1234'."},
      {"gcroot -gcgen", "Required argument missing for option: '-gcgen'."},
      {"gcroot -gcgen x " + t.chain_end, "Cannot parse argument 'x' for option '-gcgen'"},
      {"gcroot -gcgen 0 1234", "Address 1234 is not in the managed heap."},
      {"gcroot -gcgen 0 " + t.dead_finalizable,
       "Could not gather needed data, possibly due to memory constraints in the debuggee.\n"
       "To try again, re-issue the '!findroots -gen 0' command."},
      {"objsize -strings " + t.chain_end,
       "Object " + t.chain_end + " is not a string, actual type: Fixture.ChainEnd."},
  };
  for (const Case& c : same) {
    RunResult rr = Reference(Dump().path, {c.command});
    EXPECT_CONTAINS(rr.out + rr.err, c.error) << c.command;
  }
  // objsize -strings of a non-string: both list the objects up to that one first.
  RunResult os = Ours(Dump().id, {"objsize -strings " + t.chain_end});
  RunResult ros = Reference(Dump().path, {"objsize -strings " + t.chain_end});
  EXPECT_EQ(Body(os.out), Body(ros.out).substr(0, Body(os.out).size()));
  EXPECT_CONTAINS(os.out, t.chain_end + " ");
  RunResult none = Reference(Dump().path, {"objsize"});
  EXPECT_CONTAINS(none.out + none.err, "Could not parse target object address");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, RootsConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DumpTypes, RootsErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Full")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
