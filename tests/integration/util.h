// Helpers shared by the integration tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/elf/elf_file.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"

namespace clrdiag::testing {

struct CoreFacts {
  bool ok = false;
  std::string error;
  uint16_t type = 0;
  int prstatus = 0;
  bool has_nt_file = false;
};

inline CoreFacts InspectCore(const std::string& path) {
  CoreFacts f;
  auto file = elf::MappedFile::Open(path);
  if (!file.ok()) {
    f.error = std::string(file.status().message());
    return f;
  }
  auto view = elf::ElfView::Parse(file->bytes());
  if (!view.ok()) {
    f.error = std::string(view.status().message());
    return f;
  }
  f.type = view->type();
  auto st = view->ForEachNote([&](const elf::Note& n) {
    if (n.name == "CORE" && n.type == elf::kNtPrstatus) ++f.prstatus;
    if (n.name == "CORE" && n.type == elf::kNtFile) f.has_nt_file = true;
    return true;
  });
  f.ok = st.ok();
  if (!st.ok()) f.error = std::string(st.message());
  return f;
}

inline nlohmann::json ParseJson(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

inline mode_t ModeOf(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Extracts "Dump id:  <id>" from collect's output.
inline std::string DumpIdFrom(const std::string& out) {
  auto pos = out.find("Dump id:");
  if (pos == std::string::npos) return "";
  pos = out.find_first_not_of(' ', pos + 8);
  return out.substr(pos, out.find('\n', pos) - pos);
}

// The daemon's events (`clrdiag events --json`: one JSON document a line), oldest first. Every
// line must parse.
inline std::vector<nlohmann::json> Events(const Daemon& d) {
  RunResult r = d.Client({"events", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = ParseJson(line);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

// The events of `kind`, and of `rule` unless it is empty.
inline std::vector<nlohmann::json> EventsOf(const Daemon& d, const std::string& kind,
                                            const std::string& rule = "") {
  std::vector<nlohmann::json> out;
  for (auto& e : Events(d)) {
    if (e["kind"] == kind && (rule.empty() || e["rule"] == rule)) out.push_back(e);
  }
  return out;
}

// Polls (every `poll`) until an event of `kind` (and `rule`) exists; returns the first, or null
// on timeout.
inline nlohmann::json WaitEvent(const Daemon& d, const std::string& kind, const std::string& rule,
                                std::chrono::milliseconds timeout,
                                std::chrono::milliseconds poll = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto evs = EventsOf(d, kind, rule);
    if (!evs.empty()) return evs.front();
    std::this_thread::sleep_for(poll);
  }
  return nullptr;
}

// The entry of `clrdiag rules --json` named `name`, or null.
inline nlohmann::json RuleNamed(const Daemon& d, const std::string& name) {
  RunResult r = d.Client({"rules", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto arr = ParseJson(r.out);
  EXPECT_TRUE(arr.is_array()) << r.out;
  if (!arr.is_array()) return nullptr;
  for (auto& j : arr) {
    if (j["name"] == name) return j;
  }
  return nullptr;
}

// The daemon's UTC timestamps ("2026-11-27T03:15:02.123Z").
inline std::chrono::system_clock::time_point ParseTime(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
              &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(::timegm(&tm)) + std::chrono::milliseconds(ms);
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

}  // namespace clrdiag::testing
