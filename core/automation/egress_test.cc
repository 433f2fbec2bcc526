#include "core/automation/egress.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace clrdiag::automation {
namespace {

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clrdiag-egress-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    src_ = dir_ + "/src.dmp";
    std::ofstream(src_) << std::string(3 << 20, 'x') << "end";
    item_.dump_path = src_;
    item_.file_name = "20261127-120000-42-mini-abcd.dmp";
    item_.dump_id = "20261127-120000-42-mini-abcd";
    item_.size_bytes = (3 << 20) + 3;
    item_.process_name = "Shop";
    item_.pid = 42;
    item_.type = "Mini";
    item_.pod = "shop-1";
    item_.k8s_namespace = "prod";
    item_.time = absl::FromUnixSeconds(1800000000);
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_, src_;
  EgressItem item_;
};

TEST_F(EgressTest, CopiesUnderTheExpandedPrefixAndLeavesNoTemporaryFile) {
  EgressConfig c;
  c.name = "local";
  c.directory = dir_ + "/out";
  c.prefix = "{namespace}/{pod}/{name}-{pid}-";
  FilesystemEgress eg(c);
  auto where = eg.Send(item_);
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_EQ(*where, dir_ + "/out/prod/shop-1/Shop-42-20261127-120000-42-mini-abcd.dmp");
  EXPECT_EQ(Read(*where), Read(src_));
  struct stat st;
  ASSERT_EQ(::stat(where->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Only the final file in the directory: the temporary name was renamed away.
  DIR* d = ::opendir((dir_ + "/out/prod/shop-1").c_str());
  ASSERT_NE(d, nullptr);
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    ++n;
    EXPECT_EQ(name, "Shop-42-20261127-120000-42-mini-abcd.dmp");
  }
  ::closedir(d);
  EXPECT_EQ(n, 1);
}

TEST_F(EgressTest, PlaceholderValuesCannotClimbOutOfTheDirectory) {
  EgressConfig c;
  c.name = "local";
  c.directory = dir_ + "/out";
  c.prefix = "{pod}/";
  item_.pod = "..";
  FilesystemEgress eg(c);
  auto where = eg.Send(item_);
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_EQ(*where, dir_ + "/out/_/" + item_.file_name);
}

TEST_F(EgressTest, UnwritableDirectoryAndMissingSourceAreErrors) {
  EgressConfig c;
  c.name = "local";
  c.directory = dir_ + "/ro";
  ASSERT_EQ(::mkdir(c.directory.c_str(), 0500), 0);
  FilesystemEgress eg(c);
  auto where = eg.Send(item_);
  if (::geteuid() == 0) {
    // root writes through mode bits: use a path under a regular file instead.
    c.directory = src_ + "/sub";
    where = FilesystemEgress(c).Send(item_);
  }
  ASSERT_FALSE(where.ok());
  EXPECT_NE(std::string(where.status().message()).find(c.directory), std::string::npos)
      << where.status();
  c.directory = dir_ + "/out";
  item_.dump_path = dir_ + "/missing.dmp";
  EXPECT_FALSE(FilesystemEgress(c).Send(item_).ok());
}

TEST_F(EgressTest, SizeMismatchIsDataLossAndRemovesTheTemporary) {
  EgressConfig c;
  c.name = "local";
  c.directory = dir_ + "/out";
  item_.size_bytes = 5;
  auto where = FilesystemEgress(c).Send(item_);
  ASSERT_FALSE(where.ok());
  EXPECT_EQ(where.status().code(), absl::StatusCode::kDataLoss);
  DIR* d = ::opendir(c.directory.c_str());
  ASSERT_NE(d, nullptr);
  int n = 0;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.' || std::string(e->d_name).size() > 2;
  ::closedir(d);
  EXPECT_EQ(n, 0);
}

TEST(EgressFactoryTest, S3WithoutAFactoryFailsAtSendWithAClearMessage) {
  EgressConfig c;
  c.name = "s3-main";
  c.type = EgressConfig::Type::kS3;
  auto t = MakeEgressTarget(c, nullptr);
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Send(EgressItem{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("not built into this daemon"),
            std::string::npos);
}

}  // namespace
}  // namespace clrdiag::automation
