// Helpers shared by the conformance tests: run the reference dotnet-dump and compare its output
// with clrdiag's, line for line, after trimming trailing blanks and dropping the lines each test
// lists as intentionally different (with the reason).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/harness/harness.h"

namespace clrdiag::testing::conformance {

// A line allowed to differ, by prefix, and why.
struct IntentionalDifference {
  std::string prefix;
  std::string why;
};

inline std::string DotnetDump() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.dotnet/tools/dotnet-dump";
}

// The lines of `text` with trailing blanks trimmed, without those an entry of `skip` prefixes.
inline std::vector<std::string> Lines(const std::string& text,
                                      const std::vector<IntentionalDifference>& skip = {}) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    bool skipped = false;
    for (const auto& d : skip) {
      if (line.rfind(d.prefix, 0) == 0) skipped = true;
    }
    if (!skipped) out.push_back(line);
  }
  return out;
}

// `text`'s lines, trailing blanks trimmed, without the empty ones.
inline std::string WithoutEmptyLines(const std::string& text) {
  std::string out;
  for (const std::string& l : Lines(text)) {
    if (!l.empty()) out += l + "\n";
  }
  return out;
}

// Reports each differing line (up to 10) and a differing line count as test failures.
inline void ExpectSameOutput(const std::string& ours, const std::string& reference,
                             const std::vector<IntentionalDifference>& skip = {}) {
  std::vector<std::string> a = Lines(ours, skip), b = Lines(reference, skip);
  size_t n = std::max(a.size(), b.size());
  int shown = 0;
  for (size_t i = 0; i < n && shown < 10; ++i) {
    std::string x = i < a.size() ? a[i] : "<missing>";
    std::string y = i < b.size() ? b[i] : "<missing>";
    if (x != y) {
      ADD_FAILURE() << "line " << i + 1 << " differs:\n  clrdiag:     " << x
                    << "\n  dotnet-dump: " << y;
      ++shown;
    }
  }
  EXPECT_EQ(a.size(), b.size());
}

// Everything after the first line: both tools start with "Loading core dump: <what> ...", and
// clrdiag names the catalog id it was given.
inline std::string Body(const std::string& s) {
  size_t nl = s.find('\n');
  return nl == std::string::npos ? "" : s.substr(nl + 1);
}

// argv followed by "-c <command>" for each command, then "-c exit".
inline std::vector<std::string> WithCommands(std::vector<std::string> argv,
                                             const std::vector<std::string>& commands) {
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back("-c");
  argv.push_back("exit");
  return argv;
}

// A test's (runtime, dump type) parameter: the fixture's target framework (see
// FixtureRuntimes() in tests/harness/harness.h) and the collect --type.
using RuntimeAndDumpType = std::tuple<std::string, std::string>;

// Every runtime × {Heap, Full}.
inline auto AllRuntimesAndDumpTypes() {
  return ::testing::Combine(::testing::ValuesIn(FixtureRuntimes()),
                            ::testing::Values("Heap", "Full"));
}

// "net8_0_Heap": a test-name suffix (gtest allows only [A-Za-z0-9_]).
inline std::string ParamName(const ::testing::TestParamInfo<RuntimeAndDumpType>& info) {
  std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

}  // namespace clrdiag::testing::conformance
