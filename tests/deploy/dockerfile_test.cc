// deploy/docker/Dockerfile against the binaries of this build: built only when this build
// links like the image's (Release, static gRPC/protobuf/abseil/OpenSSL, no sanitizers; see
// tests/CMakeLists.txt), since other builds need other shared libraries.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

// The Dockerfile cannot be built here (no container engine); what can go stale without a
// build is its runtime stage's package list. Each shared library the three binaries name
// (DT_NEEDED) must come from a package that stage installs, or from the base image's libc6 and
// libgcc-s1. Packages are looked up on this machine, which is Debian 12 like the image.
TEST(DockerfileTest, RuntimeStageInstallsEveryLibraryTheBinariesNeed) {
  std::ifstream in(SourceDir() + "/deploy/docker/Dockerfile");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t runtime = text.rfind("\nFROM ");
  ASSERT_NE(runtime, std::string::npos);
  std::string stage = text.substr(runtime);
  EXPECT_CONTAINS(stage, "debian:12");
  std::set<std::string> installed = {"libc6", "libgcc-s1"};
  std::regex pkg("\\b(lib[a-z0-9][a-z0-9.+-]*)\\b");
  size_t apt = stage.find("apt-get install");
  ASSERT_NE(apt, std::string::npos);
  std::string line = stage.substr(apt, stage.find("&&", apt) - apt);
  for (std::sregex_iterator it(line.begin(), line.end(), pkg), end; it != end; ++it) {
    installed.insert((*it)[1]);
  }
  std::map<std::string, std::set<std::string>> needed_by;  // library -> binaries
  for (const char* bin : {"clrdiagd", "clrdiag-worker", "clrdiag"}) {
    EXPECT_CONTAINS(stage, std::string("/build/bin/") + bin);
    RunResult elf = RunCommand({"/usr/bin/readelf", "-d", BinDir() + "/" + bin});
    ASSERT_EQ(elf.exit_code, 0) << elf.err;
    std::regex needed("\\(NEEDED\\)\\s+Shared library: \\[([^\\]]+)\\]");
    for (std::sregex_iterator it(elf.out.begin(), elf.out.end(), needed), end; it != end; ++it) {
      std::string lib = (*it)[1];
      if (lib.rfind("ld-linux", 0) != 0) needed_by[lib].insert(bin);
    }
  }
  ASSERT_FALSE(needed_by.empty());
  // One dpkg call for all; with merged /usr a library is known under one of the two names.
  std::vector<std::string> argv = {"/usr/bin/dpkg", "-S"};
  for (const auto& [lib, bins] : needed_by) {
    argv.push_back("/usr/lib/x86_64-linux-gnu/" + lib);
    argv.push_back("/lib/x86_64-linux-gnu/" + lib);
  }
  RunResult owners = RunCommand(argv);
  std::map<std::string, std::string> package_of;  // library -> package
  std::istringstream lines(owners.out);
  for (std::string l; std::getline(lines, l);) {
    size_t sep = l.find(": /");
    if (sep == std::string::npos) continue;
    std::string package = l.substr(0, l.find(':'));
    package_of[l.substr(l.rfind('/') + 1)] = package;
  }
  for (const auto& [lib, bins] : needed_by) {
    SCOPED_TRACE(lib);
    ASSERT_TRUE(package_of.count(lib)) << "no package owns " << lib << "\n"
                                       << owners.out << owners.err;
    EXPECT_TRUE(installed.count(package_of[lib]))
        << *bins.begin() << " needs " << lib << " from package " << package_of[lib]
        << ", which the Dockerfile's runtime stage does not install";
  }
}

}  // namespace
}  // namespace clrdiag::testing
