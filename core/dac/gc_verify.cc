#include "core/dac/gc_verify.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace clrdiag::dac {
namespace {

constexpr uint64_t kPointerSize = 8;
constexpr uint64_t kMinObjectSize = 3 * kPointerSize;
constexpr uint64_t kLohSkip = 85000;  // how far a careful walk jumps past a bad LOH object
constexpr uint64_t kSmallestMethodTable = 0x1000;
// Object header bits (syncblk.h): the low 26 bits are a sync block index unless the hash code
// bit is set, when the index bit is.
constexpr uint32_t kHeaderHashOrSyncBlock = 0x08000000;
constexpr uint32_t kHeaderIsHashCode = 0x04000000;
constexpr uint32_t kHeaderSyncBlockMask = (1u << 26) - 1;
constexpr uint32_t kHeaderSpinLock = 0x10000000;
constexpr uint32_t kThinLockThreadIdMask = 0xffff;  // .NET 8+ layout
// current_c_gc_state while a background GC plans (gc.h c_gc_state_planning).
constexpr uint64_t kGcStatePlanning = 1;
constexpr uint64_t kSegmentFlagSwept = 16;  // heap_segment_flags_swept
// Reads through a window of this many bytes; objects that need their contents and do not fit
// are read on their own.
constexpr size_t kWindowBytes = size_t{8} << 20;
constexpr uint64_t kProgressEvery = 1 << 16;  // objects between progress reports

uint64_t Align8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

// A type as the verifier needs it: its MethodTable's sizes and GCDesc.
struct TypeEntry {
  bool valid = false;
  bool is_free = false;
  bool is_string = false;
  bool is_array = false;
  bool contains_pointers = false;
  uint32_t base_size = 0;
  uint32_t component_size = 0;
  bool gcdesc_read = false;
  bool gcdesc_empty = true;
  bool repeating = false;
  std::vector<std::pair<int64_t, int64_t>> series;  // (size, offset), highest first
  int64_t start = 0;                                // repeating: first element's offset
  std::vector<std::pair<int32_t, int32_t>> runs;    // repeating: (pointers, skip)
};

// Sequential reads of the dump through a large window.
class Window {
 public:
  explicit Window(const elf::CoreFile& core) : core_(core) {}

  // `n` bytes at `addr`, refilling the window from `addr` up to at most `limit` when needed
  // (a larger read when `n` is more than the window holds); null if the dump lacks them.
  const uint8_t* Get(uint64_t addr, size_t n, uint64_t limit) {
    if (addr >= start_ && addr - start_ <= valid_ && valid_ - (addr - start_) >= n) {
      return buf_.data() + (addr - start_);
    }
    if (n > kWindowBytes) {
      big_.resize(n);
      if (core_.ReadDumpedMemory(addr, big_.data(), n) != n) return nullptr;
      return big_.data();
    }
    if (buf_.empty()) buf_.resize(kWindowBytes);
    uint64_t want = limit > addr ? limit - addr : 0;
    want = std::clamp<uint64_t>(want, n, kWindowBytes);
    start_ = addr;
    valid_ = core_.ReadDumpedMemory(addr, buf_.data(), static_cast<size_t>(want));
    if (valid_ < n) return nullptr;
    return buf_.data();
  }

 private:
  const elf::CoreFile& core_;
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> big_;
  uint64_t start_ = 0;
  size_t valid_ = 0;
};

// One object as the careful walk yields it; `type` is null when its MethodTable is invalid.
struct WalkedObject {
  uint64_t address = 0;
  uint64_t mt = 0;  // as read
  const TypeEntry* type = nullptr;
  uint64_t size = 0;
};

}  // namespace

