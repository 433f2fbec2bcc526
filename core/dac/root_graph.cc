#include "core/dac/root_graph.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_map>
#include <utility>

#include <sys/mman.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"

namespace clrdiag::dac {

constexpr uint64_t kPointerSize = 8;
// Object bodies are read through a window this large (bigger objects alone, directly).
constexpr size_t kBodyWindowBytes = size_t{4} << 20;
constexpr uint32_t kSizeSaturated = 0xffffffffu;
// Edge indices are 32-bit: a heap with more objects than this is refused.
constexpr uint64_t kMaxObjects = 0xfffffff0u;

// Reserves room for `n` elements up front (the walk must not reallocate: copying and
// faulting in fresh pages dominated the build) and asks for transparent huge pages, so that
// the pages are faulted in 2 MiB at a time as they are first written.
template <typename T>
void ReserveHuge(std::vector<T>& v, size_t n) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  v.reserve(n);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t a = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t e = (begin + v.capacity() * sizeof(T)) & ~(kHuge - 1);
  if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);
}

// Reads object bodies during the walk: a window of the dump's memory, refilled from the
// object's start (up to the segment's end) whenever an object lies outside it.
class BodyReader {
 public:
  explicit BodyReader(const elf::CoreFile& core) : core_(core), window_(kBodyWindowBytes) {}

  // The object's bytes [addr, addr+size), or null; `have` is how many of them were read.
  const uint8_t* Read(uint64_t addr, uint64_t size, uint64_t segment_end, uint64_t* have) {
    if (size > kBodyWindowBytes) {
      big_.resize(size);
      *have = core_.ReadDumpedMemory(addr, big_.data(), size);
      return *have == 0 ? nullptr : big_.data();
    }
    if (addr < start_ || addr + size > start_ + valid_) {
      uint64_t want = segment_end > addr ? segment_end - addr : size;
      want = std::clamp<uint64_t>(want, size, kBodyWindowBytes);
      start_ = addr;
      valid_ = core_.ReadDumpedMemory(addr, window_.data(), want);
      if (valid_ < size) {
        *have = valid_;
        return valid_ == 0 ? nullptr : window_.data();
      }
    }
    *have = size;
    return window_.data() + (addr - start_);
  }

 private:
  const elf::CoreFile& core_;
  std::vector<uint8_t> window_;
  std::vector<uint8_t> big_;
  uint64_t start_ = 0;
  uint64_t valid_ = 0;
};

class HeapGraphBuilder {
 public:
  HeapGraphBuilder(DacProcess& dac, HeapGraph& g) : dac_(dac), g_(g), body_(dac.core()) {}

