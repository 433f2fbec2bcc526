// Conformance of gchandles, finalizequeue, traverseheap, dumpconcurrentdictionary and
// dumpconcurrentqueue with dotnet-dump, on Heap and Full dumps of `HeapApp --zoo` on each
// runtime (net8.0 and net9.0 self-contained, net10.0 shared). The zoo holds 50 live and 25
// dropped (still registered) Fixture.Finalizable objects, four GC handles (Normal on a
// Fixture.StrongTarget, Pinned on a byte[16], Weak and WeakTrackResurrection on two
// Fixture.WeakTargets), a ConcurrentDictionary<string,int> "key-i" -> i*i (i < 10), a
// ConcurrentQueue<int> 1..20 and a ConcurrentQueue<string> "q-0".."q-4".
//
// Compared line by line (trailing blanks trimmed): gchandles (plain, -stat, -type, -perdomain),
// finalizequeue (plain, -stat, -short, -mt, -allReady), dcd and dcq of the three collections;
// traverseheap's files (text and -xml) byte for byte. Facts are checked on top, parsed from
// clrdiag's output: handle counts per type, the zoo's finalizable counts, the collections'
// contents, every heap object and the chain's references in the traverseheap file, the handle
// roots in its root line; and the JSON forms against the text.
//
// Intentional differences:
//  - The reference's RootCacheService prints "Caching GC roots, this may take a while.",
//    "Subsequent runs of this command will be faster." and a blank line the first time a
//    session enumerates roots (finalizequeue -allReady, traverseheap); clrdiag prints no such
//    warning (progress goes to the progress channel instead). Dropped before comparing.
//  - traverseheap FILE: the reference writes FILE itself; clrdiag's client writes it, on the
//    client's machine (the daemon is privileged and may live in another file system), from
//    the content the worker streams. The files are compared, not the console output.
//  - Errors: the reference prints a message (or an unhandled exception's stack trace) and
//    drops the rest of its -c commands; clrdiag reports the error on stderr, exits non-zero
//    at the end, and runs the next commands. gchandles -type with an unknown type is printed
//    as output by the reference (no newline, success); clrdiag fails the command. Checked in
//    HandlesErrorTest.
//  - finalizequeue -allReady: the "Calculating live objects complete: N objects from M roots"
//    line is not compared: on net8.0 dumps the reachability pass shared with dumpheap -live
//    (core/dac/gc_roots.cc) counts one object less than the reference (2,243 vs 2,244); the
//    objects listed, the roots and everything else are compared.
//  - dumpconcurrentqueue of a queue of numbers lists every slot of each segment, the unused
//    ones (0) too, as the reference does: the same lines, and the first 20 are the queue.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
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

struct CollectedDump {
  std::string id;
  std::string path;
};

// What the tests look at, found in the Full dump (the Heap dump holds the same heap).
struct Targets {
  std::string dictionary, int_queue, string_queue, string_object;
  std::string finalizable_mt;
  uint64_t heap_objects = 0;  // dumpheap's total
};

struct RuntimeDumps {
  std::map<std::string, CollectedDump> dumps;  // by dump type
  Targets targets;
  std::string setup_error;
};

// The shared dumps (shared_dumps.h) read: HeapApp 200 --zoo, Heap and Full of one process.
constexpr const char* kDumps = "heap200_zoo";

// See the header: the reachable-object count comes from gc_roots.cc's LiveObjectSet.
const std::vector<IntentionalDifference> kLiveCountLine = {
    {"Calculating live objects complete:",
     "on net8.0 dumps LiveObjectSet (shared with dumpheap -live) counts one reachable object "
     "less than ClrMD; the objects finalizequeue -allReady lists are the same"}};

// The reference's root-cache warning block (see the header).
std::string DropCacheWarning(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  bool after_warning = false;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Caching GC roots") ||
        absl::StartsWith(line, "Subsequent runs of this command")) {
      after_warning = true;
      continue;
    }
    if (after_warning && line.empty()) {
      after_warning = false;
      continue;
    }
    after_warning = false;
    out += line + "\n";
  }
  return out;
}

