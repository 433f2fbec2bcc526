// Conformance of dumpheap's options beyond -stat/-short/-type/-mt/-min/-max/-live/-dead with
// dotnet-dump, on Heap and Full dumps of `HeapApp --zoo` on each runtime (net8.0 and net9.0
// self-contained, net10.0 shared): -strings (listing and -stat), -thinlock, -gen (each
// generation), -bycount, -heap, -segment, a memory range (start end, start L<length>),
// -ignoreGCState/-noprogress, the fragmentation report ("Fragmented blocks larger than 0.5 MB",
// with CLRDIAG_HEAPAPP_FRAGMENT=1: tests/fixtures/HeapApp/Fragment.cs); line for line. Then facts
// about the zoo (the 100 "dup-string" strings, the lock the "clrdiag-locker" thread holds, the LOH
// and POH arrays) in the text and the JSON forms. Also: bad input, `heapdiff` on two dumps of one
// growing process (exact growth of Fixture.Customer and System.String), and Ctrl-C cancelling long
// walks of the new options.
//
// Intentional differences:
//  - The reference cuts -strings values to fit its console: with TERM set, to 80 columns (64
//    characters); without a terminal description, to 128 characters. clrdiag's output does not
//    depend on the terminal it goes through: always 128. The reference is run with TERM unset.
//  - The reference's console drops characters outside ASCII from -strings values (a one-char
//    string "‰" shows as an empty value; dumpobj shows it as "?"); clrdiag writes them as
//    UTF-8. clrdiag's lines are compared with those characters removed.
//  - Errors: the reference prints an exception (with a stack trace) and drops the rest of its
//    -c commands; clrdiag reports the same message as the command's error (stderr, non-zero
//    exit) with the usage, and runs the next commands. The reference takes memory range
//    bounds in hex without 0x only; clrdiag also accepts 0x. -startAtLowerBound is in the
//    reference's help text but not an option (it fails as "Invalid start address"); clrdiag
//    says "unknown option". -heap with a bad number: the reference's parser error; clrdiag's
//    own message.
//  - The reference asks `-live` and `-dead` together to mean neither; clrdiag refuses.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <regex>
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
using namespace std::chrono_literals;

struct CollectedDump {
  std::string id;
  std::string path;
};

struct RuntimeDumps {
  std::map<std::string, CollectedDump> dumps;  // by dump type
};

// The shared dumps (shared_dumps.h) read: HeapApp 2000 --zoo with Fragment.cs's free blocks.
constexpr const char* kDumps = "heap2000_zoo_fragment";

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// `text` without the bytes of characters outside ASCII (see the header).
std::string AsciiOnly(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x80) out.push_back(c);
  }
  return out;
}

