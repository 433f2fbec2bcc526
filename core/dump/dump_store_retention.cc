// DumpStore::EnforceRetention: oldest first, never a pinned dump or the one just collected.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/base/fs.h"
#include "core/dump/dump_store.h"

namespace clrdiag::dump {
namespace {

// "9d 4h", "5h 12m", "42s": ages as people read them in a log.
std::string HumanDuration(absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d);
  if (s >= 86400) return absl::StrCat(s / 86400, "d ", (s % 86400) / 3600, "h");
  if (s >= 3600) return absl::StrCat(s / 3600, "h ", (s % 3600) / 60, "m");
  if (s >= 60) return absl::StrCat(s / 60, "m ", s % 60, "s");
  return absl::StrCat(s, "s");
}

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// The time a dump's age is measured from: when it was finished (else started).
absl::Time Stamp(const DumpMeta& m) {
  return m.finished > absl::UnixEpoch() ? m.finished : m.started;
}

}  // namespace

std::vector<RetentionRemoval> DumpStore::EnforceRetention(const std::string& keep) {
  const RetentionPolicy& p = options_.retention;
  std::vector<RetentionRemoval> removed;
  if (!p.enabled()) return removed;
  std::vector<std::string> held;  // over a limit but pinned
  uint64_t count = 0, total = 0;
  {
    std::lock_guard<std::mutex> lock(pins_mu_);
    std::vector<DumpMeta> all = List();
    std::sort(all.begin(), all.end(), [](const DumpMeta& a, const DumpMeta& b) {
      if (Stamp(a) != Stamp(b)) return Stamp(a) < Stamp(b);
      return a.id < b.id;
    });
    count = all.size();
    // A dump's bytes include its heap graph file (GraphPath), which goes with it.
    std::vector<uint64_t> bytes;
    bytes.reserve(all.size());
    for (const auto& m : all) {
      bytes.push_back(StoredBytes(m));
      total += bytes.back();
    }
    const absl::Time now = options_.now();
    std::vector<bool> gone(all.size(), false);
    auto try_remove = [&](size_t i, std::string reason) {
      const DumpMeta& m = all[i];
      if (m.id == keep) return;
      if (pins_.count(m.id)) {
        if (std::find(held.begin(), held.end(), m.id) == held.end()) held.push_back(m.id);
        return;
      }
      if (!HideLocked(m.id).ok()) return;
      gone[i] = true;
      --count;
      total -= bytes[i];
      removed.push_back({m.id, bytes[i], std::move(reason)});
    };
    if (p.max_age > absl::ZeroDuration()) {
      for (size_t i = 0; i < all.size(); ++i) {
        absl::Duration age = now - Stamp(all[i]);
        if (age > p.max_age) {
          try_remove(i, absl::StrCat("older than retention.max_age ", HumanDuration(p.max_age),
                                     " (finished ", HumanDuration(age), " ago)"));
        }
      }
    }
    for (size_t i = 0; i < all.size(); ++i) {
      bool over_count = p.max_count > 0 && count > p.max_count;
      bool over_size = p.max_total_bytes > 0 && total > p.max_total_bytes;
      if (!over_count && !over_size) break;
      if (gone[i]) continue;
      try_remove(i, over_count ? absl::StrCat("the store held ", count,
                                              " dumps, more than retention.max_count ", p.max_count)
                               : absl::StrCat("the store held ", Mib(total),
                                              " of dumps, more than retention.max_total_mib (",
                                              Mib(p.max_total_bytes), ")"));
    }
    retention_held_back_ = !held.empty();
  }
  for (const auto& r : removed) {
    if (options_.on_removing) options_.on_removing(r.id);
    absl::Status st = RemoveTree(StagingDir(r.id));
    Log(StoreLogLevel::kInfo,
        absl::StrCat("retention: removed dump ", r.id, " (", r.bytes, " bytes): ", r.reason,
                     st.ok() ? "" : absl::StrCat(" [cleanup: ", st.message(), "]")));
  }
  if (!held.empty()) {
    Log(StoreLogLevel::kWarning,
        absl::StrCat("retention: kept ", absl::StrJoin(held, ", "),
                     " over the limits because in use (download or analysis session); they go "
                     "when released"));
  }
  bool still_over = (p.max_count > 0 && count > p.max_count) ||
                    (p.max_total_bytes > 0 && total > p.max_total_bytes);
  if (still_over && held.empty()) {
    Log(StoreLogLevel::kWarning,
        absl::StrCat("retention: the store is over its limits (", count, " dumps, ", Mib(total),
                     ") because of the dump just collected, ", keep,
                     ", which is kept; it goes with the next enforcement"));
  }
  return removed;
}

}  // namespace clrdiag::dump