// The JSON documents of a --json session, one a line (the last one is exit's).
std::vector<nlohmann::json> JsonDocs(const std::string& out) {
  std::vector<nlohmann::json> docs;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    docs.push_back(ParseJson(std::string(line)));
  }
  return docs;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class HandlesConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon(conformance::WithoutGraphPrebuild());
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
    Use(runtime, DumpType(), rt_);
    Use(runtime, "Full", rt_);
    if (rt_->setup_error.empty() && rt_->targets.dictionary.empty()) {
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
  const CollectedDump& Dump() { return rt_->dumps[DumpType()]; }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands,
                        bool json = false) {
    std::vector<std::string> argv = {"analyze", id};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }

  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands));
  }

  // The addresses `dumpheap -mt MT -short` prints.
  static std::vector<std::string> Addresses(const std::string& id, const std::string& mt) {
    RunResult r = Ours(id, {"dumpheap -mt " + mt + " -short"});
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
      if (row >> mt >> count >> size) {
        std::getline(row >> std::ws, name);
        mt_by_name[name] = mt;
      }
      if (absl::StartsWith(line, "Total ")) {
        std::string n = line.substr(6, line.find(' ', 6) - 6);
        n.erase(std::remove(n.begin(), n.end(), ','), n.end());
        t->heap_objects = std::stoull(n);
      }
    }
    const std::string dict_mt = mt_by_name
        ["System.Collections.Concurrent.ConcurrentDictionary<System.String, System.Int32>"];
    const std::string int_queue_mt =
        mt_by_name["System.Collections.Concurrent.ConcurrentQueue<System.Int32>"];
    const std::string string_queue_mt =
        mt_by_name["System.Collections.Concurrent.ConcurrentQueue<System.String>"];
    t->finalizable_mt = mt_by_name["Fixture.Finalizable"];
    const std::string string_mt = mt_by_name["System.String"];
    if (dict_mt.empty() || int_queue_mt.empty() || string_queue_mt.empty() ||
        t->finalizable_mt.empty() || string_mt.empty()) {
      return "a zoo type is missing from dumpheap -stat:\n" + stat.out;
    }
    auto first = [&](const std::string& mt) {
      auto all = Addresses(id, mt);
      return all.empty() ? std::string() : all[0];
    };
    t->dictionary = first(dict_mt);
    t->int_queue = first(int_queue_mt);
    t->string_queue = first(string_queue_mt);
    t->string_object = first(string_mt);
    if (t->dictionary.empty() || t->int_queue.empty() || t->string_queue.empty()) {
      return "dumpheap -mt found no instance of a zoo collection";
    }
    return "";
  }

  // The checks, each on this test's dump.
  void GcHandlesSameAsDotnetDump();
  void GcHandlesJsonAgreesWithText();
  void FinalizeQueueSameAsDotnetDump();
  void FinalizeQueueJsonAgreesWithText();
  void TraverseHeapFilesSameAsDotnetDump();
  void ConcurrentCollectionsSameAsDotnetDump();
  void ConcurrentCollectionsJsonAgreesWithText();

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;
};

Daemon* HandlesConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> HandlesConformanceTest::runtimes_;
std::string HandlesConformanceTest::setup_error_;

// The handle counts of gchandles' "Handles:" block ("Strong Handles:" -> 12, ...).
std::map<std::string, int> HandleCounts(const std::string& text) {
  std::map<std::string, int> out;
  std::istringstream in(text.substr(text.find("\nHandles:\n") + 1));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && absl::StartsWith(line, "    ")) {
    const size_t colon = line.find(':');
    out[std::string(absl::StripAsciiWhitespace(line.substr(0, colon)))] =
        std::stoi(line.substr(colon + 1));
  }
  return out;
}