std::string Hex(uint64_t v) {
  std::ostringstream o;
  o << std::hex << v;
  return o.str();
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class DumpHeapConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
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
    conformance::SharedDump d = conformance::FindSharedDump(kDumps, runtime, DumpType());
    ASSERT_FALSE(d.id.empty()) << "no shared dump " << kDumps << " " << runtime << " "
                               << DumpType();
    rt_->dumps[DumpType()] = {d.id, d.path};
  }

  const std::string& DumpType() const { return std::get<1>(GetParam()); }
  const CollectedDump& Dump() const { return rt_->dumps[DumpType()]; }

  static RunResult Ours(const std::string& id, const std::vector<std::string>& commands,
                        bool json = false) {
    std::vector<std::string> argv = {"analyze", id};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }

  // The reference without a terminal description (see the header).
  static RunResult Reference(const std::string& path, const std::vector<std::string>& commands) {
    SpawnOptions opts;
    opts.unset_env = {"TERM"};
    return RunCommand(WithCommands({DotnetDump(), "analyze", path}, commands), opts);
  }

  // The addresses `dumpheap <args> -short` prints.
  std::vector<std::string> Addresses(const std::string& args) {
    RunResult r = Ours(Dump().id, {"dumpheap " + args + " -short"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Words(Body(r.out));
  }

  // The JSON forms of the new options agree with the text forms.
  void CheckJsonForms() {
    const std::vector<std::string> commands = {"dumpheap -strings -stat", "dumpheap -thinlock",
                                               "dumpheap -gen poh -bycount -stat",
                                               "dumpheap -gen loh"};
    RunResult text = Ours(Dump().id, commands);
    ASSERT_EQ(text.exit_code, 0) << text.err;
    RunResult json = Ours(Dump().id, commands, true);
    ASSERT_EQ(json.exit_code, 0) << json.err;
    std::vector<nlohmann::json> docs;
    std::istringstream in(json.out);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] == '{') docs.push_back(ParseJson(line));
    }
    ASSERT_GE(docs.size(), 4u) << json.out;
    // -strings -stat: the dup-string row, and the rows' count equals the text's.
    const auto& strings = docs[0]["result"];
    ASSERT_TRUE(strings.contains("strings")) << docs[0].dump();
    uint64_t dup_count = 0, objects = 0;
    for (const auto& s : strings["strings"]) {
      EXPECT_EQ(s["total_size"].get<uint64_t>(),
                s["count"].get<uint64_t>() * s["size"].get<uint64_t>());
      objects += s["count"].get<uint64_t>();
      if (s["value"] == "dup-string") dup_count += s["count"].get<uint64_t>();
    }
    EXPECT_EQ(dup_count, 101u);
    EXPECT_EQ(objects, strings["total_objects"].get<uint64_t>());
    // -gen poh -stat: the fragmentation report's blocks, as in the text.
    const auto& frag = docs[2]["result"]["fragmentation"];
    EXPECT_GE(frag.size(), 8u) << docs[2].dump();
    for (const auto& b : frag) {
      char row[128];
      snprintf(row, sizeof(row), "%16s %14s %16s System.Byte[]\n",
               b["address"].get<std::string>().substr(2).c_str(), "600,024",
               b["followed_by"].get<std::string>().substr(2).c_str());
      if (b["size"] == 600024u) EXPECT_CONTAINS(text.out, row);
    }
    // -thinlock: the one lock, as in the text.
    const auto& locks = docs[1]["result"]["thin_locks"];
    ASSERT_EQ(locks.size(), 1u) << docs[1].dump();
    std::string object = locks[0]["object"].get<std::string>().substr(2);
    std::string thread = locks[0]["thread"].get<std::string>().substr(2);
    EXPECT_CONTAINS(text.out, object + "     " + thread);
    EXPECT_EQ(locks[0]["recursion"], 0);
    // -gen poh -bycount -stat: ascending counts, and totals as the text's.
    const auto& poh = docs[2]["result"];
    uint64_t last = 0;
    for (const auto& t : poh["statistics"]) {
      EXPECT_GE(t["count"].get<uint64_t>(), last);
      last = t["count"].get<uint64_t>();
    }
    EXPECT_CONTAINS(text.out,
                    "Total " + std::to_string(poh["total_objects"].get<uint64_t>()) + " objects");
    // -gen loh: Zoo.Large listed.
    bool large = false;
    for (const auto& o : docs[3]["result"]["objects"]) large |= o["size"] == 400024;
    EXPECT_TRUE(large) << docs[3].dump();
  }

  static Daemon* daemon_;
  static std::map<std::string, RuntimeDumps> runtimes_;
  static std::string setup_error_;
  RuntimeDumps* rt_ = nullptr;
};

Daemon* DumpHeapConformanceTest::daemon_ = nullptr;
std::map<std::string, RuntimeDumps> DumpHeapConformanceTest::runtimes_;
std::string DumpHeapConformanceTest::setup_error_;

