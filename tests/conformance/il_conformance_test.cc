// Conformance with dotnet-dump of the code-and-state commands of issue 7 finished here:
// `dumpasync --fields` (each async frame's state machine, or task, fields), on Heap and Full
// dumps of `HeapApp --pool` (tests/fixtures/HeapApp/Pool.cs: an async chain AsyncA -> AsyncB ->
// AsyncC awaiting a never-completed TaskCompletionSource, and queued tasks) on each runtime:
// the same lines, strictly, for each command, and the facts the fixture guarantees read from
// clrdiag's JSON forms.
//
// Intentional differences (checked below, not compared):
//  - Bad arguments: the reference's parser message and its remaining -c commands dropped;
//    clrdiag reports the problem with the usage (exit status non-zero) and runs the next
//    command.
#include <memory>
#include <set>

#include "tests/conformance/compare.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

class IlConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(DotnetDump())) {
      setup_error_ =
          "the reference dotnet-dump is missing: run WITH_REFERENCE=1 scripts/install-deps.sh";
      return;
    }
    daemon_ = new Daemon();
    if (!daemon_->Start()) setup_error_ = "daemon did not start: " + daemon_->log();
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    app_ = StartFixture("HeapApp", {"100", "--pool"}, std::get<0>(GetParam()));
    ASSERT_TRUE(app_) << "HeapApp did not start";
    RunResult c = daemon_->Client({"collect", "-p", std::to_string(app_->pid()), "--type",
                                   std::get<1>(GetParam()), "--json"});
    auto info = ParseJson(c.out);
    ASSERT_TRUE(c.exit_code == 0 && info.is_object() && info.contains("id")) << c.out << c.err;
    id_ = info["id"].get<std::string>();
    path_ = info["path"].get<std::string>();
  }

  RunResult Ours(const std::vector<std::string>& commands, bool json = false) {
    std::vector<std::string> argv = {"analyze", id_};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }

  nlohmann::json OursJson(const std::string& command) {
    RunResult r = Ours({command}, true);
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    auto doc = ParseJson(r.out.substr(0, r.out.find('\n')));
    EXPECT_TRUE(doc.is_object() && doc.contains("result")) << command << ": " << r.out;
    return doc.is_object() && doc.contains("result") ? doc["result"] : nlohmann::json();
  }

  static Daemon* daemon_;
  static std::string setup_error_;
  std::unique_ptr<Process> app_;
  std::string id_, path_;
};

Daemon* IlConformanceTest::daemon_ = nullptr;
std::string IlConformanceTest::setup_error_;

TEST_P(IlConformanceTest, SameAsDotnetDumpAndTheFixturesFacts) {
  // All in one session each (the reference takes seconds to start).
  const std::vector<std::string> commands = {"dumpasync --fields", "dumpasync -f --tasks",
                                             "dumpasync --fields --coalesce"};
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));

  // dumpasync --fields: every frame of the chain AsyncC <- AsyncB <- AsyncA lists its state
  // machine's fields: the state (-1 running, 0.. awaiting), the builder and the awaiter.
  auto da = OursJson("dumpasync --fields");
  int machines = 0;
  for (const auto& stack : da["stacks"]) {
    for (const auto& f : stack["frames"]) {
      ASSERT_TRUE(f.contains("fields")) << f;
      const std::string d = f["description"].get<std::string>();
      if (d.rfind("Fixture.Pool+<Async", 0) != 0) continue;
      ++machines;
      std::set<std::string> names;
      for (const auto& field : f["fields"]) names.insert(field["name"].get<std::string>());
      EXPECT_TRUE(names.count("<>1__state") && names.count("<>t__builder") && names.count("<>u__1"))
          << f;
    }
  }
  EXPECT_EQ(machines, 3) << da;
}

// clrdiag's own handling of bad input; the same whatever the runtime, so checked on one.
class IlErrorTest : public IlConformanceTest {};

TEST_P(IlErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  RunResult r = Ours({"dumpasync --fields extra", "dumpasync -f -addr zz", "dumpasync -f -c"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "unexpected argument 'extra'");
  EXPECT_CONTAINS(r.err, "-addr needs a hexadecimal address");
  EXPECT_CONTAINS(r.out, "Name\n");  // the last one ran, with its fields
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, IlConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, IlErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
