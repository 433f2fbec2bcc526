#include "core/dump/preflight.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::dump {
namespace {

// Named allowance for the ELF headers and notes createdump adds to the memory it writes.
constexpr uint64_t kDumpHeaderAllowance = 1 << 20;

std::string Human(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30)) {
    return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  }
  return absl::StrFormat("%.0f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

uint64_t EstimateDumpBytes(const std::vector<procfs::MapEntry>& maps, DumpKind kind) {
  if (kind != DumpKind::kFull && kind != DumpKind::kHeap) return 0;
  uint64_t total = 0;
  for (const auto& m : maps) {
    if (m.end <= m.start || m.perms.size() < 3) continue;
    bool r = m.perms[0] == 'r', w = m.perms[1] == 'w', x = m.perms[2] == 'x';
    if (kind == DumpKind::kFull ? (r || w || x) : (r && w)) total += m.end - m.start;
  }
  if (kind == DumpKind::kHeap) total += total / 50;
  return total + kDumpHeaderAllowance;
}

absl::Status CheckPreflight(const PreflightInput& in) {
  std::string what = absl::StrCat("a ", DumpKindName(in.kind), " dump of process ", in.pid);
  if (in.temp_free >= 0 && static_cast<uint64_t>(in.temp_free) < in.estimate) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "not enough space for ", what, ": it needs about ", Human(in.estimate),
        " (estimated from the process's memory) in the process's temp directory ", in.temp_dir,
        " while the runtime writes it, which has ", Human(static_cast<uint64_t>(in.temp_free)),
        " free; take a smaller dump (--type Mini) or give the process a TMPDIR with more space"));
  }
  uint64_t usable = in.store_free > in.reserve ? in.store_free - in.reserve : 0;
  if (usable < in.estimate) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "not enough space for ", what, ": it needs about ", Human(in.estimate),
        " (estimated from the process's memory), but the dump store ", in.store_root, " has ",
        Human(in.store_free), " free and keeps ", Human(in.reserve),
        " of it in reserve (store.free_space_reserve_mib); nothing was collected. Take a smaller "
        "dump (--type Mini), free space (clrdiag rm ID), or use another store (dump_dir in the "
        "config, or clrdiagd --dump-dir)"));
  }
  return absl::OkStatus();
}

}  // namespace clrdiag::dump