void HandlesConformanceTest::GcHandlesSameAsDotnetDump() {
  const std::vector<std::string> commands = {
      "gchandles", "gchandles -stat", "gchandles -type Pinned", "gchandles -perdomain -stat"};
  RunResult ours = Ours(Dump().id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(Dump().path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  {
    SCOPED_TRACE("gchandles");
    ExpectSameOutput(Body(ours.out), Body(ref.out));
  }
  // The zoo's handles, one row each.
  RunResult r = Ours(Dump().id, {"gchandles"});
  const std::string& out = r.out;
  auto rows_of = [&](const std::string& type, const std::string& name) {
    int n = 0;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (cols.size() >= 5 && cols[1] == type && cols.back() == name) ++n;
    }
    return n;
  };
  EXPECT_EQ(rows_of("Strong", "Fixture.StrongTarget"), 1) << out;
  EXPECT_EQ(rows_of("WeakShort", "Fixture.WeakTarget"), 1) << out;
  EXPECT_EQ(rows_of("WeakLong", "Fixture.WeakTarget"), 1) << out;
  EXPECT_GE(rows_of("Pinned", "System.Byte[]"), 1) << out;
  // The counts agree with the rows.
  std::map<std::string, int> counts = HandleCounts(out);
  int strong_rows = 0;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > 28 && line.compare(17, 7, "Strong ") == 0) ++strong_rows;
  }
  EXPECT_EQ(counts["Strong Handles"], strong_rows) << out;
  EXPECT_GE(counts["Pinned Handles"], 1);
  EXPECT_GE(counts["Weak Short Handles"], 1);
  EXPECT_GE(counts["Weak Long Handles"], 1);
}

void HandlesConformanceTest::GcHandlesJsonAgreesWithText() {
  RunResult text = Ours(Dump().id, {"gchandles"});
  RunResult json = Ours(Dump().id, {"gchandles"}, /*json=*/true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = JsonDocs(json.out).at(0);
  ASSERT_TRUE(doc.is_object() && doc.contains("result")) << json.out;
  const auto& res = doc["result"];
  std::map<std::string, int> counts = HandleCounts(text.out);
  EXPECT_EQ(res["handle_counts"].value("Strong", 0), counts["Strong Handles"]);
  EXPECT_EQ(res["handle_counts"].value("Pinned", 0), counts["Pinned Handles"]);
  EXPECT_EQ(res["handle_counts"].value("WeakShort", 0), counts["Weak Short Handles"]);
  EXPECT_EQ(res["handle_counts"].value("WeakLong", 0), counts["Weak Long Handles"]);
  int total = 0;
  for (const auto& [k, v] : counts) total += v;
  EXPECT_EQ(static_cast<int>(res["handles"].size()), total);
  bool strong_target = false;
  for (const auto& h : res["handles"]) {
    if (h["type_name"] == "Fixture.StrongTarget" && h["type"] == "Strong") strong_target = true;
  }
  EXPECT_TRUE(strong_target);
}

// "Fixture.Finalizable" count in a statistics table, or -1.
int StatCount(const std::string& text, const std::string& type) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string mt, count, size, name;
    if (row >> mt >> count >> size && std::getline(row >> std::ws, name) && name == type) {
      return std::stoi(count);
    }
  }
  return -1;
}

void HandlesConformanceTest::FinalizeQueueSameAsDotnetDump() {
  const Targets& t = rt_->targets;
  // -allReady in sessions of their own: the reference announces the reachability pass once
  // per session, clrdiag every time.
  const std::vector<std::vector<std::string>> sessions = {
      {"finalizequeue", "fq -stat", "fq -short", "fq -mt " + t.finalizable_mt},
      {"fq -allReady"},
      {"finalizequeue -allReady -short"}};
  for (const auto& commands : sessions) {
    RunResult ours = Ours(Dump().id, commands);
    ASSERT_EQ(ours.exit_code, 0) << commands[0] << ": " << ours.err;
    RunResult ref = Reference(Dump().path, commands);
    ASSERT_EQ(ref.exit_code, 0) << commands[0] << ": " << ref.out << ref.err;
    SCOPED_TRACE(commands[0]);
    ExpectSameOutput(Body(ours.out), DropCacheWarning(Body(ref.out)), kLiveCountLine);
  }
  // 50 kept and 25 dropped, all still registered; only the dropped ones are unreachable.
  RunResult all = Ours(Dump().id, {"finalizequeue"});
  EXPECT_EQ(StatCount(all.out, "Fixture.Finalizable"), 75) << all.out;
  EXPECT_CONTAINS(all.out, "SyncBlocks to be cleaned up: ");
  EXPECT_CONTAINS(all.out, "\nHeap 0\ngeneration 0 has ");
  RunResult ready = Ours(Dump().id, {"fq -allReady"});
  EXPECT_EQ(StatCount(ready.out, "Fixture.Finalizable"), 25) << ready.out;
}

