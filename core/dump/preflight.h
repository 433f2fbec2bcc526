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
// Measured against real dumps of the HeapApp fixture (StoreTest.EstimateMatchesRealDumps
// checks 0.98 < real/estimate < 1.01 for Full, 0.90 < ... < 1.01 for Heap): the mapped size
// alone matched Full to 4 KiB (216,309,760 bytes for 216,305,664) and fell 1.2-1.4% short of
// Heap (171,393,024 for 169,418,752 readable+writable); with the allowances below, real/estimate
// is 0.996 for Full (215,404,544 / 216,309,760) and 0.986 for Heap (170,471,424 / 172,915,671).
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
