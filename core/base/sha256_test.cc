#include "core/base/sha256.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace clrdiag {
namespace {

TEST(Sha256Test, KnownVectors) {
  Sha256 empty;
  EXPECT_EQ(empty.HexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.Update("a", 1);
  abc.Update("bc", 2);
  EXPECT_EQ(abc.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileMatchesIncremental) {
  std::string path = ::testing::TempDir() + "/sha256_test.bin";
  std::string data(3 << 20, 'x');
  { std::ofstream(path, std::ios::binary) << data; }
  Sha256 h;
  h.Update(data.data(), data.size());
  auto got = Sha256File(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, h.HexDigest());
  std::remove(path.c_str());
  EXPECT_EQ(Sha256File(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace clrdiag