void HandlesConformanceTest::FinalizeQueueJsonAgreesWithText() {
  RunResult json = Ours(Dump().id, {"finalizequeue"}, /*json=*/true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = JsonDocs(json.out).at(0);
  ASSERT_TRUE(doc.is_object() && doc.contains("result")) << json.out;
  const auto& res = doc["result"];
  RunResult text = Ours(Dump().id, {"finalizequeue"});
  int finalizables = 0;
  for (const auto& s : res["statistics"]) {
    if (s["type"] == "Fixture.Finalizable") finalizables = s["count"].get<int>();
  }
  EXPECT_EQ(finalizables, StatCount(text.out, "Fixture.Finalizable"));
  EXPECT_EQ(res["objects"].size(), res["total_objects"].get<size_t>());
  EXPECT_CONTAINS(text.out,
                  "Total " + std::to_string(res["total_objects"].get<int>()) + " objects, ");
  ASSERT_FALSE(res["heaps"].empty());
  const auto& gen0 = res["heaps"][0]["generations"][0];
  EXPECT_CONTAINS(text.out, "generation 0 has " + std::to_string(gen0["objects"].get<int>()) +
                                " objects (" + gen0["start"].get<std::string>().substr(2) + "->");
}

void HandlesConformanceTest::TraverseHeapFilesSameAsDotnetDump() {
  TempDir dir("clrdiag-traverseheap");
  const std::string ours_txt = dir.path() + "/ours.txt", ours_xml = dir.path() + "/ours.xml";
  const std::string ref_txt = dir.path() + "/ref.txt", ref_xml = dir.path() + "/ref.xml";
  RunResult ours = Ours(Dump().id, {"traverseheap " + ours_txt, "traverseheap -xml " + ours_xml});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref =
      Reference(Dump().path, {"traverseheap " + ref_txt, "TraverseHeap -xml " + ref_xml});
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  const std::string text = ReadFile(ours_txt), xml = ReadFile(ours_xml);
  ASSERT_FALSE(text.empty());
  ExpectSameOutput(text, ReadFile(ref_txt));
  ExpectSameOutput(xml, ReadFile(ref_xml));
  EXPECT_EQ(text == ReadFile(ref_txt), true) << "the text files differ in bytes";
  EXPECT_EQ(xml == ReadFile(ref_xml), true) << "the XML files differ in bytes";

  // Facts: every heap object once, the chain's links each referencing the next, and the
  // zoo's strong and pinned handles among the roots.
  std::map<std::string, int> type_ids;
  std::map<std::string, std::pair<int, std::vector<std::string>>> objects;  // address -> refs
  std::set<std::string> roots;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.empty()) continue;
    if (w[0] == "t") {
      type_ids[line.substr(line.find(" 0 ") + 3)] = std::stoi(w[1]);
    } else if (w[0] == "r") {
      roots.insert(w.begin() + 1, w.end());
    } else if (w[0] == "o") {
      objects[w[1]] = {std::stoi(w[2]), std::vector<std::string>(w.begin() + 4, w.end())};
    }
  }
  EXPECT_EQ(objects.size(), rt_->targets.heap_objects);
  const int link_type = type_ids["Fixture.ChainLink"];
  ASSERT_NE(link_type, 0);
  int links = 0, linked = 0;
  for (const auto& [addr, o] : objects) {
    if (o.first != link_type) continue;
    ++links;
    for (const std::string& r : o.second) {
      auto it = objects.find(r);
      if (it != objects.end() && it->second.first == link_type) ++linked;
    }
  }
  EXPECT_EQ(links, 1000);
  EXPECT_EQ(linked, 999);  // the last link's Next is null
  RunResult handles = Ours(Dump().id, {"gchandles"});
  std::istringstream hin(handles.out);
  int strong_found = 0;
  while (std::getline(hin, line)) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.size() >= 5 && (w.back() == "Fixture.StrongTarget" || w[1] == "Pinned")) {
      std::string h = absl::AsciiStrToLower(w[0]);
      EXPECT_TRUE(roots.count("0x" + h)) << "handle " << h << " is not a root";
      ++strong_found;
    }
  }
  EXPECT_GE(strong_found, 2);
  EXPECT_TRUE(absl::StartsWith(xml, "<gcheap>\n  <types>\n"));
  EXPECT_CONTAINS(xml, "<root kind=\"handle\" address=\"");
}