const char* CorruptionKindName(CorruptionKind kind) {
  switch (kind) {
    case CorruptionKind::kNone:
      return "None";
    case CorruptionKind::kObjectNotOnTheHeap:
      return "ObjectNotOnTheHeap";
    case CorruptionKind::kObjectNotPointerAligned:
      return "ObjectNotPointerAligned";
    case CorruptionKind::kObjectTooLarge:
      return "ObjectTooLarge";
    case CorruptionKind::kInvalidMethodTable:
      return "InvalidMethodTable";
    case CorruptionKind::kInvalidThinlock:
      return "InvalidThinlock";
    case CorruptionKind::kSyncBlockMismatch:
      return "SyncBlockMismatch";
    case CorruptionKind::kSyncBlockZero:
      return "SyncBlockZero";
    case CorruptionKind::kObjectReferenceNotPointerAligned:
      return "ObjectReferenceNotPointerAligned";
    case CorruptionKind::kInvalidObjectReference:
      return "InvalidObjectReference";
    case CorruptionKind::kFreeObjectReference:
      return "FreeObjectReference";
    case CorruptionKind::kCouldNotReadObject:
      return "CouldNotReadObject";
    case CorruptionKind::kCouldNotReadMethodTable:
      return "CouldNotReadMethodTable";
    case CorruptionKind::kCouldNotReadCardTable:
      return "CouldNotReadCardTable";
    case CorruptionKind::kCouldNotReadGCDesc:
      return "CouldNotReadGCDesc";
  }
  return "?";
}

class HeapVerifier::Impl {
 public:
  Impl(DacProcess& dac, const GcLayout& layout) : dac_(dac), layout_(layout), core_(dac.core()) {}

  absl::Status Init() {
    ASSIGN_OR_RETURN(UsefulGlobals g, dac_.GetUsefulGlobals());
    free_mt_ = g.free_mt;
    string_mt_ = g.string_mt;
    ASSIGN_OR_RETURN(contexts_, dac_.GetAllocationContexts());
    return absl::OkStatus();
  }

  // The type of a MethodTable pointer read from the heap (the GC's mark bit cleared); cached,
  // valid or not.
  const TypeEntry* Type(uint64_t mt) {
    mt &= ~uint64_t{1};
    auto it = types_.find(mt);
    if (it != types_.end()) return it->second.valid ? &it->second : nullptr;
    TypeEntry t;
    absl::StatusOr<MethodTableInfo> info =
        mt == 0 ? absl::NotFoundError("null") : dac_.GetMethodTable(mt);
    if (info.ok()) {
      t.valid = true;
      t.is_free = mt == free_mt_;
      t.is_string = mt == string_mt_;
      t.base_size = info->base_size;
      t.component_size = info->component_size;
      t.is_array = info->component_size != 0 && !t.is_free && !t.is_string;
      t.contains_pointers = info->contains_pointers;
    }
    auto [ins, _] = types_.emplace(mt, std::move(t));
    return ins->second.valid ? &ins->second : nullptr;
  }

  bool ValidMethodTable(uint64_t mt) { return Type(mt) != nullptr; }

  void ReadGcDesc(TypeEntry& t, uint64_t mt) {
    t.gcdesc_read = true;
    mt &= ~uint64_t{1};
    int64_t n = 0;
    if (core_.ReadDumpedMemory(mt - 8, &n, sizeof(n)) != sizeof(n) &&
        dac_.ReadTargetMemory(mt - 8, &n, sizeof(n)) != sizeof(n)) {
      return;
    }
    if (n == 0 || n <= -65536 || n >= 65536) return;
    auto read = [&](uint64_t at, void* out, size_t size) {
      return core_.ReadDumpedMemory(at, out, size) == size ||
             dac_.ReadTargetMemory(at, out, size) == size;
    };
    if (n > 0) {
      std::vector<int64_t> raw(2 * static_cast<size_t>(n));
      if (!read(mt - 8 - raw.size() * 8, raw.data(), raw.size() * 8)) return;
      for (int64_t k = n - 1; k >= 0; --k) t.series.emplace_back(raw[2 * k], raw[2 * k + 1]);
    } else {
      const size_t m = static_cast<size_t>(-n);
      std::vector<int32_t> raw(2 * m);
      if (!read(mt - 16, &t.start, sizeof(t.start)) || !read(mt - 16 - m * 8, raw.data(), m * 8)) {
        return;
      }
      t.repeating = true;
      for (size_t i = 0; i < m; ++i) {
        const size_t at = 2 * (m - 1 - i);
        t.runs.emplace_back(raw[at], raw[at + 1]);
      }
    }
    t.gcdesc_empty = false;
  }

