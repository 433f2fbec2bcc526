#include "core/base/utf8.h"

#include <cstdint>
#include <cstring>

namespace clrdiag {
namespace {

// The length of the well-formed sequence at s[i], or 0 when the bytes there are not one
// (Unicode's table of well-formed byte sequences: no overlongs, no surrogates, <= U+10FFFF).
size_t SequenceAt(absl::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const size_t left = s.size() - i;
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, uint8_t lo = 0x80, uint8_t hi = 0xBF) {
    return k < left && b(k) >= lo && b(k) <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

size_t LeadLength(uint8_t c) {
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

}  // namespace

size_t Utf8CompletePrefix(absl::string_view s) {
  // A partial character is at most 3 bytes: look back for its lead byte.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
    const size_t need = LeadLength(c);
    return need > back ? n - back : n;
  }
  return n;
}

size_t Utf8Sanitize(std::string* s) {
  const absl::string_view in(*s);
  size_t i = 0;
  // Fastest path: ASCII, 8 bytes at a time (no byte with its top bit set).
  while (i + 8 <= in.size()) {
    uint64_t word;
    std::memcpy(&word, in.data() + i, sizeof(word));
    if ((word & 0x8080808080808080ull) != 0) break;
    i += 8;
  }
  // Fast path: most output is ASCII or valid.
  while (i < in.size()) {
    const size_t len = SequenceAt(in, i);
    if (len == 0) break;
    i += len;
  }
  if (i == in.size()) return 0;
  std::string out(in.substr(0, i));
  size_t replaced = 0;
  while (i < in.size()) {
    const size_t len = SequenceAt(in, i);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++replaced;
      ++i;
    } else {
      out.append(in.data() + i, len);
      i += len;
    }
  }
  *s = std::move(out);
  return replaced;
}

}  // namespace clrdiag
