#include "core/elf/elf_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace clrdiag::elf {
namespace {

TEST(ElfTest, BuildIdOfOwnExecutableMatchesReadelf) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  auto id = ReadGnuBuildId(self);
  ASSERT_TRUE(id.ok()) << id.status();
  // Cross-check with the toolchain's own reader.
  std::string cmd = std::string("readelf -n ") + self + " | awk '/Build ID/ {print $3}'";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  ASSERT_NE(fgets(buf, sizeof(buf), p), nullptr);
  ::pclose(p);
  std::string expected(buf);
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  EXPECT_EQ(*id, expected);
}

TEST(ElfTest, RejectsNonElfAndTruncated) {
  std::vector<uint8_t> junk(100, 'x');
  EXPECT_FALSE(ElfView::Parse(junk).ok());
  std::vector<uint8_t> tiny = {0x7f, 'E', 'L', 'F'};
  EXPECT_FALSE(ElfView::Parse(tiny).ok());
}

TEST(ElfTest, ProgramHeadersPastEndAreRejected) {
  std::vector<uint8_t> hdr(64, 0);
  std::memcpy(hdr.data(),
              "\x7f"
              "ELF",
              4);
  hdr[4] = 2;
  hdr[5] = 1;
  uint64_t phoff = 64;
  uint16_t phentsize = 56, phnum = 10;
  std::memcpy(&hdr[32], &phoff, 8);
  std::memcpy(&hdr[54], &phentsize, 2);
  std::memcpy(&hdr[56], &phnum, 2);
  auto v = ElfView::Parse(hdr);
  EXPECT_FALSE(v.ok());
}

TEST(ElfTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadGnuBuildId("/nonexistent/file").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace clrdiag::elf
