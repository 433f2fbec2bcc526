// The Heap dump of HeapApp that dac_dump_test's cases read, and the reference's answers on it:
// collected once per ctest run by the setup test `dac_dump_shared` (ctest fixture
// "dac_dump_shared"; the program is dac_dump_shared_main.cc) into <build>/dac-dump-shared/, and
// removed by `dac_dump_shared_cleanup` at the end of the run. Each case of dac_dump_test is a
// process of its own: without the shared copy each one started HeapApp and ran dotnet-dump
// collect and analyze again (in the Release and in the ASan run). Run alone (no shared copy:
// the binary run by hand), the suite collects its own, once per process, the same way.
#pragma once

#include <string>

namespace clrdiag::testing {

inline constexpr int kDacDumpCustomers = 10000;

// dotnet-dump: $DOTNET_DUMP, else the global tool under $HOME, else "".
std::string DacDumpReferenceTool();

// What a collection left in `dir`: the dump and the reference's output.
struct DacDumpFiles {
  std::string dump;       // <dir>/heap.core
  std::string reference;  // dotnet-dump analyze: dumpheap -stat, clrthreads, clrmodules
};
DacDumpFiles DacDumpFilesIn(const std::string& dir);

// Starts HeapApp kDacDumpCustomers, has dotnet-dump collect a Heap dump of it into `dir` and
// runs dotnet-dump analyze on it; the reference's output is written last. Returns "" or what
// went wrong.
std::string CollectDacDump(const std::string& dir);

// The shared copy's directory (<build>/dac-dump-shared).
std::string SharedDacDumpDir();

}  // namespace clrdiag::testing