  // The references of an object (its `size` bytes at `bytes`): (value, offset), non-null.
  void References(const TypeEntry& t, const uint8_t* bytes, uint64_t size,
                  std::vector<std::pair<uint64_t, int64_t>>* out) {
    out->clear();
    auto at = [&](int64_t off) {
      uint64_t v = 0;
      if (off >= 0 && static_cast<uint64_t>(off) + 8 <= size) std::memcpy(&v, bytes + off, 8);
      return v;
    };
    if (!t.repeating) {
      for (auto [series_size, offset] : t.series) {
        const int64_t stop = offset + series_size + static_cast<int64_t>(size);
        for (int64_t off = offset; off < stop; off += 8) {
          if (uint64_t v = at(off); v != 0) out->emplace_back(v, off);
        }
      }
      return;
    }
    int64_t off = t.start;
    const int64_t end = static_cast<int64_t>(size) - 8;
    while (off < end) {
      const int64_t before = off;
      for (auto [pointers, skip] : t.runs) {
        const int64_t stop = off + int64_t{pointers} * 8;
        do {
          if (uint64_t v = at(off); v != 0) out->emplace_back(v, off);
          off += 8;
        } while (off < stop);
        off += skip;
      }
      if (off <= before) break;
    }
  }

  // ClrMD's SkipAllocationContext: past any allocation contexts at `address`; 0 if one is
  // corrupt or runs to the segment's end.
  uint64_t SkipContexts(const GcSegment& seg, uint64_t address) {
    if (seg.kind == SegmentKind::kLarge || seg.kind == SegmentKind::kFrozen) return address;
    for (auto it = contexts_.find(address); it != contexts_.end(); it = contexts_.find(address)) {
      const uint64_t next = it->second + Align8(kMinObjectSize);
      if (address >= next || next >= seg.objects.end) return 0;
      address = next;
    }
    return address;
  }

  // ClrMD's FindNextValidObject: the next pointer-aligned address after `address` holding a
  // valid MethodTable, 0 if memory runs out.
  uint64_t FindNext(const GcSegment& seg, uint64_t address, Window& w) {
    uint64_t obj = address;
    while (seg.objects.Contains(obj)) {
      const uint64_t ctx = SkipContexts(seg, obj);
      if (obj < ctx) {
        obj = ctx;
        continue;
      }
      obj += kPointerSize;
      const uint8_t* p = w.Get(obj, 8, seg.objects.end);
      if (p == nullptr) return 0;
      uint64_t mt;
      std::memcpy(&mt, p, 8);
      if (mt > kSmallestMethodTable && ValidMethodTable(mt)) break;
    }
    return obj;
  }

  // Walks one segment as ClrMD's careful enumeration does; `visit` returns false to stop.
  template <typename Visit>
  absl::Status WalkSegment(const GcSegment& seg, Window& w, const CancellationToken* cancel,
                           Visit visit) {
    const uint64_t end = seg.objects.end;
    const uint64_t skip = seg.kind == SegmentKind::kLarge ? kLohSkip : kMinObjectSize;
    uint64_t obj = seg.objects.start;
    uint64_t steps = 0;
    while (seg.objects.Contains(obj)) {
      if ((++steps & 0xfff) == 0 && cancel != nullptr && cancel->cancelled()) {
        return absl::CancelledError("verifying the heap");
      }
      const uint8_t* p = w.Get(obj, 8, end);
      if (p == nullptr) {
        obj = FindNext(seg, obj + skip, w);
        continue;
      }
      WalkedObject o;
      o.address = obj;
      std::memcpy(&o.mt, p, 8);
      o.type = Type(o.mt);
      if (o.type == nullptr) {
        if (!visit(o)) return absl::OkStatus();
        obj = FindNext(seg, obj + skip, w);
        continue;
      }
      uint64_t size = o.type->base_size;
      if (o.type->component_size != 0) {
        const uint8_t* q = w.Get(obj, 12, end);
        if (q == nullptr) {
          if (!visit(o)) return absl::OkStatus();
          obj = FindNext(seg, obj + skip, w);
          continue;
        }
        uint32_t count;
        std::memcpy(&count, q + 8, 4);
        size += (uint64_t{count} + (o.type->is_string ? 1 : 0)) * o.type->component_size;
      }
      o.size = std::max(size, kMinObjectSize);
      if (!visit(o)) return absl::OkStatus();
      obj = SkipContexts(seg, obj + std::max(Align8(size), kMinObjectSize));
    }
    return absl::OkStatus();
  }

