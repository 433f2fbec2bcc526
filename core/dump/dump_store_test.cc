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
  auto reopened = DumpStore::Open(root_);
  ASSERT_TRUE(reopened.ok());
  struct stat st;
  EXPECT_NE(::stat((*store)->StagingDir(id).c_str(), &st), 0);
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
