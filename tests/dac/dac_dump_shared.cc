#include "tests/dac/dac_dump_shared.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "tests/harness/harness.h"

namespace clrdiag::testing {

std::string DacDumpReferenceTool() {
  if (const char* p = std::getenv("DOTNET_DUMP"); p != nullptr && FileExists(p)) return p;
  if (const char* home = std::getenv("HOME"); home != nullptr) {
    std::string p = std::string(home) + "/.dotnet/tools/dotnet-dump";
    if (FileExists(p)) return p;
  }
  return "";
}

DacDumpFiles DacDumpFilesIn(const std::string& dir) {
  return {dir + "/heap.core", dir + "/reference.txt"};
}

std::string CollectDacDump(const std::string& dir) {
  const std::string tool = DacDumpReferenceTool();
  if (tool.empty()) {
    return "the reference dotnet-dump is not installed: run WITH_REFERENCE=1 "
           "scripts/install-deps.sh";
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "cannot create " + dir + ": " + ec.message();
  const DacDumpFiles files = DacDumpFilesIn(dir);
  std::filesystem::remove(files.reference, ec);
  auto app = StartFixture("HeapApp", {std::to_string(kDacDumpCustomers)});
  if (!app) return "HeapApp did not start";
  RunResult c = RunCommand(
      {tool, "collect", "-p", std::to_string(app->pid()), "--type", "Heap", "-o", files.dump}, {},
      std::chrono::seconds(120));
  app.reset();  // Kills and reaps the fixture (by pid).
  if (c.exit_code != 0 || !FileExists(files.dump)) {
    return "dotnet-dump collect failed: " + c.out + c.err;
  }
  RunResult a = RunCommand({tool, "analyze", files.dump, "-c", "dumpheap -stat", "-c", "clrthreads",
                            "-c", "clrmodules", "-c", "exit"},
                           {}, std::chrono::seconds(180));
  if (a.exit_code != 0) return "dotnet-dump analyze failed: " + a.out + a.err;
  const std::string tmp = files.reference + ".tmp";
  std::ofstream(tmp) << a.out;
  std::filesystem::rename(tmp, files.reference, ec);
  if (ec) return "cannot write " + files.reference + ": " + ec.message();
  return "";
}

std::string SharedDacDumpDir() { return CLRDIAG_DAC_DUMP_SHARED_DIR; }

}  // namespace clrdiag::testing