  // The segments' object ranges, sorted, each with the index of its first bit.
  void BuildRanges() {
    uint64_t bit = 0;
    for (const GcSegment* s : layout_.sorted) {
      if (s->objects.length() == 0) continue;
      ranges_.push_back({s->objects.start, s->objects.end, bit});
      bit += (s->objects.length() + 7) / 8;
    }
    valid_starts_.assign((bit + 63) / 64, 0);
    free_starts_.assign((bit + 63) / 64, 0);
  }

  int64_t BitOf(uint64_t address) {
    if ((address & 7) != 0) return -1;
    if (last_range_ < ranges_.size() && address >= ranges_[last_range_].start &&
        address < ranges_[last_range_].end) {
      return static_cast<int64_t>(ranges_[last_range_].first_bit +
                                  (address - ranges_[last_range_].start) / 8);
    }
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                               [](uint64_t a, const Range& r) { return a < r.start; });
    if (it == ranges_.begin()) return -1;
    --it;
    if (address >= it->end) return -1;
    last_range_ = static_cast<size_t>(it - ranges_.begin());
    return static_cast<int64_t>(it->first_bit + (address - it->start) / 8);
  }

  static bool Test(const std::vector<uint64_t>& bits, int64_t bit) {
    return (bits[static_cast<size_t>(bit) >> 6] >> (bit & 63)) & 1;
  }
  static void Set(std::vector<uint64_t>& bits, int64_t bit) {
    bits[static_cast<size_t>(bit) >> 6] |= uint64_t{1} << (bit & 63);
  }

  // What a reference's target is: read its MethodTable from the dump as ClrMD does, unless
  // the first pass saw an object start there.
  CorruptionKind CheckReference(uint64_t ref) {
    if (use_bitmaps_) {
      const int64_t bit = BitOf(ref);
      if (bit >= 0) {
        if (Test(valid_starts_, bit)) return CorruptionKind::kNone;
        if (Test(free_starts_, bit)) return CorruptionKind::kFreeObjectReference;
      }
    }
    uint64_t mt = 0;
    if (core_.ReadDumpedMemory(ref, &mt, 8) != 8 && dac_.ReadTargetMemory(ref, &mt, 8) != 8) {
      return CorruptionKind::kInvalidObjectReference;
    }
    if (!ValidMethodTable(mt)) return CorruptionKind::kInvalidObjectReference;
    if ((mt & ~uint64_t{1}) == free_mt_) return CorruptionKind::kFreeObjectReference;
    return CorruptionKind::kNone;
  }

  absl::Status LoadSyncBlocks() {
    if (sync_loaded_) return absl::OkStatus();
    sync_loaded_ = true;
    absl::StatusOr<SyncBlockInfo> first = dac_.GetSyncBlock(1);
    if (!first.ok()) return absl::OkStatus();  // no table yet
    const uint32_t count = first->count;
    for (uint32_t i = 1; i <= count; ++i) {
      absl::StatusOr<SyncBlockInfo> b = i == 1 ? first : dac_.GetSyncBlock(i);
      if (!b.ok()) break;
      if (b->free) continue;
      ++sync_count_;
      if (b->object != 0) sync_by_object_[b->object] = i;
    }
    ASSIGN_OR_RETURN(ThreadStore ts, dac_.GetThreadStore());
    for (const ManagedThread& t : ts.threads) threads_.insert(t.address);
    return absl::OkStatus();
  }

  uint64_t ThreadOfThinLock(uint32_t id) {
    auto it = thin_lock_threads_.find(id);
    if (it != thin_lock_threads_.end()) return it->second;
    absl::StatusOr<uint64_t> t = dac_.GetThreadFromThinLockId(id);
    const uint64_t thread = t.ok() ? *t : 0;
    thin_lock_threads_[id] = thread;
    return thread;
  }

  // The GC's own test (should_check_bgc_mark / fgc_should_consider_object): during a
  // background GC's planning, objects it has not marked are not verified.
  bool ShouldVerifyMembers(const GcSegment& seg, uint64_t obj, bool* unreadable) {
    const GcSubHeap& heap = layout_.heaps[static_cast<size_t>(seg.heap)];
    if (heap.gc_state != kGcStatePlanning) return true;
    if ((seg.flags & kSegmentFlagSwept) != 0 || !seg.objects.Contains(heap.next_sweep_obj)) {
      return true;
    }
    if (seg.background_allocated == 0) return true;
    const bool check_saved = seg.address == heap.saved_sweep_ephemeral_segment;
    const bool check_current = seg.objects.Contains(heap.next_sweep_obj);
    bool no_mark = (check_current && obj < heap.next_sweep_obj) ||
                   (check_saved && obj >= heap.saved_sweep_ephemeral_start) ||
                   obj >= seg.background_allocated;
    if (no_mark) return true;
    if (obj < heap.background_saved_lowest || obj >= heap.background_saved_highest) return true;
    uint32_t word = 0;
    const uint64_t at = heap.mark_array + 4 * (obj / 256);
    if (core_.ReadDumpedMemory(at, &word, 4) != 4 && dac_.ReadTargetMemory(at, &word, 4) != 4) {
      *unreadable = true;
      return false;
    }
    return (word >> ((obj / 8) % 32)) & 1;
  }

  // ClrMD's VerifyObject: up to `max` problems of `o` (contents at `bytes`, size `o.size`;
  // null if they were not read). `header` is the 4 bytes before the object.
  void Verify(const GcSegment& seg, const WalkedObject& o, const uint8_t* bytes, size_t max,
              std::vector<Corruption>* out) {
    auto add = [&](int64_t offset, CorruptionKind kind, int64_t sb = -1, int64_t clr_sb = -1) {
      Corruption c;
      c.object = o.address;
      c.offset = offset;
      c.kind = kind;
      c.sync_block_index = sb;
      c.clr_sync_block_index = clr_sb;
      c.size = o.size;
      out->push_back(c);
      return out->size() < max;
    };
    if ((o.address & 7) != 0) {
      add(0, CorruptionKind::kObjectNotPointerAligned);
      return;
    }
    const bool is_free = o.type != nullptr && o.type->is_free;
    if (!is_free && o.type == nullptr) {
      add(0, CorruptionKind::kInvalidMethodTable);
      return;
    }
    bool too_large = false;
    if (o.address + o.size > seg.objects.end || (!is_free && o.size > seg.MaxObjectSize())) {
      too_large = true;
      if (!add(8, CorruptionKind::kObjectTooLarge)) return;
    }
    if (is_free) return;
    TypeEntry& t = types_[o.mt & ~uint64_t{1}];
    bool verify_members = false;
    if (t.contains_pointers) {
      bool unreadable = false;
      verify_members = ShouldVerifyMembers(seg, o.address, &unreadable);
      if (unreadable && !add(0, CorruptionKind::kCouldNotReadCardTable)) return;
      if (verify_members && t.is_array && too_large) verify_members = false;
    }
    if (verify_members) {
      if (!t.gcdesc_read) ReadGcDesc(t, o.mt);
      if (t.gcdesc_empty && !add(0, CorruptionKind::kCouldNotReadGCDesc)) return;
      const uint64_t size = std::min<uint64_t>(o.size, 0x7fffffff);
      std::vector<uint8_t> own;
      if (bytes == nullptr) {
        own.resize(size);
        size_t got = core_.ReadDumpedMemory(o.address, own.data(), size);
        if (got < size) got = dac_.ReadTargetMemory(o.address, own.data(), size);
        if (got != size) {
          if (!add(static_cast<int64_t>(got), CorruptionKind::kCouldNotReadObject)) return;
          std::fill(own.begin() + static_cast<int64_t>(got), own.end(), 0);
        }
        bytes = own.data();
      }
      References(t, bytes, size, &refs_);
      for (auto [ref, offset] : refs_) {
        if ((ref & 7) != 0 && !add(offset, CorruptionKind::kObjectReferenceNotPointerAligned)) {
          return;
        }
        const CorruptionKind k = CheckReference(ref);
        if (k != CorruptionKind::kNone && !add(offset, k)) return;
      }
    }
    uint32_t header = 0;
    if (core_.ReadDumpedMemory(o.address - 4, &header, 4) != 4) {
      (void)dac_.ReadTargetMemory(o.address - 4, &header, 4);
    }
    auto sb = sync_by_object_.find(o.address);
    const int64_t clr_index = sb == sync_by_object_.end() ? -1 : sb->second;
    if ((header & kHeaderHashOrSyncBlock) != 0 && (header & kHeaderIsHashCode) == 0) {
      const uint32_t index = header & kHeaderSyncBlockMask;
      if (index == 0) {
        if (!add(-4, CorruptionKind::kSyncBlockZero, -1, clr_index)) return;
      } else if (index != clr_index) {
        if (!add(-4, CorruptionKind::kSyncBlockMismatch, index, clr_index)) return;
      }
    } else if (clr_index >= 0) {
      if (!add(-4, CorruptionKind::kSyncBlockMismatch, -1, clr_index)) return;
    }
    if ((header & (kHeaderHashOrSyncBlock | kHeaderSpinLock)) == 0) {
      uint64_t thread = 0;
      if (uint32_t id = header & kThinLockThreadIdMask; id != 0) thread = ThreadOfThinLock(id);
      if (thread != 0 && !threads_.count(thread)) add(-4, CorruptionKind::kInvalidThinlock);
    }
  }

  absl::StatusOr<uint64_t> VerifyHeap(const std::function<void(const Corruption&)>& report,
                                      const std::function<void(const VerifyProgress&)>& progress,
                                      const CancellationToken* cancel, const VerifyScope* scope) {
    RETURN_IF_ERROR(LoadSyncBlocks());
    VerifyProgress p;
    for (const GcSegment* s : layout_.sorted) p.bytes_total += s->objects.length();
    p.bytes_total *= 2;  // two passes
    // Pass 1: where objects start.
    BuildRanges();
    Window w(core_);
    for (const GcSegment* seg : layout_.sorted) {
      RETURN_IF_ERROR(WalkSegment(*seg, w, cancel, [&](const WalkedObject& o) {
        const int64_t bit = BitOf(o.address);
        if (bit >= 0 && o.type != nullptr) Set(o.type->is_free ? free_starts_ : valid_starts_, bit);
        return true;
      }));
      p.bytes_done += seg->objects.length();
      if (progress) progress(p);
    }
    use_bitmaps_ = true;
    // Pass 2: verify (every segment, or the scope's).
    uint64_t objects = 0;
    std::vector<Corruption> found;
    for (const GcSegment* seg : scope != nullptr ? scope->segments : layout_.sorted) {
      const uint64_t base = p.bytes_done;
      RETURN_IF_ERROR(WalkSegment(*seg, w, cancel, [&](const WalkedObject& o) {
        if (scope != nullptr && scope->has_range && !scope->range.Contains(o.address)) {
          return o.address < scope->range.end;
        }
        ++objects;
        const uint8_t* bytes = nullptr;
        if (o.type != nullptr && o.type->contains_pointers && o.size <= kWindowBytes) {
          bytes = w.Get(o.address, o.size, seg->objects.end);
        }
        found.clear();
        Verify(*seg, o, bytes, 1, &found);
        for (const Corruption& c : found) report(c);
        if (progress && (objects % kProgressEvery) == 0) {
          p.objects = objects;
          p.bytes_done = base + (o.address - seg->objects.start);
          progress(p);
        }
        return true;
      }));
      p.bytes_done = base + seg->objects.length();
    }
    p.objects = objects;
    if (progress) progress(p);
    return objects;
  }

  absl::StatusOr<std::vector<Corruption>> VerifyObject(uint64_t address) {
    std::vector<Corruption> out;
    const GcSegment* seg = layout_.FindByObjectRange(address);
    if (seg == nullptr) {
      Corruption c;
      c.object = address;
      c.kind = CorruptionKind::kObjectNotOnTheHeap;
      out.push_back(c);
      return out;
    }
    RETURN_IF_ERROR(LoadSyncBlocks());
    WalkedObject o;
    o.address = address;
    if (core_.ReadDumpedMemory(address, &o.mt, 8) != 8 &&
        dac_.ReadTargetMemory(address, &o.mt, 8) != 8) {
      Corruption c;
      c.object = address;
      c.kind = CorruptionKind::kCouldNotReadMethodTable;
      out.push_back(c);
      return out;
    }
    o.type = Type(o.mt);
    if (o.type != nullptr) {
      uint64_t size = o.type->base_size;
      if (o.type->component_size != 0) {
        uint32_t count = 0;
        if (core_.ReadDumpedMemory(address + 8, &count, 4) != 4) {
          (void)dac_.ReadTargetMemory(address + 8, &count, 4);
        }
        size += (uint64_t{count} + (o.type->is_string ? 1 : 0)) * o.type->component_size;
      }
      o.size = std::max(size, kMinObjectSize);
    }
    Verify(*seg, o, nullptr, 64, &out);
    std::stable_sort(out.begin(), out.end(),
                     [](const Corruption& a, const Corruption& b) { return a.offset < b.offset; });
    return out;
  }

  uint64_t sync_block_count() {
    (void)LoadSyncBlocks();
    return sync_count_;
  }

  std::vector<uint64_t> SyncBlockObjects() {
    (void)LoadSyncBlocks();
    std::vector<std::pair<uint32_t, uint64_t>> by_index;
    for (const auto& [object, index] : sync_by_object_) by_index.emplace_back(index, object);
    std::sort(by_index.begin(), by_index.end());
    std::vector<uint64_t> out;
    out.reserve(by_index.size());
    for (const auto& e : by_index) out.push_back(e.second);
    return out;
  }

 private:
  struct Range {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t first_bit = 0;
  };

  DacProcess& dac_;
  const GcLayout& layout_;
  const elf::CoreFile& core_;
  uint64_t free_mt_ = 0;
  uint64_t string_mt_ = 0;
  std::unordered_map<uint64_t, uint64_t> contexts_;
  std::unordered_map<uint64_t, TypeEntry> types_;
  std::vector<std::pair<uint64_t, int64_t>> refs_;
  std::vector<Range> ranges_;
  size_t last_range_ = 0;
  std::vector<uint64_t> valid_starts_;
  std::vector<uint64_t> free_starts_;
  bool use_bitmaps_ = false;
  bool sync_loaded_ = false;
  uint64_t sync_count_ = 0;
  std::unordered_map<uint64_t, int64_t> sync_by_object_;
  std::unordered_set<uint64_t> threads_;
  std::unordered_map<uint32_t, uint64_t> thin_lock_threads_;
};

HeapVerifier::HeapVerifier(DacProcess& dac, const GcLayout& layout)
    : impl_(std::make_unique<Impl>(dac, layout)) {}
HeapVerifier::~HeapVerifier() = default;

absl::StatusOr<uint64_t> HeapVerifier::VerifyHeap(
    const std::function<void(const Corruption&)>& report,
    const std::function<void(const VerifyProgress&)>& progress, const CancellationToken* cancel,
    const VerifyScope* scope) {
  RETURN_IF_ERROR(impl_->Init());
  return impl_->VerifyHeap(report, progress, cancel, scope);
}

absl::StatusOr<std::vector<Corruption>> HeapVerifier::VerifyObject(uint64_t address) {
  RETURN_IF_ERROR(impl_->Init());
  return impl_->VerifyObject(address);
}

uint64_t HeapVerifier::sync_block_count() { return impl_->sync_block_count(); }

std::vector<uint64_t> HeapVerifier::SyncBlockObjects() { return impl_->SyncBlockObjects(); }

}  // namespace clrdiag::dac
