// Conformance of the thread-pool, timer, task and merged-stack commands with dotnet-dump
// (threadpool, threadpoolqueue/tpq, timerinfo/ti, parallelstacks/pstacks, taskstate, dumpasync),
// on Heap and Full dumps of `HeapApp --pool` (tests/fixtures/HeapApp/Pool.cs: a thread pool
// warmed up by a burst of short work items (hill-climbing samples), then starved: B blocked work
// items and 8 queued behind them; 4 timers; 3 threads parked in the same call chain; an async
// chain AsyncA -> AsyncB -> AsyncC awaiting a never-completed TaskCompletionSource) on each
// runtime: the same lines for every command and option, and the facts the fixture guarantees,
// read from clrdiag's JSON forms: the pool's limits and running workers, the queued items by
// kind and method, the timers' due times, periods and callbacks, the merged stacks' thread
// counts and the awaiting chain.
//
// Intentional differences (checked below, not compared):
//  - Bad arguments: the reference's parser message and its remaining -c commands dropped;
//    clrdiag reports the problem with the usage (exit status non-zero) and runs the next
//    command.
//  - taskstate: where the reference prints "Missing Task reference address or state value...",
//    "Numeric value expected: ...", "Either a valid task address or -v <state value> is
//    expected..." or "Either a task address or a valid state is expected..." and succeeds,
//    clrdiag fails the command with a message saying what is wrong.
//  - eestack has no oracle: dotnet-dump does not have it ("Unrecognized SOS command"); it is
//    SOS's native stack-scraping command of lldb/WinDbg. Its argument errors are tested here.
//  - dumpasync --fields is compared in il_conformance_test.cc.
//  - The reference's `threadpool` also has the legacy (.NET Framework / .NET 7 IO completion)
//    pool's sections; the runtimes tested (.NET 8+) have no legacy pool data (the DAC answers
//    E_NOTIMPL), so neither tool prints them.
#include <algorithm>
#include <map>
#include <memory>
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

class ThreadsConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap100_pool"}); }
  static void TearDownTestSuite() { StopDaemon(); }

  void SetUp() override { ASSERT_NO_FATAL_FAILURE(UseDump("heap100_pool")); }
};

// The parked-thread and blocker counts of Pool.cs.
constexpr int kParked = 3;
constexpr int kQueuedTasks = 3;
constexpr int kQueuedCallbacks = 4;

// A node of pstacks' JSON tree whose frame contains `needle`, depth first; null if none.
const nlohmann::json* FindFrame(const nlohmann::json& nodes, const std::string& needle) {
  for (const auto& n : nodes) {
    if (n["frame"].get<std::string>().find(needle) != std::string::npos) return &n;
    if (const nlohmann::json* f = FindFrame(n["children"], needle)) return f;
  }
  return nullptr;
}