TEST_P(DumpHeapConformanceTest, NewOptionsSameAsDotnetDump) {
  // Addresses for -segment and the memory ranges: the LOH's first objects (a Free gap, then
  // Zoo.Large) and the POH's first object.
  std::vector<std::string> loh = Addresses("-gen loh");
  std::vector<std::string> poh = Addresses("-gen poh");
  ASSERT_GE(loh.size(), 2u);
  ASSERT_GE(poh.size(), 1u);
  uint64_t second = std::stoull(loh[1], nullptr, 16);
  std::string after_second = Hex(second + 1);
  const std::vector<std::string> commands = {
      "dumpheap -strings -stat",
      "dumpheap -strings -min 40 -max 44",
      "dumpheap -thinlock",
      "dumpheap -thinlock -type Fixture.LockTarget",
      "dumpheap -gen loh",
      "dumpheap -gen LARGE -stat",
      "dumpheap -gen poh -bycount -stat",
      "dumpheap -gen pinned",
      "dumpheap -gen foh -stat",
      "dumpheap -gen gen0 -stat",
      "dumpheap -gen gen1 -stat -bycount",
      "dumpheap -gen gen2 -short",
      "dumpheap -heap 0 -stat -type Fixture.",
      "dumpheap -stat -bycount -type Fixture.",
      "dumpheap -segment " + poh[0] + " -stat",
      "dumpheap " + loh[0] + " L100",
      "dumpheap " + loh[0] + " " + after_second + " -short",
      "dumpheap " + loh[1] + " -stat",
      "dumpheap -ignoreGCState -noprogress -gen poh -short",
      "dumpheap -strings -gen gen1 -type String",
      // The fragmentation report: from the walk (above: -gen pinned, -gen poh -stat), from the
      // session's type index (after the first complete walk), and filtered away by -type.
      "dumpheap -stat",
      "dumpheap -stat -type System.Byte[]",
  };
  RunResult ours = Ours(Dump().id, commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(Dump().path, commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(AsciiOnly(Body(ours.out)), Body(ref.out));

  // The zoo, as both show it.
  const std::string out = Body(ours.out);
  // 100 distinct "dup-string" objects (22 + 2 * 10 bytes each) and the literal they were
  // copied from (on the frozen heap), same value and size: 101.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n +101 +4,242 dup-string\n)"))) << out;
  std::smatch m;
  // The thin lock: Zoo.Locked, held once by the clrdiag-locker thread.
  std::vector<std::string> locked = Addresses("-type Fixture.LockTarget");
  ASSERT_EQ(locked.size(), 1u);
  ASSERT_TRUE(std::regex_search(out, m,
                                std::regex(R"( +Object +Thread +OSId +Recursion\n +([0-9a-f]+) +)"
                                           R"(([0-9a-f]+) +0x([0-9a-f]+) +0\n)")))
      << out;
  EXPECT_EQ(m[1], locked[0]);
  RunResult threads = Ours(Dump().id, {"clrthreads"});
  std::string thread_obj = m[2], os_id = m[3];
  EXPECT_TRUE(
      std::regex_search(threads.out, std::regex(" " + os_id + " 0*" + Upper(thread_obj) + " ")))
      << "thread " << thread_obj << " (OS id " << os_id << ") not in:\n"
      << threads.out;
  // Fragment.cs: the 8 dropped byte[600000] between the kept ones on the pinned heap, each a
  // free block of 600,024 bytes followed by a kept System.Byte[] (listed by -gen pinned,
  // -gen poh -stat and -stat: 24 rows at least).
  EXPECT_CONTAINS(out, "\nFragmented blocks larger than 0.5 MB:\n");
  const std::vector<std::string> words = Words(out);
  EXPECT_GE(std::count(words.begin(), words.end(), std::string("600,024")), 24) << out;
  // LOH: Zoo.Large = int[100000]; POH: Zoo.Pinned = byte[4096].
  EXPECT_CONTAINS(out, "        400,024 \n");
  // (The POH also holds Fragment.cs's arrays: Zoo.Pinned is found by its size in -gen pinned.)
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n +[0-9a-f]+ +[0-9a-f]+ +4,120 \n)"))) << out;
  CheckJsonForms();
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, DumpHeapConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// Bad input: clrdiag's own, checked on the default runtime's Full dump.
class DumpHeapErrorTest : public DumpHeapConformanceTest {};

TEST_P(DumpHeapErrorTest, BadOptionValuesAreClearErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"dumpheap -gen gen3",
       "Unknown generation: gen3. Only gen0, gen1, gen2, loh (large), "
       "poh (pinned) and foh (frozen) are supported"},
      {"dumpheap -gen", "-gen needs a generation"},
      {"dumpheap -heap 7", "No GC heap with index of 7"},
      {"dumpheap -heap x", "-heap needs a GC heap number (0, 1, ...), not 'x'"},
      {"dumpheap -segment zz", "Failed to parse segment 'zz'."},
      {"dumpheap zz", "Invalid start address: zz"},
      {"dumpheap 1000 zz", "Invalid end address: zz"},
      {"dumpheap 2000 1000", "Start address must be before end address: '2000' < '1000'"},
      {"dumpheap 2000 L0", "Start address must be before end address: '2000' < 'L0'"},
      {"dumpheap 1 2 3", "Too many arguments to !dumpheap"},
      {"dumpheap 1000 2000", "No segments or objects in range [1000,2000)"},
      {"dumpheap -startAtLowerBound 1000", "unknown option '-startAtLowerBound'"},
      {"dumpheap -strings -live -dead", "-live and -dead exclude each other"},
      {"heapdiff", "heapdiff: -base <dump> is required"},
      {"heapdiff -base", "heapdiff: unexpected argument '-base'"},
  };
  std::vector<std::string> commands;
  for (const auto& [c, _] : cases) commands.push_back(c);
  commands.push_back("dumpheap -gen poh -short");  // the session goes on
  RunResult r = Ours(Dump().id, commands);
  EXPECT_NE(r.exit_code, 0);
  for (const auto& [c, message] : cases) EXPECT_CONTAINS(r.err, message) << c;
  EXPECT_CONTAINS(r.err, "Usage: dumpheap");
  EXPECT_TRUE(std::regex_search(Body(r.out), std::regex("^[0-9a-f]{12}\n"))) << r.out;
  // The reference agrees on the messages it has.
  RunResult ref = Reference(Dump().path, {"dumpheap -gen gen3"});
  EXPECT_CONTAINS(ref.out + ref.err, cases[0].second);
  ref = Reference(Dump().path, {"dumpheap 2000 1000"});
  EXPECT_CONTAINS(ref.out + ref.err, cases[7].second);
  ref = Reference(Dump().path, {"dumpheap 1000 2000"});
  EXPECT_CONTAINS(ref.out + ref.err, cases[10].second);
}

