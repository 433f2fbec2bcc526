// The setup test of the shared conformance dumps (shared_dumps.h):
//   conformance_shared_dumps ROOT CONFIG   collects CONFIG's dumps under ROOT/CONFIG/
//   conformance_shared_dumps ROOT --clean  removes ROOT (the run's cleanup test)
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "tests/conformance/shared_dumps.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ROOT CONFIG|--clean\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1], what = argv[2];
  if (what == "--clean") {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    if (ec) std::fprintf(stderr, "cannot remove %s: %s\n", root.c_str(), ec.message().c_str());
    return ec ? 1 : 0;
  }
  std::string error = clrdiag::testing::conformance::CollectSharedDumps(root, what);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("collected %s under %s\n", what.c_str(), root.c_str());
  return 0;
}