  absl::Status Run(const CancellationToken* cancel, const HeapGraph::ProgressFn& progress) {
    ASSIGN_OR_RETURN(std::vector<HeapSegment> segments, dac_.GetHeapSegments());
    std::sort(segments.begin(), segments.end(),
              [](const HeapSegment& a, const HeapSegment& b) { return a.start < b.start; });
    uint64_t bits = 0, total = 0;
    for (const HeapSegment& seg : segments) {
      if (seg.end <= seg.start) continue;
      if (!g_.ranges_.empty() && seg.start < g_.ranges_.back().end) continue;  // overlap
      const uint64_t start = seg.start & ~(kPointerSize - 1);
      g_.ranges_.push_back({start, seg.end, bits});
      bits += (seg.end - start + kPointerSize - 1) / kPointerSize;
      total += seg.end - seg.start;
    }
    g_.starts_.assign((bits + 63) / 64, 0);
    // At most one object per 24 bytes and one reference per 8 bytes of the segments.
    const size_t max_objects = static_cast<size_t>(total / 24 + g_.ranges_.size() + 1);
    ReserveHuge(g_.address_, max_objects);
    ReserveHuge(g_.type_, max_objects);
    ReserveHuge(g_.size_, max_objects);
    ReserveHuge(g_.edge_begin_, max_objects + 1);
    ReserveHuge(raw_, static_cast<size_t>(total / 8 + 1));
    uint64_t done = 0;
    ASSIGN_OR_RETURN(HeapWalkSummary walk,
                     WalkHeap(
                         dac_,
                         [&](const HeapObject& o) {
                           done += o.footprint;
                           if (progress && (g_.address_.size() & 0x3ffff) == 0) {
                             progress(done, total, g_.address_.size());
                           }
                           return Add(o);
                         },
                         cancel));
    if (!status_.ok()) return status_;
    g_.warnings_ = std::move(walk.warnings);
    g_.edge_begin_.push_back(raw_.size());
    if (unreadable_ != 0) {
      g_.warnings_.push_back(absl::StrCat(
          unreadable_, " objects could not be read to follow their references"));
    }
    // Ranks, then the raw references resolved to indices.
    g_.rank_.resize(g_.starts_.size());
    uint32_t rank = 0;
    for (size_t w = 0; w < g_.starts_.size(); ++w) {
      g_.rank_[w] = rank;
      rank += static_cast<uint32_t>(std::popcount(g_.starts_[w]));
    }
    if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("heap graph");
    ReserveHuge(g_.edges_, raw_.size());
    uint64_t from = 0;
    const HeapGraph::Range* last = nullptr;
    for (size_t i = 0; i + 1 < g_.edge_begin_.size(); ++i) {
      const uint64_t end = g_.edge_begin_[i + 1];
      g_.edge_begin_[i] = g_.edges_.size();
      for (; from < end; ++from) {
        const uint64_t a = raw_[from];
        if ((a & (kPointerSize - 1)) != 0) continue;
        if (last == nullptr || a < last->start || a >= last->end) {
          last = g_.RangeOf(a);
          if (last == nullptr) continue;
        }
        const uint64_t bit = last->first_bit + (a - last->start) / kPointerSize;
        if (((g_.starts_[bit >> 6] >> (bit & 63)) & 1) == 0) continue;
        g_.edges_.push_back(g_.RankOf(bit));
      }
    }
    g_.edge_begin_.back() = g_.edges_.size();
    std::vector<uint64_t>().swap(raw_);
    std::sort(g_.big_sizes_.begin(), g_.big_sizes_.end());
    // Dependent handles, sorted by (primary, secondary) as ClrMD sorts them.
    ASSIGN_OR_RETURN(std::vector<HandleEntry> handles, dac_.GetHandles(cancel));
    for (const HandleEntry& h : handles) {
      if (h.type != kHandleDependent || h.object == 0 || h.secondary == 0) continue;
      const uint32_t a = g_.IndexOf(h.object), b = g_.IndexOf(h.secondary);
      if (a != HeapGraph::kNone && b != HeapGraph::kNone) g_.dependents_.emplace_back(a, b);
    }
    std::sort(g_.dependents_.begin(), g_.dependents_.end());
    for (auto [a, b] : g_.dependents_) g_.dependent_targets_.push_back(b);
    if (progress) progress(total, total, g_.address_.size());
    return absl::OkStatus();
  }

 private:
  uint32_t TypeOf(uint64_t mt) {
    if (mt == last_mt_) return last_type_;
    auto it = type_index_.find(mt);
    if (it == type_index_.end()) {
      HeapGraph::Type t;
      t.mt = mt;
      if (absl::StatusOr<MethodTableInfo> info = dac_.GetMethodTable(mt); info.ok()) {
        t.base_size = info->base_size;
        t.component_size = info->component_size;
        t.contains_pointers = info->contains_pointers;
        t.is_free = info->is_free;
      }
      descs_.push_back(t.contains_pointers ? ReadGcDesc(dac_, mt) : GcDesc{});
      it = type_index_.emplace(mt, static_cast<uint32_t>(g_.types_.size())).first;
      g_.types_.push_back(t);
    }
    last_mt_ = mt;
    last_type_ = it->second;
    return last_type_;
  }

  bool Add(const HeapObject& o) {
    if (g_.address_.size() >= kMaxObjects) {
      status_ = absl::ResourceExhaustedError("the heap has too many objects for a heap graph");
      return false;
    }
    const uint32_t index = static_cast<uint32_t>(g_.address_.size());
    const uint32_t type = TypeOf(o.mt);
    g_.address_.push_back(o.address);
    g_.type_.push_back(type);
    if (o.size >= kSizeSaturated) {
      g_.size_.push_back(kSizeSaturated);
      g_.big_sizes_.emplace_back(index, o.size);
    } else {
      g_.size_.push_back(static_cast<uint32_t>(o.size));
    }
    g_.edge_begin_.push_back(raw_.size());
    if (range_ == nullptr || o.address < range_->start || o.address >= range_->end) {
      range_ = g_.RangeOf(o.address);
    }
    if (range_ != nullptr) {
      const uint64_t bit = range_->first_bit + (o.address - range_->start) / kPointerSize;
      g_.starts_[bit >> 6] |= uint64_t{1} << (bit & 63);
    }
    const GcDesc& desc = descs_[type];
    if (desc.empty()) return true;
    uint64_t have = 0;
    const uint8_t* body = body_.Read(o.address, o.size, o.segment->end, &have);
    if (body == nullptr || have < o.size) ++unreadable_;
    if (body == nullptr) return true;
    ForEachPointerSlot(desc, body, have, o.size,
                       [&](uint64_t, uint64_t p) { raw_.push_back(p); });
    return true;
  }

