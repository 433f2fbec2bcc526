#include "core/base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace clrdiag {
namespace {

TEST(Utf8Test, ValidTextIsLeftAlone) {
  std::string s = "plain ascii, caf\xC3\xA9, \xE2\x88\x9E, \xF0\x9F\x98\x80";
  const std::string before = s;
  EXPECT_EQ(Utf8Sanitize(&s), 0u);
  EXPECT_EQ(s, before);
}

TEST(Utf8Test, BadBytesBecomeReplacementCharacters) {
  std::string s =
      "a\xFF"
      "b\x80"
      "c";
  EXPECT_EQ(Utf8Sanitize(&s), 2u);
  EXPECT_EQ(s,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c");
  std::string surrogate = "x\xED\xA0\x80y";  // U+D800 as CESU-8: not UTF-8
  EXPECT_EQ(Utf8Sanitize(&surrogate), 3u);
  EXPECT_EQ(surrogate, "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy");
  std::string overlong = "\xC0\xAF";
  EXPECT_EQ(Utf8Sanitize(&overlong), 2u);
  std::string too_big = "\xF4\x90\x80\x80";  // above U+10FFFF
  EXPECT_EQ(Utf8Sanitize(&too_big), 4u);
  std::string cut = "end\xE2\x88";  // a character cut at the end of the text
  EXPECT_EQ(Utf8Sanitize(&cut), 2u);
  EXPECT_EQ(cut, "end\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8Test, CompletePrefixHoldsBackAPartialCharacter) {
  EXPECT_EQ(Utf8CompletePrefix("abc"), 3u);
  EXPECT_EQ(Utf8CompletePrefix(""), 0u);
  EXPECT_EQ(Utf8CompletePrefix("ab\xC3"), 2u);          // 2-byte lead alone
  EXPECT_EQ(Utf8CompletePrefix("ab\xC3\xA9"), 4u);      // complete
  EXPECT_EQ(Utf8CompletePrefix("ab\xE2\x88"), 2u);      // 3-byte char, 2 bytes present
  EXPECT_EQ(Utf8CompletePrefix("ab\xF0\x9F\x98"), 2u);  // 4-byte char, 3 bytes present
  EXPECT_EQ(Utf8CompletePrefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(Utf8CompletePrefix("ab\x80\x80\x80\x80"), 6u);  // garbage is not held back
  // Split anywhere, the two halves sanitize to the whole's text.
  const std::string whole = "\xE2\x88\x9E and \xF0\x9F\x98\x80";
  for (size_t cut = 0; cut <= whole.size(); ++cut) {
    std::string head = whole.substr(0, cut);
    const size_t keep = Utf8CompletePrefix(head);
    std::string first = head.substr(0, keep);
    std::string second = whole.substr(keep);
    EXPECT_EQ(Utf8Sanitize(&first), 0u) << cut;
    EXPECT_EQ(Utf8Sanitize(&second), 0u) << cut;
    EXPECT_EQ(first + second, whole) << cut;
  }
}

}  // namespace
}  // namespace clrdiag
