// Protocol error paths through the whole stack (client → daemon → runtime), against a fake
// runtime that misbehaves on the wire in ways a real one only does rarely.
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class FakeRuntimeCollectTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(daemon_.Start()) << daemon_.log(); }
  std::unique_ptr<Process> StartFake(const std::string& mode) {
    auto p = Process::Spawn({FAKE_DOTNET_RUNTIME, "--dump-mode=" + mode});
    if (!p || !p->WaitForLine("READY", std::chrono::seconds(10))) return nullptr;
    return p;
  }
  RunResult Collect(const Process& p) {
    return daemon_.Client({"collect", "-p", std::to_string(p.pid()), "--type", "Mini"});
  }
  void ExpectNothingLeft(const Process& p) {
    RunResult r = daemon_.Client({"dumps", "--json"});
    EXPECT_EQ(ParseJson(r.out).size(), 0u) << r.out;
    EXPECT_TRUE(FindFiles(daemon_.dump_dir(), ".partial").empty());
    for (const auto& f : FindFiles("/tmp", "")) {
      EXPECT_EQ(f.find("-" + std::to_string(p.pid()) + "-mini-"), std::string::npos) << f;
    }
  }
  Daemon daemon_;
};

TEST_F(FakeRuntimeCollectTest, ListedWithWhatTheRuntimeSays) {
  auto fake = StartFake("ok");
  ASSERT_TRUE(fake);
  RunResult r = daemon_.Client({"ps", "--json"});
  bool found = false;
  for (const auto& p : ParseJson(r.out)) {
    if (p["pid"] != fake->pid()) continue;
    found = true;
    EXPECT_EQ(p["runtime_version"], "10.0.0-fake");
    EXPECT_EQ(p["entry_assembly"], "FakeApp");
  }
  EXPECT_TRUE(found) << r.out;
}

// A target owns the directory its dump goes to: a link it plants there must never make the
// daemon read (and store for download) a file of the daemon's host.
TEST_F(FakeRuntimeCollectTest, ALinkInsteadOfTheDumpIsRefused) {
  auto fake = StartFake("symlink");
  ASSERT_TRUE(fake);
  RunResult r = Collect(*fake);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_CONTAINS(r.err, "is a symbolic link, not a dump the runtime wrote; refused");
  ExpectNothingLeft(*fake);
}

TEST_F(FakeRuntimeCollectTest, RuntimeErrorTextReachesTheUser) {
  auto fake = StartFake("error-v3");
  ASSERT_TRUE(fake);
  RunResult r = Collect(*fake);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "[createdump] fake failure: ptrace not permitted");
  ExpectNothingLeft(*fake);
}

TEST_F(FakeRuntimeCollectTest, OldRuntimeFallsBackToVersion1AndAnEmptyResultIsAnError) {
  // GenerateCoreDump3 and 2 are unknown to this runtime; 1 answers OK but writes nothing.
  auto fake = StartFake("unknown-command");
  ASSERT_TRUE(fake);
  RunResult r = Collect(*fake);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_CONTAINS(r.err, "reported success but wrote no dump");
  ExpectNothingLeft(*fake);
}

TEST_F(FakeRuntimeCollectTest, ErrorReplyWithHresultZeroIsStillAFailure) {
  auto fake = StartFake("hresult-zero");
  ASSERT_TRUE(fake);
  RunResult r = Collect(*fake);
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_CONTAINS(r.err, "0x00000000");
  ExpectNothingLeft(*fake);
}

TEST_F(FakeRuntimeCollectTest, ConnectionClosedWithoutReply) {
  auto fake = StartFake("close");
  ASSERT_TRUE(fake);
  RunResult r = Collect(*fake);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "closed the connection");
  ExpectNothingLeft(*fake);
  EXPECT_EQ(daemon_.Client({"ps"}).exit_code, 0);  // the daemon is fine
}

}  // namespace
}  // namespace clrdiag::testing