INSTANTIATE_TEST_SUITE_P(DefaultRuntime, DumpHeapErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Full")),
                         conformance::ParamName);

// `heapdiff` on two Heap dumps of one HeapApp that grew by 1000 customers in between (Growth.cs:
// "grow 0000" first so that both dumps hold the same request line's string and the code the
// requests run; then "grow 1000").
class HeapDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.log();
    fifo_ = dir_ / "stdin";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);  // never blocks, keeps the FIFO open
    ASSERT_GE(fd_, 0);
    SpawnOptions opts;
    opts.stdin_file = fifo_;
    app_ = StartFixture("HeapApp", {"2000", "--stdin"}, opts);
    ASSERT_TRUE(app_);
    Grow("0000", "GREW 0");
    a_ = Collect();
    Grow("1000", "GREW 1000");
    b_ = Collect();
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void Grow(const std::string& n, const std::string& reply) {
    std::string line = "grow " + n + "\n";
    ASSERT_EQ(::write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    auto got = app_->WaitForLine("GREW", 60s);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, reply);
    ASSERT_TRUE(app_->WaitForLine("COLLECTED", 60s).has_value());
  }

  std::string Collect() {
    RunResult c =
        daemon_.Client({"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "--json"});
    auto info = ParseJson(c.out);
    EXPECT_EQ(c.exit_code, 0) << c.err;
    return info.is_object() && info.contains("id") ? info["id"].get<std::string>() : "";
  }

  // From `dumpheap -stat` (JSON): per type name, {count, size}, and the totals.
  std::map<std::string, std::pair<uint64_t, uint64_t>> Stat(const std::string& id,
                                                            uint64_t* objects, uint64_t* bytes) {
    RunResult r = daemon_.Client({"analyze", id, "--json", "-c", "dumpheap -stat", "-c", "exit"});
    std::map<std::string, std::pair<uint64_t, uint64_t>> out;
    auto doc = ParseJson(r.out.substr(0, r.out.find('\n')));
    EXPECT_TRUE(doc.contains("result")) << r.out;
    if (!doc.contains("result")) return out;
    for (const auto& t : doc["result"]["statistics"]) {
      auto& e = out[t["type"].get<std::string>()];
      e.first += t["count"].get<uint64_t>();
      e.second += t["total_size"].get<uint64_t>();
    }
    *objects = doc["result"]["total_objects"].get<uint64_t>();
    *bytes = doc["result"]["total_size"].get<uint64_t>();
    return out;
  }

  TempDir dir_;
  Daemon daemon_;
  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<Process> app_;
  std::string a_, b_;
};

TEST_F(HeapDiffTest, GrowthPerTypeIsExact) {
  // The names "grown-0".."grown-999": 22 + 2 * length bytes each.
  uint64_t name_bytes = 0;
  for (int k = 0; k < 1000; ++k) name_bytes += 22 + 2 * ("grown-" + std::to_string(k)).size();

  RunResult j = daemon_.Client({"heapdiff", a_, b_, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = ParseJson(j.out);
  ASSERT_TRUE(doc.contains("types")) << j.out;
  std::map<std::string, nlohmann::json> by_type;
  int64_t last = INT64_MAX;
  for (const auto& t : doc["types"]) {
    by_type[t["type"].get<std::string>()] = t;
    EXPECT_LE(t["size_growth"].get<int64_t>(), last) << "not sorted by size growth";
    last = t["size_growth"].get<int64_t>();
  }
  ASSERT_TRUE(by_type.count("Fixture.Customer")) << j.out;
  EXPECT_EQ(by_type["Fixture.Customer"]["count_growth"], 1000);
  EXPECT_EQ(by_type["Fixture.Customer"]["size_growth"], 32000);  // 32 bytes each
  EXPECT_EQ(by_type["Fixture.Customer"]["count_a"], 2000);
  EXPECT_EQ(by_type["System.String"]["count_growth"], 1000);
  EXPECT_EQ(by_type["System.String"]["size_growth"], static_cast<int64_t>(name_bytes));
  EXPECT_EQ(by_type["Fixture.Customer[]"]["count_growth"], 1);
  EXPECT_EQ(by_type["Fixture.Customer[]"]["size_growth"], 24 + 8 * 1000);
  EXPECT_EQ(doc["types"][0]["type"], "System.String");  // the largest growth first

  // The totals are each dump's dumpheap -stat totals.
  uint64_t objects_a = 0, bytes_a = 0, objects_b = 0, bytes_b = 0;
  auto stat_a = Stat(a_, &objects_a, &bytes_a);
  auto stat_b = Stat(b_, &objects_b, &bytes_b);
  EXPECT_EQ(doc["total_objects_a"], objects_a);
  EXPECT_EQ(doc["total_size_b"], bytes_b);
  EXPECT_EQ(doc["total_size_growth"],
            static_cast<int64_t>(bytes_b) - static_cast<int64_t>(bytes_a));
  // Every type that changed is listed, with its counts from the two dumps.
  size_t changed = 0;
  for (const auto& [name, b] : stat_b) {
    auto a = stat_a.count(name) ? stat_a[name] : std::pair<uint64_t, uint64_t>{0, 0};
    if (a == b) continue;
    ++changed;
    ASSERT_TRUE(by_type.count(name)) << name;
    EXPECT_EQ(by_type[name]["count_b"], b.first) << name;
    EXPECT_EQ(by_type[name]["size_a"], a.second) << name;
  }
  for (const auto& [name, a] : stat_a) changed += stat_b.count(name) ? 0 : 1;
  EXPECT_EQ(changed, doc["types"].size());

  // The text form, and the same from inside a session on B (twice: the second uses the
  // base's statistics kept from the first).
  RunResult t = daemon_.Client({"heapdiff", a_, b_});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  std::regex customer_row(
      R"(\n +2,000 +3,000 +\+1,000 +64,000 +96,000 +\+32,000 Fixture.Customer\n)");
  EXPECT_TRUE(std::regex_search(t.out, customer_row)) << t.out;
  EXPECT_CONTAINS(t.out, "Total: ");
  RunResult s = daemon_.Client(
      {"analyze", b_, "-c", "heapdiff -base " + a_, "-c", "heapdiff -base " + a_, "-c", "exit"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::string body = Body(s.out);
  EXPECT_EQ(body, t.out + t.out);

  // Bad input.
  RunResult missing = daemon_.Client({"heapdiff", a_, "no-such-dump"});
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
  EXPECT_CONTAINS(missing.err, "heapdiff: no-such-dump: no dump with id no-such-dump");
  RunResult usage = daemon_.Client({"heapdiff", a_});
  EXPECT_EQ(usage.exit_code, 2);
  RunResult in_session =
      daemon_.Client({"analyze", b_, "-c", "heapdiff -base no-such-dump", "-c", "exit"});
  EXPECT_NE(in_session.exit_code, 0);
  EXPECT_CONTAINS(in_session.err, "heapdiff: no-such-dump: no dump with id no-such-dump");
}

// Ctrl-C (SIGINT to the client) stops the long walks of the new options within a few seconds,
// and the session goes on. A big heap: 1.5 million Fixture.Item objects, each with a string;
// -strings reads and groups every string (several seconds here). The other options walk the
// heap in the same loop (one cancellation check per object), but too fast on this heap to be
// interrupted reliably.
TEST(DumpHeapCancelTest, CtrlCStopsLongWalks) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  TempDir dir;
  auto app = StartFixture("HeapApp", {"10", "--objects", "1500000"});
  ASSERT_TRUE(app);
  RunResult c =
      daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out)["id"].get<std::string>();
  InteractiveClient client({BinDir() + "/clrdiag", "--server", daemon.server(), "analyze", id},
                           dir.path(), "client");
  ASSERT_TRUE(client.WaitOut("Loading core dump", 30s));
  int round = 0;
  for (const std::string& command : {"dumpheap -strings", "dumpheap -strings -stat -min 40"}) {
    ++round;
    ASSERT_TRUE(client.Send(command));
    std::this_thread::sleep_for(1500ms);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(client.proc().Signal(SIGINT));
    // The command ends as cancelled; the session answers the next command.
    ASSERT_TRUE(client.Send("echo-marker-" + std::to_string(round)));
    bool done = false;
    while (std::chrono::steady_clock::now() - t0 < 20s && !done) {
      std::string err = client.err();
      size_t n = 0, pos = 0;
      while ((pos = err.find("cancelled", pos)) != std::string::npos) ++n, ++pos;
      done = err.find("echo-marker-" + std::to_string(round)) != std::string::npos;
      if (!done) std::this_thread::sleep_for(100ms);
    }
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(done) << command << ":\n" << client.err();
    EXPECT_LT(elapsed, 10s) << command;
    EXPECT_CONTAINS(client.err(), "^C (cancelling the command)");
  }
  size_t cancelled = 0, pos = 0;
  std::string err = client.err();
  while ((pos = err.find("cancelled\n", pos)) != std::string::npos) ++cancelled, ++pos;
  EXPECT_GE(cancelled, 2u) << err;
  ASSERT_TRUE(client.Send("exit"));
  EXPECT_TRUE(client.proc().Wait(30s).has_value());
}

}  // namespace
}  // namespace clrdiag::testing
