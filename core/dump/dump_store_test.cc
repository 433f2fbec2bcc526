#include "core/dump/dump_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "core/base/fs.h"

namespace clrdiag::dump {
namespace {

class DumpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clrdiag-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = std::string(tmpl) + "/store";
  }
  void TearDown() override { (void)RemoveTree(root_.substr(0, root_.rfind('/'))); }

  DumpMeta AddDump(DumpStore& store, pid_t pid, absl::Time when, const std::string& content) {
    DumpMeta m;
    m.id = store.NewId(pid, DumpKind::kHeap, when);
    m.kind = DumpKind::kHeap;
    m.pid = pid;
    m.process_name = "app";
    m.started = when;
    m.finished = when + absl::Seconds(1);
    m.size_bytes = content.size();
    EXPECT_TRUE(store.CreateStaging(m.id).ok());
    std::ofstream(store.StagingDumpPath(m.id)) << content;
    EXPECT_TRUE(store.Commit(m).ok());
    return m;
  }

  std::string root_;
};

mode_t ModeOf(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

TEST_F(DumpStoreTest, CreatesPrivateLayoutAndReassertsModes) {
  ASSERT_TRUE(DumpStore::Open(root_).ok());
  EXPECT_EQ(ModeOf(root_), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/dumps"), 0700u);
  ::chmod(root_.c_str(), 0755);
  ASSERT_TRUE(DumpStore::Open(root_).ok());
  EXPECT_EQ(ModeOf(root_), 0700u);
}

TEST_F(DumpStoreTest, CommitListGetDelete) {
  auto store = DumpStore::Open(root_);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Time t0 = absl::FromUnixSeconds(1790000000);
  DumpMeta a = AddDump(**store, 10, t0, "aaaa");
  DumpMeta b = AddDump(**store, 11, t0 + absl::Minutes(1), "bbbbbb");
  auto list = (*store)->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, b.id);  // newest first
  EXPECT_EQ(list[1].id, a.id);
  auto got = (*store)->Get(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->pid, 10);
  EXPECT_EQ(got->kind, DumpKind::kHeap);
  EXPECT_EQ(got->started, t0);
  EXPECT_EQ(ModeOf((*store)->DumpPath(a.id).substr(0, (*store)->DumpPath(a.id).rfind('/')) +
                   "/meta.json"),
            0600u);
  auto freed = (*store)->Delete(a.id);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 4u);
  EXPECT_EQ((*store)->Get(a.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->List().size(), 1u);
}

TEST_F(DumpStoreTest, PartialLeftoversAreNeverListedAndRemovedAtOpen) {
  auto store = DumpStore::Open(root_);
  ASSERT_TRUE(store.ok());
  std::string id = (*store)->NewId(5, DumpKind::kFull, absl::Now());
  ASSERT_TRUE((*store)->CreateStaging(id).ok());
  std::ofstream((*store)->StagingDumpPath(id)) << "half";
  EXPECT_TRUE((*store)->List().empty());
  std::string staging = (*store)->StagingDir(id);
  store->reset();  // the store's lock: one open store per directory
  auto reopened = DumpStore::Open(root_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  struct stat st;
  EXPECT_NE(::stat(staging.c_str(), &st), 0);
}

TEST_F(DumpStoreTest, RejectsPathTraversalIds) {
  auto store = DumpStore::Open(root_);
  ASSERT_TRUE(store.ok());
  for (const char* bad : {"../etc", "a/b", "", ".", "x y", "..%2f"}) {
    EXPECT_EQ((*store)->Get(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE((*store)->Delete(bad).ok()) << bad;
  }
}

TEST_F(DumpStoreTest, RelativeRootIsRejected) {
  EXPECT_EQ(DumpStore::Open("relative/dir").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DumpStoreTest, OneOpenStorePerDirectory) {
  auto first = DumpStore::Open(root_);
  ASSERT_TRUE(first.ok());
  auto second = DumpStore::Open(root_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another clrdiagd"), std::string::npos)
      << second.status();
  first->reset();
  EXPECT_TRUE(DumpStore::Open(root_).ok());
}

TEST_F(DumpStoreTest, PinnedDumpIsNotDeletedAndPinsRelease) {
  auto store = DumpStore::Open(root_);
  ASSERT_TRUE(store.ok());
  DumpMeta a = AddDump(**store, 10, absl::Now(), "aaaa");
  {
    auto pin = (*store)->Pin(a.id, "a download");
    ASSERT_TRUE(pin.ok()) << pin.status();
    auto pin2 = (*store)->Pin(a.id, "an analysis session");
    ASSERT_TRUE(pin2.ok());
    auto refused = (*store)->Delete(a.id);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(refused.status().message().find("in use by a download, an analysis session"),
              std::string::npos)
        << refused.status();
    DumpPin moved = std::move(*pin);  // a moved pin still holds
    pin2->Release();
    EXPECT_FALSE((*store)->Delete(a.id).ok());
    EXPECT_EQ((*store)->PinHolders(a.id).size(), 1u);
  }
  EXPECT_TRUE((*store)->PinHolders(a.id).empty());
  EXPECT_TRUE((*store)->Delete(a.id).ok());
  EXPECT_EQ((*store)->Pin(a.id, "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->IdForPath((*store)->DumpPath(a.id)), "");  // gone
}

TEST_F(DumpStoreTest, IdForPathOnlyNamesDumpFiles) {
  auto store = DumpStore::Open(root_);
  ASSERT_TRUE(store.ok());
  DumpMeta a = AddDump(**store, 10, absl::Now(), "aaaa");
  EXPECT_EQ((*store)->IdForPath((*store)->DumpPath(a.id)), a.id);
  EXPECT_EQ((*store)->IdForPath(root_ + "/dumps/" + a.id + "/meta.json"), "");
  EXPECT_EQ((*store)->IdForPath("/etc/passwd"), "");
}

class RetentionTest : public DumpStoreTest {
 protected:
  std::unique_ptr<DumpStore> OpenWith(RetentionPolicy p) {
    StoreOptions o;
    o.retention = p;
    o.now = [this] { return now_; };
    o.log = [this](StoreLogLevel, const std::string& line) { log_ += line + "\n"; };
    auto s = DumpStore::Open(root_, o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<std::string> Ids(DumpStore& s) {
    std::vector<std::string> out;
    for (const auto& m : s.List()) out.push_back(m.id);
    return out;
  }
  absl::Time now_ = absl::FromUnixSeconds(1790000000);
  std::string log_;
};

TEST_F(RetentionTest, CountSizeAndAgeOldestFirst) {
  auto store = OpenWith({});
  DumpMeta d1 = AddDump(*store, 1, now_ - absl::Hours(240), std::string(100, 'a'));
  DumpMeta d2 = AddDump(*store, 2, now_ - absl::Hours(48), std::string(100, 'b'));
  DumpMeta d3 = AddDump(*store, 3, now_ - absl::Hours(2), std::string(100, 'c'));
  DumpMeta d4 = AddDump(*store, 4, now_ - absl::Hours(1), std::string(100, 'd'));
  store.reset();

  // Age: only the 10-day-old one goes.
  store = OpenWith({absl::Hours(24 * 7), 0, 0});
  EXPECT_EQ(Ids(*store), (std::vector<std::string>{d4.id, d3.id, d2.id}));
  EXPECT_NE(log_.find("retention: removed dump " + d1.id), std::string::npos) << log_;
  EXPECT_NE(log_.find("older than retention.max_age 7d 0h (finished 9d 23h ago)"),
            std::string::npos)
      << log_;
  store.reset();
  // Size: 300 bytes > 250: the oldest goes.
  store = OpenWith({absl::ZeroDuration(), 250, 0});
  EXPECT_EQ(Ids(*store), (std::vector<std::string>{d4.id, d3.id}));
  EXPECT_NE(log_.find("more than retention.max_total_mib"), std::string::npos) << log_;
  // Count, after a collection: the new dump is kept even when it alone is over a limit.
  DumpMeta d5 = AddDump(*store, 5, now_, std::string(400, 'e'));
  auto removed = store->EnforceRetention(d5.id);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].id, d3.id);
  EXPECT_EQ(removed[1].id, d4.id);
  EXPECT_EQ(Ids(*store), (std::vector<std::string>{d5.id}));
}

TEST_F(RetentionTest, PinnedDumpsAreKeptUntilReleased) {
  auto store = OpenWith({absl::ZeroDuration(), 0, 1});
  DumpMeta d1 = AddDump(*store, 1, now_ - absl::Hours(3), "a");
  DumpMeta d2 = AddDump(*store, 2, now_ - absl::Hours(2), "b");
  auto pin = store->Pin(d1.id, "a download");
  ASSERT_TRUE(pin.ok());
  DumpMeta d3 = AddDump(*store, 3, now_ - absl::Hours(1), "c");
  auto removed = store->EnforceRetention(d3.id);
  ASSERT_EQ(removed.size(), 1u);  // d1 is pinned: d2 goes instead, d1 waits
  EXPECT_EQ(removed[0].id, d2.id);
  EXPECT_EQ(Ids(*store), (std::vector<std::string>{d3.id, d1.id}));
  EXPECT_NE(log_.find("kept " + d1.id), std::string::npos) << log_;
  pin->Release();  // retention runs again as the last pin goes
  EXPECT_EQ(Ids(*store), (std::vector<std::string>{d3.id}));
}

TEST_F(DumpStoreTest, OpenReconcilesTheCatalogAndFixesModes) {
  std::string log;
  StoreOptions o;
  o.log = [&](StoreLogLevel, const std::string& line) { log += line + "\n"; };
  std::string noted;
  o.on_interrupted = [&](const std::string& id, const std::string& note) {
    noted = id + ":" + note;
    return std::string("cleaned ") + id;
  };
  auto store = DumpStore::Open(root_, o);
  ASSERT_TRUE(store.ok());
  absl::Time t = absl::FromUnixSeconds(1790000000);
  DumpMeta keep = AddDump(**store, 10, t, "kept");
  DumpMeta no_meta = AddDump(**store, 11, t, "orphan dump");
  DumpMeta no_dump = AddDump(**store, 12, t, "lost");
  std::string staged = (*store)->NewId(13, DumpKind::kFull, t);
  ASSERT_TRUE((*store)->CreateStaging(staged).ok());
  ASSERT_TRUE((*store)->WriteStagingNote(staged, "{\"pid\": 13}").ok());
  store->reset();
  ::unlink((root_ + "/dumps/" + no_meta.id + "/meta.json").c_str());
  ::unlink((root_ + "/dumps/" + no_dump.id + "/dump").c_str());
  ::chmod((root_ + "/dumps/" + keep.id + "/dump").c_str(), 0644);
  ::chmod((root_ + "/dumps").c_str(), 0755);

  store = DumpStore::Open(root_, o);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(noted, staged + ":{\"pid\": 13}");
  EXPECT_NE(log.find("cleaned " + staged), std::string::npos) << log;
  EXPECT_FALSE((*store)->Get(no_dump.id).ok());
  EXPECT_NE(log.find("dropped catalog entry " + no_dump.id), std::string::npos) << log;
  auto rebuilt = (*store)->Get(no_meta.id);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status() << "\n" << log;
  EXPECT_EQ(rebuilt->pid, 11);
  EXPECT_EQ(rebuilt->kind, DumpKind::kHeap);
  EXPECT_EQ(rebuilt->started, t);
  EXPECT_EQ(rebuilt->size_bytes, 11u);
  EXPECT_EQ(rebuilt->requested_by_uid, 0u);
  EXPECT_EQ(rebuilt->sha256.size(), 64u);
  EXPECT_NE(log.find("rebuilt the missing or unreadable meta.json of dump " + no_meta.id),
            std::string::npos)
      << log;
  EXPECT_EQ(ModeOf((*store)->DumpPath(keep.id)), 0600u);
  EXPECT_EQ(ModeOf(root_ + "/dumps"), 0700u);
  EXPECT_NE(log.find("fixed mode of " + root_ + "/dumps: 0755 -> 0700"), std::string::npos) << log;
  EXPECT_NE(log.find("0644 -> 0600"), std::string::npos) << log;
  EXPECT_EQ((*store)->List().size(), 2u);
}

TEST(DumpMetaTest, JsonRoundTripAndCorruptMeta) {
  DumpMeta m;
  m.id = "20261127-000000-1-full-abcd";
  m.kind = DumpKind::kTriage;
  m.pid = 1;
  m.command_line = "dotnet \"quoted\" app.dll";
  m.sha256 = "00ff";
  m.started = absl::FromUnixMillis(1790000000123);
  auto back = MetaFromJson(MetaToJson(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, DumpKind::kTriage);
  EXPECT_EQ(back->command_line, m.command_line);
  EXPECT_EQ(back->started, m.started);
  EXPECT_FALSE(MetaFromJson("{not json").ok());
  EXPECT_FALSE(MetaFromJson("{\"id\": \"../x\", \"type\": \"Full\"}").ok());
  EXPECT_FALSE(MetaFromJson("{\"id\": \"ok\", \"type\": \"Huge\"}").ok());
}

TEST(DumpKindTest, ParsesCaseInsensitively) {
  EXPECT_EQ(*ParseDumpKind("heap"), DumpKind::kHeap);
  EXPECT_EQ(*ParseDumpKind("MINI"), DumpKind::kMini);
  auto bad = ParseDumpKind("Huge");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("Full, Heap, Mini or Triage"), std::string::npos);
}

}  // namespace
}  // namespace clrdiag::dump
