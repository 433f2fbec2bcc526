// The portable PDB reader against the real HeapApp.pdb the fixture build writes next to
// HeapApp.dll: the ids match, sequence points land on the source lines they should, and
// damaged copies of the file are refused or answered without crashing.
#include "core/dac/portable_pdb.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "core/dac/pe_image.h"
#include "tests/harness/harness.h"

namespace clrdiag::dac {
namespace {

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

class PortablePdbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pdb_bytes_ = ReadFile(testing::FixturesDir() + "/HeapApp/HeapApp.pdb");
    dll_bytes_ = ReadFile(testing::FixturesDir() + "/HeapApp/HeapApp.dll");
    ASSERT_FALSE(pdb_bytes_.empty()) << "fixtures not built";
    ASSERT_FALSE(dll_bytes_.empty());
  }
  std::vector<uint8_t> pdb_bytes_, dll_bytes_;
};

TEST_F(PortablePdbTest, IdMatchesTheAssemblysCodeViewRecord) {
  auto pdb = PortablePdb::Parse(pdb_bytes_);
  ASSERT_TRUE(pdb.ok()) << pdb.status();
  auto pe = PeImage::Parse(dll_bytes_);
  ASSERT_TRUE(pe.ok()) << pe.status();
  auto cv = pe->FindCodeView();
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_TRUE(cv->portable);
  EXPECT_TRUE(absl::EndsWith(cv->path, "HeapApp.pdb")) << cv->path;
  EXPECT_EQ(pdb->id(), cv->pdb_id);
}

// IL offset 0 of every method with source is a line of code in Program.cs; no line lies past
// the file's end, whatever the offset.
TEST_F(PortablePdbTest, SequencePointsLandOnTheSource) {
  auto pdb = PortablePdb::Parse(pdb_bytes_);
  ASSERT_TRUE(pdb.ok()) << pdb.status();
  ASSERT_GT(pdb->method_count(), 10u);
  int with_lines = 0, at_code = 0;
  std::map<std::string, std::vector<std::string>> sources;  // HeapApp's .cs files, by path
  for (uint32_t row = 1; row <= pdb->method_count(); ++row) {
    auto line = pdb->LineForIlOffset(0x06000000 | row, 0);
    if (!line) continue;
    ++with_lines;
    EXPECT_TRUE(absl::StrContains(line->file, "/tests/fixtures/HeapApp/") &&
                absl::EndsWith(line->file, ".cs"))
        << line->file;
    std::vector<std::string>& source = sources[line->file];
    if (source.empty()) source = ReadLines(line->file);
    ASSERT_GE(line->line, 1u);
    ASSERT_LE(line->line, source.size());
    // Release builds put no sequence point on braces: offset 0 is the first statement. An empty
    // method is the exception: its one sequence point (the `ret`) is its closing brace.
    absl::string_view text = absl::StripAsciiWhitespace(source[line->line - 1]);
    auto next = pdb->LineForIlOffset(0x06000000 | row, 1);
    const bool empty_method = text == "}" && line->line >= 2 && next && next->line == line->line &&
                              absl::StripAsciiWhitespace(source[line->line - 2]) == "{";
    if (empty_method ||
        (!text.empty() && text != "{" && text != "}" && !absl::StartsWith(text, "//")))
      ++at_code;
    else
      ADD_FAILURE() << "method row " << row << " starts at line " << line->line << ": " << text;
    // Later offsets never go before the method's first line... and stay in the file.
    for (uint32_t il : {1u, 7u, 40u, 1000u, 0xFFFFFFu}) {
      auto later = pdb->LineForIlOffset(0x06000000 | row, il);
      ASSERT_TRUE(later.has_value());
      EXPECT_LE(later->line, source.size());
    }
  }
  EXPECT_GT(with_lines, 10);
  EXPECT_EQ(at_code, with_lines);
  // Tokens of other tables or past the table have no line.
  EXPECT_FALSE(pdb->LineForIlOffset(0x02000001, 0).has_value());
  EXPECT_FALSE(pdb->LineForIlOffset(0x06000000 | (pdb->method_count() + 1), 0).has_value());
  EXPECT_FALSE(pdb->LineForIlOffset(0x06000000, 0).has_value());
}

TEST_F(PortablePdbTest, OtherFilesAreRefused) {
  EXPECT_FALSE(PortablePdb::Parse(dll_bytes_).ok());
  EXPECT_FALSE(PortablePdb::Parse({}).ok());
  EXPECT_FALSE(PortablePdb::Parse({'B', 'S', 'J', 'B'}).ok());
}

// Truncated and bit-flipped copies: an error or an answer, never a crash (ASan builds check the
// bounds). A line, when one comes back, is still a plausible one.
TEST_F(PortablePdbTest, DamagedCopiesNeverCrash) {
  for (size_t len = 0; len < pdb_bytes_.size(); len += 1 + len / 16) {
    auto pdb = PortablePdb::Parse({pdb_bytes_.begin(), pdb_bytes_.begin() + len});
    if (!pdb.ok()) continue;
    for (uint32_t row = 1; row <= 64; ++row) (void)pdb->LineForIlOffset(0x06000000 | row, 5);
  }
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; ++round) {
    std::vector<uint8_t> copy = pdb_bytes_;
    for (int flips = 0; flips < 8; ++flips) {
      copy[rng() % copy.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    auto pdb = PortablePdb::Parse(std::move(copy));
    if (!pdb.ok()) continue;
    for (uint32_t row = 1; row <= pdb->method_count() && row < 200; ++row) {
      auto line = pdb->LineForIlOffset(0x06000000 | row, rng() % 64);
      if (line) {
        EXPECT_LE(line->line, 0xFFFFFFu);
      }
    }
  }
}

}  // namespace
}  // namespace clrdiag::dac
