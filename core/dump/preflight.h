// Preflight for Full and Heap dumps: estimate the dump's size from the target's memory map and
// refuse before asking the runtime when the store cannot hold it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/dump/dump_store.h"
#include "core/procfs/procfs.h"

namespace clrdiag::dump {

// The size createdump will write for a dump of `kind`, from /proc/<pid>/maps:
//  - Full: every mapping with any access (r, w or x); createdump writes each whole, touched or
//    not, so this is the virtual size minus PROT_NONE reservations (the GC's reserve);
//  - Heap: every readable and writable mapping (GC heap, native heaps, stacks, module data),
//    plus 2% for the module pages the runtime adds;
//  - Mini, Triage: 0 (small; not estimated).
// Measured against real dumps of the HeapApp fixture (tests/integration/store_test.cc checks
// it): Full 216,309,760 bytes for an estimate of 216,305,664 + headers (ratio 1.0000); Heap
// 171,393,024 bytes for 169,418,752 readable+writable (ratio 1.012) and 144,588,800 for
// 142,647,296 (1.014).
uint64_t EstimateDumpBytes(const std::vector<procfs::MapEntry>& maps, DumpKind kind);

// The preflight decision, given the estimate. `store_free` is the store's free space (statvfs,
// for an unprivileged writer), `reserve` the space always left free (store.free_space_reserve_mib).
// `temp_free` is the free space of the target's temp directory where the runtime writes the
// dump first, or -1 when that is the store's own filesystem. ResourceExhausted, suggesting a
// Mini dump or another store, if it does not fit.
struct PreflightInput {
  pid_t pid = 0;
  DumpKind kind = DumpKind::kFull;
  uint64_t estimate = 0;
  std::string store_root;
  uint64_t store_free = 0;
  uint64_t reserve = 0;
  int64_t temp_free = -1;
  std::string temp_dir;  // as the target sees it, for the message
};
absl::Status CheckPreflight(const PreflightInput& in);

}  // namespace clrdiag::dump
