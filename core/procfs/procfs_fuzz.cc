// libFuzzer target for the procfs parsers. Their input is partly chosen by other processes
// (comm in status and stat, paths in maps, environ), so every input must parse or fail cleanly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/procfs/procfs.h"
#include "core/procfs/procfs_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clrdiag::procfs;
  const std::string text(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<ProcStatus> status = ParseStatus(text); status.ok()) {
    (void)status->InnermostPid(1);
  }
  (void)ParseStartTime(text);
  if (absl::StatusOr<std::vector<MapEntry>> maps = ParseMaps(text); maps.ok()) {
    for (const MapEntry& m : *maps) {
      if (m.end < m.start || m.perms.size() != 4) __builtin_trap();
    }
  }
  (void)SplitNul(text);
  (void)FindEnvVar(text, "TMPDIR");
  return 0;
}
