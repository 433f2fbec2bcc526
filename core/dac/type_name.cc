#include "core/dac/type_name.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace clrdiag::dac {
namespace {

// Nesting depth cap: deeper names are returned unchanged rather than risking the stack.
constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  // Parses a whole name; nullopt if anything is left over or malformed.
  std::optional<std::string> ParseAll() {
    std::optional<std::string> r = ParseType(0);
    if (!r || pos_ != s_.size()) return std::nullopt;
    return r;
  }

 private:
  struct Segment {
    std::string name;
    int arity = 0;
  };

  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }

  // '[' followed by ']', ',' or '*' starts an array suffix; any other '[' a generic list.
  bool AtArraySuffix() const {
    return Peek() == '[' && (Peek(1) == ']' || Peek(1) == ',' || Peek(1) == '*');
  }

  std::optional<std::string> ParseArraySuffixes() {
    std::string out;
    while (AtArraySuffix()) {
      const size_t close = s_.find(']', pos_);
      if (close == std::string_view::npos) return std::nullopt;
      out.append(s_.substr(pos_, close - pos_ + 1));
      pos_ = close + 1;
    }
    return out;
  }

  std::optional<Segment> ParseSegment() {
    Segment seg;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '[' || c == ']' || c == ',' || c == '+') break;
      if (c == '`') {
        size_t p = pos_ + 1;
        int arity = 0;
        while (p < s_.size() && s_[p] >= '0' && s_[p] <= '9' && arity < 1000) {
          arity = arity * 10 + (s_[p] - '0');
          ++p;
        }
        if (p == pos_ + 1) return std::nullopt;
        seg.arity = arity;
        pos_ = p;
        continue;
      }
      seg.name.push_back(c);
      ++pos_;
    }
    if (seg.name.empty()) return std::nullopt;
    return seg;
  }

  // One generic argument: "[Type, Assembly]" or a bare "Type".
  std::optional<std::string> ParseArgument(int depth) {
    if (Peek() != '[') return ParseType(depth + 1);
    ++pos_;
    std::optional<std::string> t = ParseType(depth + 1);
    if (!t) return std::nullopt;
    if (Peek() == ',') {  // Assembly qualifier: skip to the matching ']'.
      int nest = 0;
      while (!AtEnd()) {
        const char c = Peek();
        if (c == '[') ++nest;
        if (c == ']') {
          if (nest == 0) break;
          --nest;
        }
        ++pos_;
      }
    }
    if (Peek() != ']') return std::nullopt;
    ++pos_;
    return t;
  }

  std::optional<std::string> ParseType(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    std::vector<Segment> segs;
    for (;;) {
      std::optional<Segment> seg = ParseSegment();
      if (!seg) return std::nullopt;
      segs.push_back(std::move(*seg));
      if (Peek() != '+') break;
      ++pos_;
    }
    std::vector<std::string> args;
    if (Peek() == '[' && !AtArraySuffix()) {
      ++pos_;
      for (;;) {
        std::optional<std::string> a = ParseArgument(depth);
        if (!a) return std::nullopt;
        args.push_back(std::move(*a));
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        if (Peek() != ']') return std::nullopt;
        ++pos_;
        break;
      }
    }
    std::optional<std::string> arrays = ParseArraySuffixes();
    if (!arrays) return std::nullopt;
    return Render(segs, args) + *arrays;
  }

  static std::string Render(const std::vector<Segment>& segs,
                            const std::vector<std::string>& args) {
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < segs.size(); ++i) {
      if (i > 0) out.push_back('+');
      out += segs[i].name;
      std::vector<std::string> mine;
      mine.reserve(segs[i].arity);
      for (int k = 0; k < segs[i].arity; ++k) {
        mine.push_back(next < args.size() ? args[next++] : absl::StrCat("T", k + 1));
      }
      if (i + 1 == segs.size()) {
        while (next < args.size()) mine.push_back(args[next++]);  // No (or too few) markers.
      }
      if (mine.empty()) continue;
      out.push_back('<');
      for (size_t k = 0; k < mine.size(); ++k) {
        if (k > 0) out += ", ";
        out += mine[k];
      }
      out.push_back('>');
    }
    return out;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::string PrettyTypeName(std::string_view dac_name) {
  std::optional<std::string> r = Parser(dac_name).ParseAll();
  return r ? *r : std::string(dac_name);
}

}  // namespace clrdiag::dac
