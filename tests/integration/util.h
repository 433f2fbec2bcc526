// Helpers shared by the integration tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

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

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

}  // namespace clrdiag::testing
