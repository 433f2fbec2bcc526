#include "core/dac/heap_walk.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/type_name.h"

namespace clrdiag::dac {
namespace {

constexpr uint64_t kPointerSize = 8;
constexpr uint64_t kMinObjectSize = 3 * kPointerSize;  // Header, MethodTable, one field.
constexpr uint64_t kObjectAlignment = 8;               // x64, all heaps.
// Low bits of the MethodTable pointer the GC uses as mark/pin flags.
constexpr uint64_t kMethodTableFlagBits = 7;

uint64_t Align(uint64_t size) { return (size + kObjectAlignment - 1) & ~(kObjectAlignment - 1); }

// Object headers are read through a window of the dump's memory, refilled with one large read
// (which bypasses the core's chunk cache) whenever an object lies outside it. The window never
// reaches past the segment's end by more than an object header, so that the tail of a segment
// costs no more than its objects; a large object's body is skipped, not read.
constexpr size_t kWindowBytes = size_t{1} << 20;
constexpr size_t kHeaderBytes = 2 * kPointerSize;  // MethodTable and the component count

class WindowReader {
 public:
  explicit WindowReader(const elf::CoreFile& core) : core_(core), buf_(kWindowBytes) {}

  // Copies `n` (<= kHeaderBytes) bytes at `addr`; false if the dump does not hold them all.
  // `limit` is the end of the segment being walked.
  bool Read(uint64_t addr, void* out, size_t n, uint64_t limit) {
    if (addr < start_ || addr - start_ > valid_ || valid_ - (addr - start_) < n) {
      uint64_t want = limit > addr ? limit - addr : 0;
      want = std::clamp<uint64_t>(want + kHeaderBytes, n, kWindowBytes);
      start_ = addr;
      valid_ = core_.ReadDumpedMemory(addr, buf_.data(), static_cast<size_t>(want));
      if (valid_ < n) return false;
    }
    std::memcpy(out, buf_.data() + (addr - start_), n);
    return true;
  }

 private:
  const elf::CoreFile& core_;
  std::vector<uint8_t> buf_;
  uint64_t start_ = 0;
  size_t valid_ = 0;
};

}  // namespace

absl::StatusOr<HeapWalkSummary> WalkHeap(DacProcess& dac,
                                         const std::function<bool(const HeapObject&)>& visit,
                                         const CancellationToken* cancel) {
  return WalkHeapSegments(dac, nullptr, visit, cancel);
}

absl::StatusOr<HeapWalkSummary> WalkHeapSegments(
    DacProcess& dac, const std::function<bool(const HeapSegment&)>& keep,
    const std::function<bool(const HeapObject&)>& visit, const CancellationToken* cancel) {
  ASSIGN_OR_RETURN(std::vector<HeapSegment> segments, dac.GetHeapSegments());
  std::stable_sort(segments.begin(), segments.end(),
                   [](const HeapSegment& a, const HeapSegment& b) { return a.start < b.start; });
  ASSIGN_OR_RETURN(UsefulGlobals globals, dac.GetUsefulGlobals());
  ASSIGN_OR_RETURN(auto contexts, dac.GetAllocationContexts());
  WindowReader window(dac.core());

  HeapWalkSummary summary;
  for (const HeapSegment& seg : segments) {
    if (keep && !keep(seg)) continue;
    const bool skip_contexts = seg.kind != SegmentKind::kLarge && seg.kind != SegmentKind::kFrozen;
    auto skip_context = [&](uint64_t obj) {
      if (!skip_contexts) return obj;
      for (auto it = contexts.find(obj); it != contexts.end(); it = contexts.find(obj)) {
        const uint64_t next = it->second + Align(kMinObjectSize);
        if (next <= obj) return seg.end;  // Corrupt context: give up on this segment.
        obj = next;
      }
      return obj;
    };
    uint64_t obj = skip_context(seg.start);
    while (obj < seg.end) {
      if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("heap walk");
      uint64_t mt = 0;
      if (!window.Read(obj, &mt, sizeof(mt), seg.end)) {
        summary.warnings.push_back(absl::StrCat(SegmentKindName(seg.kind), " segment 0x",
                                                absl::Hex(seg.address), ": object 0x",
                                                absl::Hex(obj), " is not in the dump"));
        break;
      }
      mt &= ~kMethodTableFlagBits;
      absl::StatusOr<MethodTableInfo> info =
          mt == 0 ? absl::DataLossError("null MethodTable") : dac.GetMethodTable(mt);
      if (!info.ok()) {
        summary.warnings.push_back(absl::StrCat(
            SegmentKindName(seg.kind), " segment 0x", absl::Hex(seg.address), ": object 0x",
            absl::Hex(obj), " has an invalid MethodTable 0x", absl::Hex(mt)));
        break;
      }
      uint64_t size = info->base_size;
      if (info->component_size != 0) {
        uint32_t count = 0;
        if (!window.Read(obj + kPointerSize, &count, sizeof(count), seg.end)) {
          summary.warnings.push_back(
              absl::StrCat("object 0x", absl::Hex(obj), ": component count is not in the dump"));
          break;
        }
        // The DAC reports System.String's base size without its terminating NUL char.
        const uint64_t components = uint64_t{count} + (mt == globals.string_mt ? 1 : 0);
        size += components * info->component_size;
      }
      size = std::max(size, kMinObjectSize);
      const uint64_t footprint = Align(size);
      ++summary.objects;
      summary.bytes += size;
      if (!visit(HeapObject{obj, mt, size, footprint, &seg})) return summary;
      obj = skip_context(obj + footprint);
    }
  }
  return summary;
}

absl::StatusOr<HeapStats> ComputeHeapStats(DacProcess& dac, const CancellationToken* cancel) {
  struct Acc {
    size_t first_seen;
    uint64_t count = 0;
    uint64_t size = 0;
  };
  std::unordered_map<uint64_t, Acc> by_mt;
  ASSIGN_OR_RETURN(HeapWalkSummary walk, WalkHeap(
                                             dac,
                                             [&](const HeapObject& o) {
                                               auto [it, _] =
                                                   by_mt.try_emplace(o.mt, Acc{by_mt.size()});
                                               it->second.count++;
                                               it->second.size += o.size;
                                               return true;
                                             },
                                             cancel));
  HeapStats stats;
  stats.objects = walk.objects;
  stats.bytes = walk.bytes;
  stats.warnings = std::move(walk.warnings);
  std::vector<std::pair<size_t, TypeStat>> rows;
  rows.reserve(by_mt.size());
  for (const auto& [mt, acc] : by_mt) {
    TypeStat t;
    t.mt = mt;
    t.count = acc.count;
    t.total_size = acc.size;
    absl::StatusOr<std::string> name = dac.GetMethodTableName(mt);
    t.name = name.ok() ? PrettyTypeName(*name) : absl::StrCat("<unknown_type_", absl::Hex(mt), ">");
    rows.emplace_back(acc.first_seen, std::move(t));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    if (a.second.total_size != b.second.total_size) {
      return a.second.total_size < b.second.total_size;
    }
    return a.first < b.first;
  });
  for (auto& [_, t] : rows) stats.types.push_back(std::move(t));
  return stats;
}

}  // namespace clrdiag::dac
