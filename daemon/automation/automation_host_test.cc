// The action path of collection rules on a real dump store: a collection callback that commits
// a dump as the collector does, then egress targets that succeed and fail.
#include "daemon/automation/automation_host.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"

namespace clrdiag::daemon_automation {
namespace {

class AutomationHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clrdiag-autohost-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = dump::DumpStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // Commits a small dump as the collector would.
  absl::StatusOr<dump::DumpMeta> FakeCollect(const dump::CollectRequest& r) {
    if (r.pid == 666) return absl::UnavailableError("process 666 exited during the collection");
    dump::DumpMeta m;
    m.kind = r.kind;
    m.pid = r.pid;
    m.process_name = "Shop";
    m.started = absl::Now();
    m.finished = m.started;
    m.id = store_->NewId(r.pid, r.kind, m.started);
    m.size_bytes = 11;
    m.sha256 = "x";
    auto st = store_->CreateStaging(m.id);
    if (!st.ok()) return st.status();
    std::ofstream(store_->StagingDumpPath(m.id)) << "dump-bytes!";
    if (auto c = store_->Commit(m); !c.ok()) return c;
    return m;
  }

  // Up to 10 s for `n` events.
  std::vector<automation::Event> WaitFor(size_t n) {
    std::vector<automation::Event> got;
    for (int i = 0; i < 200 && got.size() < n; ++i) sub_->Next(absl::Milliseconds(50), &got);
    return got;
  }

  std::string dir_;
  std::unique_ptr<dump::DumpStore> store_;
  std::unique_ptr<automation::Subscription> sub_;
};

TEST_F(AutomationHostTest, CollectsThenSendsToEachEgressAndRecordsEveryOutcome) {
  automation::AutomationConfig cfg;
  automation::EgressConfig good;
  good.name = "good";
  good.directory = dir_ + "/out";
  good.prefix = "{name}/";
  automation::EgressConfig bad;
  bad.name = "bad";
  bad.directory = "/proc/self/status/egress";  // never a directory
  automation::EgressConfig s3;
  s3.name = "s3";
  s3.type = automation::EgressConfig::Type::kS3;
  cfg.egress = {good, bad, s3};
  automation::Rule rule;
  rule.name = "r";
  rule.action.collect.type = "Mini";
  rule.action.egress = {"good", "bad", "s3"};
  cfg.rules = {rule};
  AutomationDeps deps;
  deps.store = store_.get();
  deps.collect = [this](const dump::CollectRequest& r, const std::string&) {
    return FakeCollect(r);
  };
  auto host = AutomationHost::Create(cfg, deps);
  ASSERT_TRUE(host.ok()) << host.status();
  sub_ = (*host)->bus().Subscribe({}, false);
  (*host)->Start();
  automation::ProcessInfo p;
  p.pid = 42;
  p.name = "Shop";
  (*host)->Run(rule, p, "because");
  auto events = WaitFor(4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kind, automation::EventKind::kDumpCollected);
  const std::string id = events[0].dump_id;
  EXPECT_EQ(events[1].kind, automation::EventKind::kEgress);
  EXPECT_TRUE(events[1].ok);
  EXPECT_EQ(events[1].message, dir_ + "/out/Shop/" + id + ".dmp");
  EXPECT_FALSE(events[2].ok);
  EXPECT_EQ(events[2].egress, "bad");
  EXPECT_FALSE(events[3].ok);
  EXPECT_NE(events[3].message.find("not built into this daemon"), std::string::npos);
  // The catalog keeps the dump and says what happened at each target.
  auto meta = store_->Get(id);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->rule, "r");
  ASSERT_EQ(meta->egress.size(), 3u);
  EXPECT_EQ(meta->egress[0].state, "ok");
  EXPECT_EQ(meta->egress[0].location, events[1].message);
  EXPECT_EQ(meta->egress[1].state, "failed");
  EXPECT_EQ(meta->egress[1].error, events[2].message);
  EXPECT_EQ(meta->egress[2].state, "failed");
  std::ifstream in(events[1].message);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "dump-bytes!");
  // A failed collection is an event too, and nothing is sent.
  p.pid = 666;
  (*host)->Run(rule, p, "again");
  events = WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, automation::EventKind::kCollectFailed);
  EXPECT_FALSE(events[0].ok);
  EXPECT_NE(events[0].message.find("exited during the collection"), std::string::npos);
  (*host)->Stop();
  sub_.reset();  // a subscription must not outlive its bus (the host owns it)
}

TEST(DescribeTest, ActionAndLimits) {
  automation::Action a;
  a.collect.type = "Mini";
  a.egress = {"local", "s3-main"};
  EXPECT_EQ(DescribeAction(a), "collect Mini → local, s3-main");
  automation::Limits l;
  l.action_count = 1;
  l.window = absl::Hours(1);
  l.cooldown = absl::Minutes(10);
  EXPECT_EQ(DescribeLimits(l), "action_count 1 per 1h, cooldown 10m");
  EXPECT_EQ(DescribeLimits(automation::Limits{}), "action_count 5 in all");
}

}  // namespace
}  // namespace clrdiag::daemon_automation

namespace clrdiag::daemon_automation {
namespace {

// The runtime's crash report (every value a string): the crashed thread's exception type, else
// the first thread's that has one; "" for none or for text that is not a report.
TEST(CrashReportTest, ExceptionTypeOfTheCrashedThread) {
  EXPECT_EQ(CrashReportExceptionType(R"({"payload": {"protocol_version": "1.0.0", "threads": [
      {"is_managed": "true", "crashed": "false", "managed_exception_type": "System.FormatException"},
      {"is_managed": "true", "crashed": "true",
       "managed_exception_type": "System.InvalidOperationException"}]}})"),
            "System.InvalidOperationException");
  EXPECT_EQ(CrashReportExceptionType(R"({"payload": {"threads": [
      {"crashed": "false"}, {"crashed": "false", "managed_exception_type": "System.Exception"}]}})"),
            "System.Exception");
  EXPECT_EQ(CrashReportExceptionType(R"({"payload": {"threads": [{"crashed": "true"}]}})"), "");
  EXPECT_EQ(CrashReportExceptionType(R"({"payload": {"threads": "none"}})"), "");
  EXPECT_EQ(CrashReportExceptionType("not json {"), "");
  EXPECT_EQ(CrashReportExceptionType(""), "");
}

}  // namespace
}  // namespace clrdiag::daemon_automation