TEST_P(ThreadsConformanceTest, SameAsDotnetDumpAndTheFixturesFacts) {
  // All in one session each (the reference takes seconds to start).
  const std::vector<std::string> commands = {"threadpool",       "threadpool -wi",
                                             "threadpool -stat", "ThreadPool -wi -stat -ti",
                                             "threadpoolqueue",  "tpq",
                                             "timerinfo",        "ti",
                                             "parallelstacks",   "pstacks -a",
                                             "pstacks -r"};
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));

  // threadpool: B workers, all running the blockers; the limits the fixture set.
  auto pool = OursJson("threadpool -wi -stat");
  const int blockers = pool["worker_max_limit"].get<int>();
  EXPECT_GE(blockers, 4) << pool;
  EXPECT_EQ(pool["worker_min_limit"], blockers) << pool;
  EXPECT_EQ(pool["workers_running"], blockers) << pool;
  EXPECT_EQ(pool["work_items"].size(), size_t{kQueuedTasks + 1 + kQueuedCallbacks}) << pool;
  uint64_t stat_count = 0;
  for (const auto& s : pool["statistics"]) stat_count += s["count"].get<uint64_t>();
  EXPECT_EQ(stat_count, pool["work_items"].size()) << pool;

  // dumpasync: the chain Never's task <- AsyncC <- AsyncB <- AsyncA, one frame deeper each.
  auto da = OursJson("dumpasync");
  bool chain = false;
  for (const auto& stack : da["stacks"]) {
    const auto& f = stack["frames"];
    if (f.size() == 4 && f[1]["description"] == "Fixture.Pool+<AsyncC>d__24" &&
        f[2]["description"] == "Fixture.Pool+<AsyncB>d__23" &&
        f[3]["description"] == "Fixture.Pool+<AsyncA>d__22" && f[3]["depth"] == 3 &&
        f[0]["description"] == "System.Threading.Tasks.Task<System.Int32>") {
      chain = true;
    }
  }
  EXPECT_TRUE(chain) << da;
  // The address filter keeps the stack that holds the object.
  auto by_address =
      OursJson("dumpasync --address " + da["stacks"][0]["frames"][0]["address"].get<std::string>());
  EXPECT_EQ(by_address["stacks"].size(), 1u) << by_address;

  // threadpool -ti: the warm-up burst left hill-climbing samples; times count up to 0.
  auto hc = OursJson("threadpool -ti")["hill_climbing_log"];
  ASSERT_FALSE(hc.empty()) << hc;
  EXPECT_EQ(hc.back()["time"], 0.0) << hc;
  EXPECT_CONTAINS(ours.out, "Hill Climbing Log:\n");

  // taskstate of a queued Task (waiting to run: started, delegate not invoked) and of values.
  std::string task;
  for (const auto& item : pool["work_items"]) {
    if (item["type"] == "System.Threading.Tasks.Task") task = item["object"].get<std::string>();
  }
  ASSERT_FALSE(task.empty()) << pool;
  const std::vector<std::string> states = {"taskstate " + task.substr(2), "tks -v 73728",
                                           "tks --value 16777216", "tks -v 0"};
  RunResult ours_states = Ours(states);
  ASSERT_EQ(ours_states.exit_code, 0) << ours_states.err;
  RunResult ref_states = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, states));
  ExpectSameOutput(Body(ours_states.out), Body(ref_states.out));
  EXPECT_EQ(OursJson("taskstate " + task)["status"], "WaitingToRun");

  // threadpoolqueue: the queued Tasks and callbacks, by method.
  auto tpq = OursJson("threadpoolqueue");
  EXPECT_EQ(tpq["task_count"], kQueuedTasks) << tpq;
  EXPECT_EQ(tpq["work_item_count"], kQueuedCallbacks) << tpq;
  ASSERT_EQ(tpq["work_items"].size(), 1u) << tpq;
  EXPECT_EQ(tpq["work_items"][0]["method"], "Fixture.Pool.QueuedCallback") << tpq;
  ASSERT_EQ(tpq["tasks"].size(), 1u) << tpq;
  EXPECT_CONTAINS(tpq["tasks"][0]["method"].get<std::string>(), "Fixture.Pool+<>c__DisplayClass");
  int raw = 0;
  for (const auto& item : tpq["global"]) {
    if (item["kind"] == "raw") {
      ++raw;
      EXPECT_EQ(item["method"], "System.Threading.Tasks.Task<System.Int32>") << item;
    }
  }
  EXPECT_EQ(raw, 1) << tpq;

  // timerinfo: the fixture's four timers (due times and periods in ms, callbacks).
  auto ti = OursJson("timerinfo");
  std::multiset<std::string> timers;
  for (const auto& t : ti["timers"]) {
    if (t["state_type"] != "System.String") continue;
    timers.insert(
        std::to_string(t["due_time_ms"].get<uint64_t>()) + "/" +
        (t["period_ms"].is_null() ? "-" : std::to_string(t["period_ms"].get<uint64_t>())) + "/" +
        t["callback"].get<std::string>());
  }
  EXPECT_CONTAINS(ours.out, "\n   " + std::to_string(ti["count"].get<int>()) + " timers\n");
  const std::string target = "Fixture.PoolTimerTarget.OnTick";
  EXPECT_EQ(timers,
            (std::multiset<std::string>{"3600000/600000/" + target, "7200000/1200000/" + target,
                                        "10800000/1800000/", "7200000/-/"}))
      << ti;

  // parallelstacks: the parked threads and the blockers merged, with their counts.
  auto ps = OursJson("parallelstacks");
  EXPECT_CONTAINS(ours.out, "==> " + std::to_string(ps["thread_count"].get<int>()) +
                                " threads with " + std::to_string(ps["root_count"].get<int>()) +
                                " roots");
  const nlohmann::json* parked = FindFrame(ps["roots"], "Fixture.Pool.ParkOuter()");
  ASSERT_NE(parked, nullptr) << ps;
  EXPECT_EQ((*parked)["thread_count"], kParked) << *parked;
  EXPECT_EQ((*parked)["os_thread_ids"].size(), size_t{kParked}) << *parked;
  const nlohmann::json* blocked = FindFrame(ps["roots"], "Fixture.Pool.Blocker(Object)");
  ASSERT_NE(blocked, nullptr) << ps;
  EXPECT_EQ((*blocked)["thread_count"], blockers) << *blocked;
}

