// The setup test of dac_dump_test's shared dump (dac_dump_shared.h):
//   dac_dump_shared DIR          collects the dump and the reference's answers into DIR
//   dac_dump_shared DIR --clean  removes DIR (the run's cleanup test)
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "tests/dac/dac_dump_shared.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && std::strcmp(argv[2], "--clean") != 0)) {
    std::fprintf(stderr, "usage: %s DIR [--clean]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  if (argc == 3) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) std::fprintf(stderr, "cannot remove %s: %s\n", dir.c_str(), ec.message().c_str());
    return ec ? 1 : 0;
  }
  std::string error = clrdiag::testing::CollectDacDump(dir);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("collected the DAC tests' dump under %s\n", dir.c_str());
  return 0;
}
