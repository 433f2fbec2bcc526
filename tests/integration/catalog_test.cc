// The dump catalog through the client: dumps, download (resumable, verified), rm.
#include <fstream>

#include "core/base/sha256.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start()) << daemon_.log();
    auto app = StartFixture("SleepApp");
    ASSERT_TRUE(app);
    RunResult r =
        daemon_.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    info_ = ParseJson(r.out);
    id_ = info_["id"];
  }
  Daemon daemon_;
  nlohmann::json info_;
  std::string id_;
};

TEST_F(CatalogTest, ListsDumpsAsTextAndJson) {
  RunResult t = daemon_.Client({"dumps"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_CONTAINS(t.out, "ID");
  EXPECT_CONTAINS(t.out, id_);
  EXPECT_CONTAINS(t.out, "Mini");
  EXPECT_CONTAINS(t.out, "SleepApp");
  RunResult j = daemon_.Client({"dumps", "--json"});
  auto arr = ParseJson(j.out);
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["id"], id_);
  EXPECT_EQ(arr[0]["sha256"], info_["sha256"]);
}

TEST_F(CatalogTest, DownloadVerifiesAndResumes) {
  TempDir out;
  std::string dest = out / "copy.core";
  RunResult r = daemon_.Client({"download", id_, "-o", dest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "sha256 verified");
  EXPECT_EQ(*Sha256File(dest), info_["sha256"]);

  // Resume: a partial file holding the first part of the dump is continued, not restarted.
  std::string full = ReadFile(dest);
  std::string dest2 = out / "resumed.core";
  { std::ofstream(dest2 + ".partial", std::ios::binary) << full.substr(0, full.size() / 3); }
  RunResult r2 = daemon_.Client({"download", id_, "-o", dest2});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(ReadFile(dest2), full);
  EXPECT_FALSE(FileExists(dest2 + ".partial"));

  // A partial file that does not match is caught by the checksum and removed.
  std::string dest3 = out / "bad.core";
  { std::ofstream(dest3 + ".partial", std::ios::binary) << std::string(4096, 'Z'); }
  RunResult r3 = daemon_.Client({"download", id_, "-o", dest3});
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_CONTAINS(r3.err, "checksum mismatch");
  EXPECT_FALSE(FileExists(dest3));
  EXPECT_FALSE(FileExists(dest3 + ".partial"));
}

TEST_F(CatalogTest, RemoveAndUnknownIds) {
  RunResult rm = daemon_.Client({"rm", id_});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_CONTAINS(rm.out, "Removed " + id_);
  EXPECT_FALSE(FileExists(daemon_.dump_dir() + "/dumps/" + id_));
  RunResult again = daemon_.Client({"rm", id_});
  EXPECT_EQ(again.exit_code, 4);
  EXPECT_CONTAINS(again.err, "no dump with id " + id_);
  TempDir out;
  RunResult dl = daemon_.Client({"download", id_, "-o", out / "x"});
  EXPECT_EQ(dl.exit_code, 4) << dl.err;
  // Ids are checked before they touch a path.
  for (std::string bad : {"../../etc/passwd", "a/b", "..", "x y"}) {
    RunResult r = daemon_.Client({"rm", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_CONTAINS(r.err, "is not a dump id");
  }
}

TEST_F(CatalogTest, CatalogSurvivesARestart) {
  ASSERT_EQ(daemon_.Stop(), 0);
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  RunResult j = daemon_.Client({"dumps", "--json"});
  auto arr = ParseJson(j.out);
  ASSERT_EQ(arr.size(), 1u) << j.out;
  EXPECT_EQ(arr[0]["id"], id_);
}

}  // namespace
}  // namespace clrdiag::testing