  DacProcess& dac_;
  HeapGraph& g_;
  BodyReader body_;
  absl::Status status_;
  std::unordered_map<uint64_t, uint32_t> type_index_;
  std::vector<GcDesc> descs_;  // per type index
  uint64_t last_mt_ = 0;
  uint32_t last_type_ = 0;
  std::vector<uint64_t> raw_;  // reference values, resolved to indices after the walk
  const HeapGraph::Range* range_ = nullptr;  // the range of the last object
  uint64_t unreadable_ = 0;
};

absl::StatusOr<std::unique_ptr<HeapGraph>> HeapGraph::Build(DacProcess& dac,
                                                            const CancellationToken* cancel,
                                                            const ProgressFn& progress) {
  auto g = std::unique_ptr<HeapGraph>(new HeapGraph());
  HeapGraphBuilder builder(dac, *g);
  RETURN_IF_ERROR(builder.Run(cancel, progress));
  return g;
}

uint64_t HeapGraph::object_size(uint32_t i) const {
  if (size_[i] != kSizeSaturated) return size_[i];
  auto it = std::lower_bound(big_sizes_.begin(), big_sizes_.end(),
                             std::pair<uint32_t, uint64_t>{i, 0});
  return it != big_sizes_.end() && it->first == i ? it->second : kSizeSaturated;
}

const HeapGraph::Range* HeapGraph::RangeOf(uint64_t address) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.start; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

uint32_t HeapGraph::RankOf(uint64_t bit) const {
  const uint64_t below = starts_[bit >> 6] & ((uint64_t{1} << (bit & 63)) - 1);
  return rank_[bit >> 6] + static_cast<uint32_t>(std::popcount(below));
}

uint32_t HeapGraph::IndexOf(uint64_t address) const {
  if ((address & (kPointerSize - 1)) != 0) return kNone;
  const Range* r = RangeOf(address);
  if (r == nullptr) return kNone;
  const uint64_t bit = r->first_bit + (address - r->start) / kPointerSize;
  if (((starts_[bit >> 6] >> (bit & 63)) & 1) == 0) return kNone;
  return RankOf(bit);
}

uint32_t HeapGraph::ContainingObject(uint64_t address) const {
  const uint64_t aligned = address & ~(kPointerSize - 1);
  const Range* r = RangeOf(aligned);
  if (r == nullptr) return kNone;
  uint64_t bit = r->first_bit + (aligned - r->start) / kPointerSize;
  for (;;) {
    if ((starts_[bit >> 6] >> (bit & 63)) & 1) {
      const uint32_t i = RankOf(bit);
      return address < address_[i] + std::max<uint64_t>(object_size(i), kPointerSize) ? i
                                                                                      : kNone;
    }
    if (bit == r->first_bit) return kNone;
    --bit;
  }
}

std::span<const uint32_t> HeapGraph::Dependents(uint32_t i) const {
  auto lo = std::lower_bound(dependents_.begin(), dependents_.end(),
                             std::pair<uint32_t, uint32_t>{i, 0});
  size_t b = static_cast<size_t>(lo - dependents_.begin()), e = b;
  while (e < dependents_.size() && dependents_[e].first == i) ++e;
  return {dependent_targets_.data() + b, dependent_targets_.data() + e};
}

// --- PathFinder -------------------------------------------------------------------------

namespace {

// Bytes ClrMD's ReferenceList spends on a pointer: 5 below 2^40, 6 below 2^48, else 8.
uint32_t EncodedSize(uint64_t address) {
  address &= ~uint64_t{3};
  if ((address & 0xffffffffffull) == address) return 5;
  if ((address & 0xffffffffffffull) == address) return 6;
  return 8;
}
constexpr uint32_t kListBytes = 32;  // ReferenceList.DataSize

}  // namespace

PathFinder::PathFinder(const HeapGraph& graph, uint32_t target, const CancellationToken* cancel,
                       bool follow_dependents)
    : graph_(graph),
      target_(target),
      cancel_(cancel),
      follow_dependents_(follow_dependents),
      seen_((graph.size() + 63) / 64, 0),
      found_(graph.size(), HeapGraph::kNone) {}