void HandlesConformanceTest::ConcurrentCollectionsSameAsDotnetDump() {
  const Targets& t = rt_->targets;
  const std::vector<std::string> commands = {"dumpconcurrentdictionary " + t.dictionary,
                                             "dcq " + t.int_queue,
                                             "dumpconcurrentqueue " + t.string_queue};
  RunResult ours = Ours(Dump().id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(Dump().path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  // The contents.
  RunResult dict = Ours(Dump().id, {"dcd " + t.dictionary});
  EXPECT_CONTAINS(
      dict.out,
      "System.Collections.Concurrent.ConcurrentDictionary<System.String, System.Int32>\n");
  for (int i = 0; i < 10; ++i) {
    EXPECT_CONTAINS(dict.out, "      Key: \"key-" + std::to_string(i) +
                                  "\"\n    Value: " + std::to_string(i * i) + "\n");
  }
  EXPECT_CONTAINS(dict.out, "\n10 items\n");
  RunResult queue = Ours(Dump().id, {"dcq " + t.int_queue});
  for (int i = 1; i <= 20; ++i) {
    char row[32];
    std::snprintf(row, sizeof(row), "\n%4d - %d\n", i, i);
    EXPECT_CONTAINS(queue.out, row);
  }
  RunResult strings = Ours(Dump().id, {"dcq " + t.string_queue});
  for (int i = 0; i < 5; ++i) {
    char row[32];
    std::snprintf(row, sizeof(row), "\n%4d - \"q-%d\"\n", i + 1, i);
    EXPECT_CONTAINS(strings.out, row);
  }
  EXPECT_CONTAINS(strings.out, "\n5 items\n");
}

void HandlesConformanceTest::ConcurrentCollectionsJsonAgreesWithText() {
  const Targets& t = rt_->targets;
  RunResult json = Ours(Dump().id, {"dcd " + t.dictionary, "dcq " + t.string_queue}, /*json=*/true);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::vector<nlohmann::json> docs = JsonDocs(json.out);
  ASSERT_EQ(docs.size(), 3u) << json.out;  // dcd, dcq, exit
  auto dict = docs[0];
  ASSERT_TRUE(dict.contains("result")) << json.out;
  std::map<std::string, std::string> pairs;
  for (const auto& item : dict["result"]["items"]) {
    pairs[item["key"].get<std::string>()] = item["value"].get<std::string>();
  }
  ASSERT_EQ(pairs.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(pairs["\"key-" + std::to_string(i) + "\""], std::to_string(i * i));
  }
  auto queue = docs[1];
  ASSERT_TRUE(queue.contains("result")) << json.out;
  EXPECT_EQ(queue["result"]["items"],
            nlohmann::json({"\"q-0\"", "\"q-1\"", "\"q-2\"", "\"q-3\"", "\"q-4\""}));
  EXPECT_EQ(queue["result"]["type"],
            "System.Collections.Concurrent.ConcurrentQueue<System.String>");
}

// The reference's output, line by line, and the facts behind it: one test per runtime and
// dump type (each ctest test is a process of its own, with its own fixture and dumps).
TEST_P(HandlesConformanceTest, SameAsDotnetDump) {
  GcHandlesSameAsDotnetDump();
  FinalizeQueueSameAsDotnetDump();
  TraverseHeapFilesSameAsDotnetDump();
  ConcurrentCollectionsSameAsDotnetDump();
}

// Bad input and the JSON forms are clrdiag's own, the same on every runtime: the default
// runtime's Heap dump only.
class HandlesErrorTest : public HandlesConformanceTest {};

TEST_P(HandlesErrorTest, JsonAgreesWithText) {
  GcHandlesJsonAgreesWithText();
  FinalizeQueueJsonAgreesWithText();
  ConcurrentCollectionsJsonAgreesWithText();
}

TEST_P(HandlesErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  const Targets& t = rt_->targets;
  TempDir dir("clrdiag-traverseheap-bad");
  const std::string unwritable = dir.path() + "/no/such/dir/heap.txt";
  RunResult r =
      Ours(Dump().id,
           {"dcd " + t.string_object, "dcd " + t.int_queue, "dcd 0x1234", "dcq zz", "dcq",
            "dcq " + t.dictionary, "gchandles -type Foo", "gchandles -bogus", "gchandles -type",
            "fq -short -stat", "fq -mt zz", "fq -bogus", "traverseheap " + unwritable,
            "traverseheap", "traverseheap -bogus x.txt", "dcq " + t.string_queue});
  EXPECT_NE(r.exit_code, 0);
  const std::string s = t.string_object;
  EXPECT_CONTAINS(r.err, s + " is not a ConcurrentDictionary but an instance of System.String...");
  EXPECT_CONTAINS(r.err, t.int_queue +
                             " is not a ConcurrentDictionary but an instance of "
                             "System.Collections.Concurrent.ConcurrentQueue<System.Int32>...");
  EXPECT_CONTAINS(r.err, "0x1234 is not referencing an object...");
  EXPECT_CONTAINS(r.err, "Hexadecimal address expected...");
  EXPECT_CONTAINS(r.err, "Missing ConcurrentQueue address...");
  EXPECT_CONTAINS(r.err,
                  " is not a ConcurrentQueue but an instance of "
                  "System.Collections.Concurrent.ConcurrentDictionary<");
  EXPECT_CONTAINS(r.err, "Unknown handle type 'Foo'.");
  EXPECT_CONTAINS(r.err, "Unknown option: -bogus");
  EXPECT_CONTAINS(r.err, "Missing value for option -type");
  EXPECT_CONTAINS(r.err, "Cannot specify both -short and -stat.");
  EXPECT_CONTAINS(r.err, "Could not parse MethodTable: 'zz'");
  EXPECT_CONTAINS(r.err, "Unrecognized command or argument '-bogus'.");
  EXPECT_CONTAINS(r.err, "traverseheap: cannot open " + unwritable + " for writing");
  EXPECT_CONTAINS(r.err, "Output filename cannot be empty.");
  EXPECT_FALSE(FileExists(unwritable));
  // The last command still ran.
  EXPECT_CONTAINS(r.out, "   5 - \"q-4\"\n");
}

// A relative path lands in the client's current directory (text, and -xml in JSON mode with
// the file's absolute path and size); an unwritable one is a JSON error document too.
TEST_P(HandlesErrorTest, TraverseHeapWritesWhereTheClientIs) {
  TempDir dir("clrdiag-traverseheap-cwd");
  SpawnOptions opts;
  opts.cwd = dir.path();
  RunResult r = RunCommand(
      WithCommands({BinDir() + "/clrdiag", "--server", daemon_->server(), "analyze", Dump().id},
                   {"traverseheap relative.txt"}),
      opts);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string content = ReadFile(dir.path() + "/relative.txt");
  EXPECT_TRUE(absl::StartsWith(content, "t 1 0 ")) << content.substr(0, 100);
  RunResult json = RunCommand(WithCommands({BinDir() + "/clrdiag", "--server", daemon_->server(),
                                            "analyze", Dump().id, "--json"},
                                           {"traverseheap -xml relative.xml"}),
                              opts);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = JsonDocs(json.out).at(0);
  ASSERT_TRUE(doc.contains("result")) << json.out;
  EXPECT_EQ(doc["result"]["file"], dir.path() + "/relative.xml");
  EXPECT_EQ(doc["result"]["format"], "xml");
  EXPECT_EQ(doc["result"]["bytes"].get<size_t>(), ReadFile(dir.path() + "/relative.xml").size());
  // An unwritable path in JSON mode: an error document, no file.
  RunResult bad = RunCommand(WithCommands({BinDir() + "/clrdiag", "--server", daemon_->server(),
                                           "analyze", Dump().id, "--json"},
                                          {"traverseheap no/such/dir/x.txt"}),
                             opts);
  EXPECT_NE(bad.exit_code, 0);
  auto error = JsonDocs(bad.out).at(0);
  EXPECT_EQ(error["command"], "traverseheap no/such/dir/x.txt");
  EXPECT_CONTAINS(error.value("error", ""), "cannot open no/such/dir/x.txt for writing");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, HandlesConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DumpTypes, HandlesErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
