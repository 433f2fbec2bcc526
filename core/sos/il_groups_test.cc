// clru -il's IL groups on hand-made IL lines and IL-to-native maps: SOS's rules for which map
// entry starts a group, what joins it, when it prints, and the block indentation it prints with.
#include "core/sos/il_groups.h"

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"

namespace clrdiag::sos::il {
namespace {

using Lines = std::vector<std::string>;
using Map = std::vector<dac::IlAddressMapEntry>;

constexpr uint32_t kProlog = 0xfffffffe;
constexpr uint32_t kEpilog = 0xfffffffd;
constexpr uint32_t kNoMapping = 0xffffffff;

Line Ins(uint32_t offset) { return {0, absl::StrFormat("IL_%04x: nop ", offset), true, offset}; }
Line Mark(const char* text) { return {0, text, false, 0}; }

TEST(IlGroupsTest, UnmappedInstructionsJoinThePreviousGroup) {
  // The DAC's shape: prolog, IL ranges, epilog, the last entry ending at the code's start.
  IlGroups g({Ins(0), Ins(1), Ins(2), Ins(3)}, Map{{kProlog, 100, 110},
                                                   {0, 110, 120},
                                                   {2, 120, 130},
                                                   {kNoMapping, 130, 135},
                                                   {kEpilog, 135, 100}});
  g.StartRegion();
  EXPECT_EQ(g.At(100), Lines{});  // the prolog's entry is never used
  EXPECT_EQ(g.At(110), (Lines{"IL_0000: nop ", "IL_0001: nop "}));
  EXPECT_EQ(g.At(115), Lines{});  // printed once
  EXPECT_EQ(g.At(125), (Lines{"IL_0002: nop ", "IL_0003: nop "}));
  EXPECT_EQ(g.At(120), Lines{});
  EXPECT_EQ(g.At(132), Lines{});
  EXPECT_EQ(g.At(135), Lines{});
}

TEST(IlGroupsTest, InstructionsBeforeTheFirstMappedOneAreNeverInterleaved) {
  IlGroups g({Ins(0), Ins(1), Ins(2)}, Map{{2, 10, 20}, {kEpilog, 20, 0}});
  for (uint64_t ip = 0; ip < 10; ++ip) EXPECT_EQ(g.At(ip), Lines{});
  EXPECT_EQ(g.At(10), Lines{"IL_0002: nop "});
}

TEST(IlGroupsTest, OnlyTheFirstNonEmptyRangeOfAnOffsetIsUsed) {
  // Empty and inverted ranges are passed over; a later range of the same offset is not used.
  IlGroups g({Ins(0), Ins(5)},
             Map{{0, 50, 50}, {0, 80, 10}, {0, 60, 70}, {0, 30, 40}, {5, 70, 75}});
  EXPECT_EQ(g.At(50), Lines{});
  EXPECT_EQ(g.At(30), Lines{});
  EXPECT_EQ(g.At(65), Lines{"IL_0000: nop "});
  EXPECT_EQ(g.At(70), Lines{"IL_0005: nop "});
}

TEST(IlGroupsTest, OneGroupPerInstructionFirstInIlOrder) {
  IlGroups g({Ins(0), Ins(1)}, Map{{1, 10, 30}, {0, 10, 20}});
  EXPECT_EQ(g.At(15), Lines{"IL_0000: nop "});
  EXPECT_EQ(g.At(16), Lines{"IL_0001: nop "});
}

TEST(IlGroupsTest, AWideRangeStartingEarlierIsFoundBehindNarrowerOnes) {
  // IL_0000's range starts first and reaches past the later groups: an address inside those
  // is still its (first in IL order), even though three groups start closer to it.
  IlGroups g({Ins(0), Ins(1), Ins(2), Ins(3)},
             Map{{0, 10, 100}, {1, 20, 30}, {2, 30, 40}, {3, 40, 50}});
  EXPECT_EQ(g.At(45), Lines{"IL_0000: nop "});
  EXPECT_EQ(g.At(45), Lines{"IL_0003: nop "});
  EXPECT_EQ(g.At(25), Lines{"IL_0001: nop "});
  EXPECT_EQ(g.At(99), Lines{});
  EXPECT_EQ(g.At(35), Lines{"IL_0002: nop "});
}

TEST(IlGroupsTest, AMethodOfHundredsOfThousandsOfInstructionsIsGroupedInOnePass) {
  // Each instruction its own native range, as a large generated method has: every address
  // finds its group (the grouping once scanned the whole map for each instruction and every
  // group for each address: minutes for this size).
  std::vector<Line> lines;
  Map map;
  constexpr uint32_t kCount = 200000;
  for (uint32_t i = 0; i < kCount; ++i) {
    lines.push_back(Ins(i));
    map.push_back({i, 1000 + 4ull * i, 1004 + 4ull * i});
  }
  IlGroups g(lines, map);
  size_t found = 0;
  for (uint32_t i = 0; i < kCount; ++i) found += g.At(1000 + 4ull * i + 2).size();
  EXPECT_EQ(found, kCount);
}

TEST(IlGroupsTest, BlocksIndentByTheRegionsOwnCount) {
  // .try { IL_0000 IL_0001 } .finally { IL_0002 } IL_0003, the handler's code first.
  std::vector<Line> lines = {Mark(".try"),
                             Mark("{"),
                             Ins(0),
                             Ins(1),
                             Mark("} // end .try"),
                             Mark(".finally"),
                             Mark("{"),
                             Ins(2),
                             Mark("} // end .finally"),
                             Ins(3)};
  IlGroups g(lines, Map{{0, 10, 20}, {2, 20, 30}, {3, 30, 40}});
  g.StartRegion();
  // The closing marker before its opening one: the count goes below zero, and SOS's %*s of
  // its unsigned count prints |count| spaces.
  EXPECT_EQ(g.At(20), (Lines{"  } // end .try", "  .finally", "  {", "IL_0002: nop "}));
  EXPECT_EQ(g.At(10), (Lines{".try", "{", "  IL_0000: nop ", "  IL_0001: nop "}));
  EXPECT_EQ(g.At(30), (Lines{"} // end .finally", "IL_0003: nop "}));
}

TEST(IlGroupsTest, GroupsAreSharedByTheHotAndColdRegions) {
  std::vector<Line> lines = {Mark(".try"), Mark("{"), Ins(0), Mark("} // end .try"), Ins(1)};
  IlGroups g(lines, Map{{0, 10, 20}, {1, 500, 510}});
  g.StartRegion();
  EXPECT_EQ(g.At(10), (Lines{".try", "{", "  IL_0000: nop "}));
  g.StartRegion();  // the cold region counts from 0 again
  EXPECT_EQ(g.At(10), Lines{});
  EXPECT_EQ(g.At(500), (Lines{"  } // end .try", "  IL_0001: nop "}));
}

}  // namespace
}  // namespace clrdiag::sos::il