std::vector<uint32_t> PathFinder::ChainFrom(uint32_t obj) const {
  std::vector<uint32_t> chain;
  while (obj != HeapGraph::kNone && obj != kEnd && chain.size() <= graph_.size()) {
    chain.push_back(obj);
    obj = found_[obj];
  }
  return chain;
}

bool PathFinder::Walk(uint32_t parent, uint32_t obj) {
  if (obj == target_) {
    found_[obj] = kEnd;
    return true;
  }
  if (!graph_.contains_pointers(obj)) return false;
  const uint32_t header = 1 + EncodedSize(graph_.address(obj)) +
                          (parent == HeapGraph::kNone ? 0 : EncodedSize(graph_.address(parent)));
  bool open = false;
  uint32_t used = 0;
  auto consider = [&](uint32_t r) {
    if (found_[r] != HeapGraph::kNone) {
      found_[obj] = r;
      return true;
    }
    if (Seen(r)) return false;
    SetSeen(r, true);
    const uint32_t need = EncodedSize(graph_.address(r));
    if (open && used + need > kListBytes) {
      stack_.back().end = static_cast<uint32_t>(pending_.size());
      open = false;
    }
    if (!open) {
      const uint32_t at = static_cast<uint32_t>(pending_.size());
      stack_.push_back({obj, parent, at, at, at});
      used = header;
      open = true;
    }
    pending_.push_back(r);
    used += need;
    return false;
  };
  // On a hit ClrMD drops the list being filled (its references stay seen).
  auto hit = [&]() {
    if (open) {
      pending_.resize(stack_.back().begin);
      stack_.pop_back();
    }
    return true;
  };
  if (follow_dependents_) {
    for (uint32_t r : graph_.Dependents(obj)) {
      if (consider(r)) return hit();
    }
  }
  for (uint32_t r : graph_.References(obj)) {
    if (consider(r)) return hit();
  }
  if (open) stack_.back().end = static_cast<uint32_t>(pending_.size());
  return false;
}

absl::StatusOr<std::vector<uint32_t>> PathFinder::FindPathFrom(uint32_t start) {
  if (start >= graph_.size()) return std::vector<uint32_t>{};
  if (found_[start] != HeapGraph::kNone) return ChainFrom(start);
  stack_.clear();
  pending_.clear();
  if (Walk(HeapGraph::kNone, start)) return ChainFrom(start);
  uint64_t steps = 0;
  while (!stack_.empty()) {
    if ((++steps & 0xfff) == 0 && cancel_ != nullptr && cancel_->cancelled()) {
      return absl::CancelledError("gcroot search");
    }
    List& top = stack_.back();
    if (top.cursor == top.end) {
      pending_.resize(top.begin);
      stack_.pop_back();
      continue;
    }
    const uint32_t child = pending_[top.cursor++];
    const uint32_t holder = top.object;
    uint32_t parent = top.parent;
    if (!Walk(holder, child)) continue;
    // The chain: child (found), its holder, then the holders' lists down the stack.
    if (found_[holder] == HeapGraph::kNone) found_[holder] = child;
    SetSeen(holder, false);
    uint32_t last = holder, prev = holder;
    for (size_t k = stack_.size(); k-- > 0;) {
      const List& l = stack_[k];
      if (l.object == last) continue;
      last = l.object;
      if (parent != HeapGraph::kNone && l.object == parent) {
        if (found_[l.object] == HeapGraph::kNone) found_[l.object] = prev;
        prev = l.object;
        parent = l.parent;
      }
      SetSeen(l.object, false);
    }
    stack_.clear();
    pending_.clear();
    return ChainFrom(start);
  }
  return std::vector<uint32_t>{};
}

absl::StatusOr<std::vector<uint32_t>> Closure(const HeapGraph& graph,
                                              std::span<const uint32_t> start,
                                              const CancellationToken* cancel) {
  std::vector<uint64_t> seen((graph.size() + 63) / 64, 0);
  auto add = [&](uint32_t i) {
    uint64_t& w = seen[i >> 6];
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (w & bit) return false;
    w |= bit;
    return true;
  };
  std::vector<uint32_t> order;
  for (uint32_t s : start) {
    if (s >= graph.size() || !add(s)) continue;
    size_t head = order.size();
    order.push_back(s);
    while (head < order.size()) {
      if ((head & 0xffff) == 0 && cancel != nullptr && cancel->cancelled()) {
        return absl::CancelledError("objsize");
      }
      const uint32_t o = order[head++];
      for (uint32_t r : graph.Dependents(o)) {
        if (add(r)) order.push_back(r);
      }
      if (!graph.contains_pointers(o)) continue;
      for (uint32_t r : graph.References(o)) {
        if (add(r)) order.push_back(r);
      }
    }
  }
  return order;
}