// clrdiag's own handling of bad input; the same whatever the runtime, so checked on one.
class ThreadsErrorTest : public ThreadsConformanceTest {};

TEST_P(ThreadsErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  RunResult r = Ours({"threadpool -x", "tpq extra", "timerinfo 12", "pstacks --nope", "eestack -q",
                      "taskstate", "taskstate zz", "tks -v", "tks 10", "tks -v 3",
                      "dumpasync -mt zz", "dumpasync --bogus", "threadpool"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "unexpected argument '-x'");
  EXPECT_CONTAINS(r.err, "unexpected argument 'extra'");
  EXPECT_CONTAINS(r.err, "unexpected argument '12'");
  EXPECT_CONTAINS(r.err, "unexpected argument '--nope'");
  EXPECT_CONTAINS(r.err, "unexpected argument '-q'");
  EXPECT_CONTAINS(r.err, "missing Task reference address or state value");
  EXPECT_CONTAINS(r.err, "'zz' is not a hexadecimal address");
  EXPECT_CONTAINS(r.err, "-v needs a decimal m_stateFlags value");
  EXPECT_CONTAINS(r.err, "10 is not a Task");
  EXPECT_CONTAINS(r.err, "0x3 is not a valid Task state");
  EXPECT_CONTAINS(r.err, "-mt needs a hexadecimal address");
  EXPECT_CONTAINS(r.err, "unexpected argument '--bogus'");
  EXPECT_CONTAINS(r.err, "threadpool [-ti|-hc] [-wi] [-stat|-summary]");  // the usage
  EXPECT_CONTAINS(r.out, "Using the Portable thread pool.");              // the last one ran
}

// eestack (no oracle, see above): the scraped stacks of the parked threads return into the
// fixture's chain; -short keeps the threads running managed code or holding locks; JSON agrees.
TEST_P(ThreadsErrorTest, EEStackFindsTheParkedChain) {
  RunResult r = Ours({"eestack -EE"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Child-SP         RetAddr          Caller, Callee");
  auto count = [](const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  // (A Heap dump may lack the precode a call goes through: SOS then does not take the word
  // for a return address, so only the frames whose calls are direct are certain.)
  EXPECT_GE(count(r.out, "Fixture.Pool.ParkInner()"), kParked) << r.out;
  EXPECT_GE(count(r.out, "Fixture.Pool.Blocker(System.Object)"), 4) << r.out;
  auto doc = OursJson("eestack -EE");
  int parked = 0;
  for (const auto& t : doc["threads"]) {
    for (const auto& f : t["frames"]) {
      if (f["method"] == "Fixture.Pool.ParkInner()") ++parked;
    }
  }
  EXPECT_GE(parked, kParked) << doc;
  EXPECT_EQ(static_cast<size_t>(count(r.out, "---------------------------------------------")),
            doc["threads"].size());
  RunResult all = Ours({"eestack"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_CONTAINS(all.out, ", calling ");
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, ThreadsConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, ThreadsErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