absl::StatusOr<std::unique_ptr<ObjectReader>> ObjectReader::Create(
    DacProcess& dac, const CancellationToken* cancel) {
  std::unique_ptr<ObjectReader> r(new ObjectReader(dac));
  ASSIGN_OR_RETURN(std::vector<HeapSegment> segments, dac.GetHeapSegments());
  for (const HeapSegment& seg : segments) {
    if (seg.end > seg.start) r->ranges_.emplace_back(seg.start, seg.end);
  }
  std::sort(r->ranges_.begin(), r->ranges_.end());
  ASSIGN_OR_RETURN(UsefulGlobals globals, dac.GetUsefulGlobals());
  r->string_mt_ = globals.string_mt;
  ASSIGN_OR_RETURN(std::vector<HandleEntry> handles, dac.GetHandles(cancel));
  for (const HandleEntry& h : handles) {
    if (h.type == kHandleDependent && h.object != 0 && h.secondary != 0) {
      r->dependents_.emplace_back(h.object, h.secondary);
    }
  }
  std::sort(r->dependents_.begin(), r->dependents_.end());
  return r;
}

const ObjectReader::TypeInfo* ObjectReader::TypeOf(uint64_t mt) {
  auto it = types_.find(mt);
  if (it != types_.end()) return it->second.get();
  auto t = std::make_unique<TypeInfo>();
  if (absl::StatusOr<MethodTableInfo> info = dac_.GetMethodTable(mt); info.ok()) {
    t->valid = true;
    t->info = *info;
    if (info->contains_pointers) t->desc = ReadGcDesc(dac_, mt);
  }
  return types_.emplace(mt, std::move(t)).first->second.get();
}

std::optional<ObjectRef> ObjectReader::Read(uint64_t address) {
  if (address == 0 || (address & (kPointerSize - 1)) != 0) return std::nullopt;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(),
                             std::pair<uint64_t, uint64_t>{address, ~uint64_t{0}});
  if (it == ranges_.begin() || address >= std::prev(it)->second) return std::nullopt;
  uint64_t header[2] = {};
  if (dac_.core().ReadDumpedMemory(address, header, sizeof(header)) != sizeof(header)) {
    return std::nullopt;
  }
  const uint64_t mt = header[0] & ~uint64_t{7};
  if (mt == 0) return std::nullopt;
  const TypeInfo* t = TypeOf(mt);
  if (!t->valid) return std::nullopt;
  uint64_t size = t->info.base_size;
  if (t->info.component_size != 0) {
    const uint64_t count = static_cast<uint32_t>(header[1]) + (mt == string_mt_ ? 1 : 0);
    size += count * t->info.component_size;
  }
  return ObjectRef{address, mt, std::max<uint64_t>(size, 3 * kPointerSize)};
}

absl::StatusOr<std::vector<ObjectRef>> ObjectReader::Closure(std::span<const uint64_t> start,
                                                             const CancellationToken* cancel) {
  std::unordered_map<uint64_t, bool> seen;
  std::vector<ObjectRef> order;
  std::vector<uint64_t> refs;
  for (uint64_t s : start) {
    std::optional<ObjectRef> first = Read(s);
    if (!first || !seen.emplace(s, true).second) continue;
    size_t head = order.size();
    order.push_back(*first);
    while (head < order.size()) {
      if ((head & 0xfff) == 0 && cancel != nullptr && cancel->cancelled()) {
        return absl::CancelledError("objsize");
      }
      const ObjectRef o = order[head++];
      refs.clear();
      for (auto d = std::lower_bound(dependents_.begin(), dependents_.end(),
                                     std::pair<uint64_t, uint64_t>{o.address, 0});
           d != dependents_.end() && d->first == o.address; ++d) {
        refs.push_back(d->second);
      }
      const TypeInfo* t = TypeOf(o.mt);
      if (t->info.contains_pointers && !t->desc.empty()) {
        buf_.resize(o.size);
        const size_t got = dac_.core().ReadDumpedMemory(o.address, buf_.data(), o.size);
        ForEachPointerSlot(t->desc, buf_.data(), got, o.size,
                           [&](uint64_t, uint64_t p) { refs.push_back(p); });
      }
      for (uint64_t r : refs) {
        if (seen.count(r) != 0) continue;
        std::optional<ObjectRef> child = Read(r);
        if (!child) continue;
        seen.emplace(r, true);
        order.push_back(*child);
      }
    }
  }
  return order;
}

}  // namespace clrdiag::dac
