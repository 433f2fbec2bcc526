#include "core/dac/root_graph.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"

namespace clrdiag::dac {

constexpr uint64_t kPointerSize = 8;
constexpr uint64_t kMinObjectBytes = 3 * kPointerSize;
constexpr uint64_t kHeaderWindow = 4096;
// Object bodies are read through a window this large (bigger objects alone, directly).
constexpr size_t kBodyWindowBytes = size_t{4} << 20;
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

// The dump's memory around the walk's position: a window refilled (one large read, which
// bypasses the core's chunk cache) from the object that needs it whenever an object's bytes lie
// outside it; a body larger than the window is read alone.
class Window {
 public:
  explicit Window(const elf::CoreFile& core) : core_(core), buf_(kBodyWindowBytes) {}

  // At least `need` bytes at `addr` (null if the dump lacks them); `*have` is how many of
  // `want` (>= need) bytes are there. `limit` is the end of the segment being walked.
  const uint8_t* Get(uint64_t addr, uint64_t need, uint64_t want, uint64_t limit, uint64_t* have) {
    if (want > kBodyWindowBytes) {
      if (want > big_size_) {
        big_ = std::make_unique_for_overwrite<uint8_t[]>(want);
        big_size_ = want;
      }
      *have = core_.ReadDumpedMemory(addr, big_.get(), want);
      return *have >= need ? big_.get() : nullptr;
    }
    if (addr < start_ || addr + want > start_ + valid_) {
      uint64_t len = limit > addr ? limit - addr + 16 : want;
      len = std::clamp<uint64_t>(len, want, kBodyWindowBytes);
      start_ = addr;
      valid_ = core_.ReadDumpedMemory(addr, buf_.data(), len);
    }
    const uint64_t at = addr - start_;
    *have = std::min<uint64_t>(want, valid_ > at ? valid_ - at : 0);
    return *have >= need ? buf_.data() + at : nullptr;
  }

 private:
  const elf::CoreFile& core_;
  std::vector<uint8_t> buf_;
  std::unique_ptr<uint8_t[]> big_;
  uint64_t big_size_ = 0;
  uint64_t start_ = 0;
  uint64_t valid_ = 0;
};

namespace {

// Bytes ClrMD's ReferenceList spends on a pointer: 5 below 2^40, 6 below 2^48, else 8.
uint32_t EncodedSizeOf(uint64_t address) {
  address &= ~uint64_t{3};
  if ((address & 0xffffffffffull) == address) return 5;
  if ((address & 0xffffffffffffull) == address) return 6;
  return 8;
}

}  // namespace

// One thread's share of the walk: a run of segments in address order, with its own window,
// type cache and arrays (references as bit numbers until every part is done).
struct PartWalk {
  explicit PartWalk(const elf::CoreFile& core) : window(core) {}
  std::vector<HeapSegment> segments;
  uint64_t bytes = 0;
  uint64_t first_word = 0, last_word = 0;  // the start-bitmap words it may share with others
  Window window;
  std::vector<uint32_t> edge_begin;
  std::vector<uint32_t> edges;
  std::vector<uint64_t> pointers;  // has-pointers bits by local index
  uint32_t objects = 0;
  uint64_t unreadable = 0;
  std::vector<std::string> warnings;
  absl::Status status;
};

class HeapGraphBuilder {
 public:
  HeapGraphBuilder(DacProcess& dac, HeapGraph& g) : dac_(dac), g_(g) {}

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
    // References are stored as bit numbers (32-bit) until the walk is done.
    if (bits >= kMaxObjects) {
      return absl::ResourceExhaustedError(
          "the GC heap is too large for a heap graph (more than 32 GiB of segments)");
    }
    if (!g_.ranges_.empty()) {
      g_.uniform_encoded_size_ = EncodedSizeOf(g_.ranges_.front().start);
      for (const HeapGraph::Range& r : g_.ranges_) {
        if (EncodedSizeOf(r.start) != g_.uniform_encoded_size_ ||
            EncodedSizeOf(r.end - 1) != g_.uniform_encoded_size_) {
          g_.uniform_encoded_size_ = 0;
        }
      }
    }
    // Fresh pages are what this VM is slow at: every large array is reserved on huge pages.
    ReserveHuge(g_.starts_, static_cast<size_t>((bits + 63) / 64));
    g_.starts_.assign((bits + 63) / 64, 0);
    ASSIGN_OR_RETURN(UsefulGlobals globals, dac_.GetUsefulGlobals());
    string_mt_ = globals.string_mt;
    ASSIGN_OR_RETURN(auto context_map, dac_.GetAllocationContexts());
    // Allocation contexts sorted by start: the walk meets them in address order, so one
    // cursor replaces a lookup per object.
    contexts_.assign(context_map.begin(), context_map.end());
    std::sort(contexts_.begin(), contexts_.end());

    // The segments, in address order, cut into one run per thread of about equal bytes (a
    // cut only where no earlier segment reaches past the next one's start).
    std::vector<HeapSegment> sorted = segments;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const HeapSegment& a, const HeapSegment& b) { return a.start < b.start; });
    const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    std::vector<std::unique_ptr<PartWalk>> parts;
    parts.push_back(std::make_unique<PartWalk>(dac_.core()));
    uint64_t reach = 0;
    for (const HeapSegment& seg : sorted) {
      const uint64_t bytes = seg.end > seg.start ? seg.end - seg.start : 0;
      if (parts.back()->bytes * threads >= total && parts.size() < threads && seg.start >= reach &&
          !parts.back()->segments.empty()) {
        parts.push_back(std::make_unique<PartWalk>(dac_.core()));
      }
      parts.back()->segments.push_back(seg);
      parts.back()->bytes += bytes;
      reach = std::max(reach, seg.end);
    }
    for (auto& p : parts) {
      uint64_t lo = ~uint64_t{0}, hi = 0;
      for (const HeapSegment& seg : p->segments) {
        if (const HeapGraph::Range* r = g_.RangeOf(seg.start & ~(kPointerSize - 1))) {
          lo = std::min(lo, r->first_bit);
          hi = std::max(hi, r->first_bit + (r->end - r->start) / kPointerSize);
        }
      }
      p->first_word = lo >> 6;
      p->last_word = hi >> 6;
      // At most one object per 24 bytes and one reference per 8 bytes of the segments.
      const size_t max_objects = static_cast<size_t>(p->bytes / 24 + p->segments.size() + 1);
      ReserveHuge(p->edge_begin, max_objects + 1);
      ReserveHuge(p->edges, static_cast<size_t>(p->bytes / 8 + 1));
      ReserveHuge(p->pointers, max_objects / 64 + 1);
    }
    // Part 0 is walked on this thread (it alone reports progress, with every part's bytes).
    std::vector<std::thread> helpers;
    for (size_t k = 1; k < parts.size(); ++k) {
      helpers.emplace_back(
          [this, &parts, k, cancel, total] { Walk(*parts[k], cancel, nullptr, total); });
    }
    Walk(*parts[0], cancel, &progress, total);
    for (std::thread& t : helpers) t.join();
    uint64_t objects = 0;
    for (auto& p : parts) {
      RETURN_IF_ERROR(p->status);
      objects += p->objects;
    }
    if (objects >= kMaxObjects) {
      return absl::ResourceExhaustedError("the heap has too many objects for a heap graph");
    }
    g_.objects_ = static_cast<uint32_t>(objects);
    // Ranks, then the parts joined: has-pointers bits shifted into place, each part's
    // references' bit numbers turned into object indices, in place (values that are not an
    // object's start are dropped).
    ReserveHuge(g_.rank_, g_.starts_.size());
    g_.rank_.resize(g_.starts_.size());
    uint32_t rank = 0;
    for (size_t w = 0; w < g_.starts_.size(); ++w) {
      g_.rank_[w] = rank;
      rank += static_cast<uint32_t>(std::popcount(g_.starts_[w]));
    }
    g_.starts_v_ = g_.starts_;
    g_.rank_v_ = g_.rank_;
    if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("heap graph");
    g_.pointers_.assign(objects / 64 + 2, 0);
    uint64_t unreadable = 0;
    uint32_t first = 0;
    for (auto& p : parts) {
      for (size_t w = 0; w < p->pointers.size(); ++w) {
        const uint64_t at = first + 64 * uint64_t{w}, word = p->pointers[w];
        if (word == 0) continue;
        g_.pointers_[at >> 6] |= word << (at & 63);
        if ((at & 63) != 0) g_.pointers_[(at >> 6) + 1] |= word >> (64 - (at & 63));
      }
      for (std::string& w : p->warnings) g_.warnings_.push_back(std::move(w));
      unreadable += p->unreadable;
      HeapGraph::Part part;
      part.first = first;
      part.edge_begin = std::move(p->edge_begin);
      part.edges = std::move(p->edges);
      part.edge_begin.push_back(static_cast<uint32_t>(part.edges.size()));
      first += p->objects;
      g_.parts_.push_back(std::move(part));
    }
    if (unreadable != 0) {
      g_.warnings_.push_back(
          absl::StrCat(unreadable, " objects could not be read to follow their references"));
    }
    helpers.clear();
    for (size_t k = 1; k < g_.parts_.size(); ++k) {
      helpers.emplace_back([this, k] { Resolve(g_.parts_[k]); });
    }
    Resolve(g_.parts_[0]);
    for (std::thread& t : helpers) t.join();
    for (HeapGraph::Part& p : g_.parts_) {
      g_.edge_count_ += p.edges.size();
      p.edge_begin_v = p.edge_begin;
      p.edges_v = p.edges;
    }
    g_.pointers_v_ = g_.pointers_;
    // Dependent handles, sorted by (primary, secondary) as ClrMD sorts them.
    ASSIGN_OR_RETURN(std::vector<HandleEntry> handles, dac_.GetHandles(cancel));
    for (const HandleEntry& h : handles) {
      if (h.type != kHandleDependent || h.object == 0 || h.secondary == 0) continue;
      const uint32_t a = g_.IndexOf(h.object), b = g_.IndexOf(h.secondary);
      if (a != HeapGraph::kNone && b != HeapGraph::kNone) g_.dependents_.emplace_back(a, b);
    }
    std::sort(g_.dependents_.begin(), g_.dependents_.end());
    for (auto [a, b] : g_.dependents_) g_.dependent_targets_.push_back(b);
    if (progress) progress(total, total, g_.objects_);
    return absl::OkStatus();
  }

 private:
  struct Type {
    uint64_t mt = 0;
    bool valid = false;
    uint32_t base_size = 0;
    uint32_t component_size = 0;
    GcDesc desc;
  };
  static constexpr size_t kRecent = 64;
  // Per thread: a small direct-mapped cache in front of the shared map (heaps alternate
  // between few types); the DAC is asked under the lock, one thread at a time.
  struct TypeCache {
    Type* recent[kRecent] = {};
  };

  const Type* TypeOf(TypeCache& cache, uint64_t mt) {
    Type*& slot = cache.recent[(mt >> 3) & (kRecent - 1)];
    if (slot != nullptr && slot->mt == mt) return slot;
    std::lock_guard<std::mutex> lock(types_mu_);
    auto it = types_.find(mt);
    if (it == types_.end()) {
      auto t = std::make_unique<Type>();
      t->mt = mt;
      if (absl::StatusOr<MethodTableInfo> info = dac_.GetMethodTable(mt); info.ok()) {
        t->valid = true;
        t->base_size = info->base_size;
        t->component_size = info->component_size;
        if (info->contains_pointers) t->desc = ReadGcDesc(dac_, mt);
      }
      it = types_.emplace(mt, std::move(t)).first;
    }
    slot = it->second.get();
    return slot;
  }

  // References' bit numbers to object indices, in place.
  void Resolve(HeapGraph::Part& p) const {
    uint32_t out = 0, from = 0;
    const size_t n = p.edge_begin.size() - 1;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t end = p.edge_begin[i + 1];
      p.edge_begin[i] = out;
      for (; from < end; ++from) {
        const uint32_t bit = p.edges[from];
        if (((g_.starts_[bit >> 6] >> (bit & 63)) & 1) == 0) continue;
        p.edges[out++] = g_.RankOf(bit);
      }
    }
    p.edge_begin[n] = out;
    p.edges.resize(out);
  }

  // The heap walk of one part, as WalkHeap (heap_walk.h) walks it, over one window of memory
  // for headers and bodies alike.
  void Walk(PartWalk& part, const CancellationToken* cancel, const HeapGraph::ProgressFn* progress,
            uint64_t total) {
    TypeCache types;
    const HeapGraph::Range* range = nullptr;      // the range of the last object
    const HeapGraph::Range* ref_range = nullptr;  // the range of the last reference
    uint64_t done = 0;
    for (const HeapSegment& seg : part.segments) {
      const bool skip_contexts =
          seg.kind != SegmentKind::kLarge && seg.kind != SegmentKind::kFrozen;
      auto next = std::lower_bound(contexts_.begin(), contexts_.end(),
                                   std::pair<uint64_t, uint64_t>{seg.start, 0});
      auto skip_context = [&](uint64_t obj) {
        if (!skip_contexts) return obj;
        while (next != contexts_.end() && next->first < obj) ++next;
        while (next != contexts_.end() && next->first == obj) {
          const uint64_t after = next->second + kMinObjectBytes;
          if (after <= obj) return seg.end;  // Corrupt context: give up on this segment.
          obj = after;
          while (next != contexts_.end() && next->first < obj) ++next;
        }
        return obj;
      };
      uint64_t obj = skip_context(seg.start);
      while (obj < seg.end) {
        if ((part.objects & 0xffff) == 0) {
          if (cancel != nullptr && cancel->cancelled()) {
            part.status = absl::CancelledError("heap walk");
            return;
          }
          const uint64_t all = walked_.fetch_add(done, std::memory_order_relaxed) + done;
          done = 0;
          if (progress != nullptr && *progress) {
            (*progress)(all, total, all_objects_.load(std::memory_order_relaxed));
          }
        }
        uint64_t have = 0;
        // Large-object segments hold few, big objects, mostly without pointers: read their
        // headers alone rather than windows of their bodies.
        const uint64_t limit =
            seg.kind == SegmentKind::kLarge ? std::min(seg.end, obj + kHeaderWindow) : seg.end;
        const uint8_t* head = part.window.Get(obj, 8, 16, limit, &have);
        if (head == nullptr) {
          part.warnings.push_back(absl::StrCat(SegmentKindName(seg.kind), " segment 0x",
                                               absl::Hex(seg.address), ": object 0x",
                                               absl::Hex(obj), " is not in the dump"));
          break;
        }
        uint64_t mt;
        std::memcpy(&mt, head, sizeof(mt));
        mt &= ~uint64_t{7};
        const Type* t = mt == 0 ? nullptr : TypeOf(types, mt);
        if (t == nullptr || !t->valid) {
          part.warnings.push_back(absl::StrCat(
              SegmentKindName(seg.kind), " segment 0x", absl::Hex(seg.address), ": object 0x",
              absl::Hex(obj), " has an invalid MethodTable 0x", absl::Hex(mt)));
          break;
        }
        uint64_t size = t->base_size;
        if (t->component_size != 0) {
          if (have < 12) {
            part.warnings.push_back(
                absl::StrCat("object 0x", absl::Hex(obj), ": component count is not in the dump"));
            break;
          }
          uint32_t count;
          std::memcpy(&count, head + 8, sizeof(count));
          size += (uint64_t{count} + (mt == string_mt_ ? 1 : 0)) * t->component_size;
        }
        size = std::max<uint64_t>(size, kMinObjectBytes);
        const uint64_t footprint = (size + 7) & ~uint64_t{7};
        // Add the object.
        if (part.objects >= kMaxObjects) {
          part.status =
              absl::ResourceExhaustedError("the heap has too many objects for a heap graph");
          return;
        }
        const uint32_t index = part.objects++;
        if ((index & 0xfff) == 0) all_objects_.fetch_add(0x1000, std::memory_order_relaxed);
        if ((index & 63) == 0) part.pointers.push_back(0);
        part.edge_begin.push_back(static_cast<uint32_t>(part.edges.size()));
        if (range == nullptr || obj < range->start || obj >= range->end) range = g_.RangeOf(obj);
        if (range != nullptr) {
          const uint64_t bit = range->first_bit + (obj - range->start) / kPointerSize;
          const uint64_t w = bit >> 6, mask = uint64_t{1} << (bit & 63);
          if (w == part.first_word || w == part.last_word) {
            __atomic_fetch_or(&g_.starts_[w], mask, __ATOMIC_RELAXED);
          } else {
            g_.starts_[w] |= mask;
          }
        }
        if (!t->desc.empty()) {
          part.pointers.back() |= uint64_t{1} << (index & 63);
          const uint8_t* body = part.window.Get(obj, kPointerSize, size, seg.end, &have);
          if (body == nullptr || have < size) ++part.unreadable;
          if (body != nullptr) {
            ForEachPointerSlot(t->desc, body, have, size, [&](uint64_t, uint64_t p) {
              if ((p & (kPointerSize - 1)) != 0) return;
              if (ref_range == nullptr || p < ref_range->start || p >= ref_range->end) {
                const HeapGraph::Range* r = g_.RangeOf(p);
                if (r == nullptr) return;
                ref_range = r;
              }
              part.edges.push_back(static_cast<uint32_t>(ref_range->first_bit +
                                                         (p - ref_range->start) / kPointerSize));
            });
          }
        }
        done += footprint;
        obj = skip_context(obj + footprint);
      }
    }
    walked_.fetch_add(done, std::memory_order_relaxed);
  }

  DacProcess& dac_;
  HeapGraph& g_;
  uint64_t string_mt_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> contexts_;
  std::mutex types_mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Type>> types_;
  std::atomic<uint64_t> walked_{0};       // bytes walked by every part
  std::atomic<uint64_t> all_objects_{0};  // objects walked by every part (in 4096s)
};

absl::StatusOr<std::unique_ptr<HeapGraph>> HeapGraph::Build(DacProcess& dac,
                                                            const CancellationToken* cancel,
                                                            const ProgressFn& progress) {
  // NOLINTNEXTLINE(modernize-make-unique): the constructor is private to Build.
  auto g = std::unique_ptr<HeapGraph>(new HeapGraph());
  HeapGraphBuilder builder(dac, *g);
  RETURN_IF_ERROR(builder.Run(cancel, progress));
  return g;
}

// --- The graph in a file ----------------------------------------------------------------
//
// A header (magic, the dump's key, counts), then the arrays as they are in memory: ranges,
// start bitmap, has-pointers bits, edge offsets (one part), edges, dependent pairs, and the
// warnings (length, bytes). Ranks are recomputed on load. Everything is checked on load, so a
// damaged file is refused, never trusted.

namespace {

constexpr char kGraphMagic[8] = {'C', 'L', 'R', 'D', 'H', 'G', '0', '1'};
constexpr size_t kKeyWords = 4;

struct FileHeader {
  char magic[8];
  uint64_t key[kKeyWords];
  uint64_t objects, uniform_encoded_size, ranges, starts, pointers, edges, dependents, warnings;
};

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) { buf_.reserve(kBytes); }
  void Put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    while (n > 0 && ok_) {
      const size_t k = std::min(n, kBytes - buf_.size());
      buf_.insert(buf_.end(), b, b + k);
      b += k;
      n -= k;
      if (buf_.size() == kBytes) Flush();
    }
  }
  template <typename T>
  void Put(const std::vector<T>& v) {
    Put(v.data(), v.size() * sizeof(T));
  }
  bool Flush() {
    size_t off = 0;
    while (ok_ && off < buf_.size()) {
      const ssize_t w = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ok_ = false;
      if (w > 0) off += static_cast<size_t>(w);
    }
    buf_.clear();
    return ok_;
  }

 private:
  static constexpr size_t kBytes = size_t{1} << 20;
  int fd_;
  bool ok_ = true;
  std::vector<uint8_t> buf_;
};

}  // namespace

HeapGraph::Mapping::~Mapping() {
  if (data != nullptr) ::munmap(data, size);
}

absl::Status HeapGraph::Save(const std::string& path, std::span<const uint64_t> key) const {
  if (key.size() != kKeyWords) return absl::InvalidArgumentError("heap graph key");
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", tmp));
  FileHeader h{};
  std::memcpy(h.magic, kGraphMagic, sizeof(h.magic));
  for (size_t k = 0; k < kKeyWords; ++k) h.key[k] = key[k];
  h.objects = objects_;
  h.uniform_encoded_size = uniform_encoded_size_;
  h.ranges = ranges_.size();
  h.starts = starts_v_.size();
  h.pointers = pointers_v_.size();
  h.edges = edge_count_;
  h.dependents = dependents_.size();
  h.warnings = warnings_.size();
  Writer w(fd);
  w.Put(&h, sizeof(h));
  w.Put(ranges_);
  w.Put(starts_v_.data(), starts_v_.size_bytes());
  w.Put(pointers_v_.data(), pointers_v_.size_bytes());
  w.Put(rank_v_.data(), rank_v_.size_bytes());
  uint64_t base = 0;
  for (const Part& p : parts_) {
    for (size_t j = 0; j + 1 < p.edge_begin_v.size(); ++j) {
      const uint32_t e = static_cast<uint32_t>(base + p.edge_begin_v[j]);
      w.Put(&e, sizeof(e));
    }
    base += p.edges_v.size();
  }
  const uint32_t last = static_cast<uint32_t>(base);
  w.Put(&last, sizeof(last));
  for (const Part& p : parts_) w.Put(p.edges_v.data(), p.edges_v.size_bytes());
  w.Put(dependents_);
  for (const std::string& s : warnings_) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    w.Put(&n, sizeof(n));
    w.Put(s.data(), s.size());
  }
  const bool ok = w.Flush();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return absl::ErrnoToStatus(e, absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

// The file is mapped, not read: its pages are already in the page cache, and mapping them
// costs less than filling fresh memory with a copy.
absl::StatusOr<std::unique_ptr<HeapGraph>> HeapGraph::Load(const std::string& path,
                                                           std::span<const uint64_t> key) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const uint64_t file_size = stat_ok ? static_cast<uint64_t>(st.st_size) : 0;
  auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(path, ": not a usable heap graph (", what, ")"));
  };
  if (file_size < sizeof(FileHeader)) {
    ::close(fd);
    return bad("too short");
  }
  void* data = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (data == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrCat("cannot map ", path));
  // NOLINTNEXTLINE(modernize-make-unique): the constructor is private.
  auto g = std::unique_ptr<HeapGraph>(new HeapGraph());
  g->mapping_ = std::make_unique<Mapping>();
  g->mapping_->data = data;
  g->mapping_->size = file_size;
  const auto* bytes = static_cast<const uint8_t*>(data);
  FileHeader h{};
  std::memcpy(&h, bytes, sizeof(h));
  if (std::memcmp(h.magic, kGraphMagic, sizeof(h.magic)) != 0) return bad("header");
  if (key.size() != kKeyWords || !std::equal(key.begin(), key.end(), h.key)) {
    return bad("made for another dump");
  }
  if (h.objects >= kMaxObjects || h.edges >= kMaxObjects || h.uniform_encoded_size > 8 ||
      h.ranges > file_size || h.starts > file_size || h.pointers > file_size ||
      h.dependents > file_size || h.warnings > file_size) {
    return bad("counts");
  }
  uint64_t at = sizeof(FileHeader);
  // The next `n` elements of T, or an empty span when the file is too short.
  auto take = [&]<typename T>(uint64_t n, const T*) -> std::span<const T> {
    if (at % alignof(T) != 0 || n > (file_size - at) / sizeof(T)) {
      at = file_size + 1;
      return {};
    }
    std::span<const T> v(reinterpret_cast<const T*>(bytes + at), static_cast<size_t>(n));
    at += n * sizeof(T);
    return v;
  };
  const auto ranges = take(h.ranges, static_cast<const Range*>(nullptr));
  g->starts_v_ = take(h.starts, static_cast<const uint64_t*>(nullptr));
  g->pointers_v_ = take(h.pointers, static_cast<const uint64_t*>(nullptr));
  g->rank_v_ = take(h.starts, static_cast<const uint32_t*>(nullptr));
  Part part;
  part.edge_begin_v = take(h.objects + 1, static_cast<const uint32_t*>(nullptr));
  part.edges_v = take(h.edges, static_cast<const uint32_t*>(nullptr));
  using Pair = std::pair<uint32_t, uint32_t>;
  const auto dependents = take(h.dependents, static_cast<const Pair*>(nullptr));
  if (at > file_size) return bad("truncated");
  for (uint64_t k = 0; k < h.warnings; ++k) {
    uint32_t n = 0;
    if (file_size - at < sizeof(n)) return bad("truncated");
    std::memcpy(&n, bytes + at, sizeof(n));
    at += sizeof(n);
    if (file_size - at < n) return bad("truncated");
    g->warnings_.emplace_back(reinterpret_cast<const char*>(bytes + at), n);
    at += n;
  }
  g->objects_ = static_cast<uint32_t>(h.objects);
  g->uniform_encoded_size_ = static_cast<uint32_t>(h.uniform_encoded_size);
  g->ranges_.assign(ranges.begin(), ranges.end());
  g->dependents_.assign(dependents.begin(), dependents.end());
  // What every lookup relies on, checked here because it is cheap: the segments, the sizes of
  // the arrays, the object count (the last rank), the first and last offsets. The rest (each
  // rank, offset and reference) is checked where it is read (see HeapGraph::damaged).
  uint64_t bits = 0, prev_end = 0;
  for (const Range& r : g->ranges_) {
    if (r.first_bit != bits || r.end <= r.start || r.start < prev_end) return bad("ranges");
    bits += (r.end - r.start + kPointerSize - 1) / kPointerSize;
    prev_end = r.end;
  }
  if (bits >= kMaxObjects || g->starts_v_.size() != (bits + 63) / 64) return bad("start bitmap");
  if (g->pointers_v_.size() < (h.objects + 63) / 64) return bad("pointer bits");
  if (g->starts_v_.empty()
          ? h.objects != 0
          : g->rank_v_.front() != 0 ||
                g->rank_v_.back() + static_cast<uint64_t>(std::popcount(g->starts_v_.back())) !=
                    h.objects) {
    return bad("object count");
  }
  if (part.edge_begin_v.front() != 0 || part.edge_begin_v.back() != h.edges) return bad("edges");
  for (auto [a, b] : g->dependents_) {
    if (a >= h.objects || b >= h.objects) return bad("dependent handles");
  }
  if (!std::is_sorted(g->dependents_.begin(), g->dependents_.end())) return bad("dependents");
  for (auto [a, b] : g->dependents_) g->dependent_targets_.push_back(b);
  g->edge_count_ = h.edges;
  g->parts_.push_back(std::move(part));
  return g;
}

uint64_t HeapGraph::address(uint32_t i) const {
  if (i >= objects_) return 0;
  // The word holding the (i+1)-th set bit, then the bit within it.
  auto it = std::upper_bound(rank_v_.begin(), rank_v_.end(), i);
  if (it == rank_v_.begin()) {  // a damaged file: ranks out of order
    damaged_ = true;
    return 0;
  }
  size_t w = static_cast<size_t>(it - rank_v_.begin()) - 1;
  uint64_t word = starts_v_[w];
  for (uint32_t k = i - rank_v_[w]; k > 0 && word != 0; --k) word &= word - 1;
  if (word == 0) {
    damaged_ = true;
    return 0;
  }
  const uint64_t bit = w * 64 + static_cast<uint64_t>(std::countr_zero(word));
  auto r = std::upper_bound(ranges_.begin(), ranges_.end(), bit,
                            [](uint64_t b, const Range& x) { return b < x.first_bit; });
  --r;
  return r->start + (bit - r->first_bit) * kPointerSize;
}

uint32_t HeapGraph::EncodedSize(uint32_t i) const {
  return uniform_encoded_size_ != 0 ? uniform_encoded_size_ : EncodedSizeOf(address(i));
}

const HeapGraph::Range* HeapGraph::RangeOf(uint64_t address) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.start; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

__attribute__((target("popcnt"))) uint32_t HeapGraph::RankOf(uint64_t bit) const {
  const uint64_t below = starts_v_[bit >> 6] & ((uint64_t{1} << (bit & 63)) - 1);
  const uint64_t rank =
      uint64_t{rank_v_[bit >> 6]} + static_cast<uint64_t>(__builtin_popcountll(below));
  if (rank >= objects_) {  // a damaged file
    damaged_ = true;
    return kNone;
  }
  return static_cast<uint32_t>(rank);
}

uint32_t HeapGraph::IndexOf(uint64_t address) const {
  if ((address & (kPointerSize - 1)) != 0) return kNone;
  const Range* r = RangeOf(address);
  if (r == nullptr) return kNone;
  const uint64_t bit = r->first_bit + (address - r->start) / kPointerSize;
  if (((starts_v_[bit >> 6] >> (bit & 63)) & 1) == 0) return kNone;
  return RankOf(bit);
}

uint32_t HeapGraph::ContainingObject(uint64_t address) const {
  const uint64_t aligned = address & ~(kPointerSize - 1);
  const Range* r = RangeOf(aligned);
  if (r == nullptr) return kNone;
  uint64_t bit = r->first_bit + (aligned - r->start) / kPointerSize;
  for (;;) {
    if ((starts_v_[bit >> 6] >> (bit & 63)) & 1) return RankOf(bit);
    if (bit == r->first_bit) return kNone;
    --bit;
  }
}

std::span<const uint32_t> HeapGraph::Dependents(uint32_t i) const {
  auto lo =
      std::lower_bound(dependents_.begin(), dependents_.end(), std::pair<uint32_t, uint32_t>{i, 0});
  size_t b = static_cast<size_t>(lo - dependents_.begin()), e = b;
  while (e < dependents_.size() && dependents_[e].first == i) ++e;
  return {dependent_targets_.data() + b, dependent_targets_.data() + e};
}

// --- PathFinder -------------------------------------------------------------------------

constexpr uint32_t kListBytes = 32;  // ClrMD's ReferenceList.DataSize

PathFinder::PathFinder(const HeapGraph& graph, uint32_t target, const CancellationToken* cancel,
                       bool follow_dependents)
    : graph_(graph), target_(target), cancel_(cancel), follow_dependents_(follow_dependents) {
  ReserveHuge(seen_, (graph.size() + 63) / 64);
  seen_.assign((graph.size() + 63) / 64, 0);
}

std::vector<uint32_t> PathFinder::ChainFrom(uint32_t obj) const {
  std::vector<uint32_t> chain;
  while (obj != HeapGraph::kNone && obj != kEnd && chain.size() <= graph_.size()) {
    chain.push_back(obj);
    obj = Found(obj);
  }
  return chain;
}

bool PathFinder::Walk(uint32_t parent, uint32_t obj) {
  if (obj == target_) {
    found_[obj] = kEnd;
    return true;
  }
  if (!graph_.contains_pointers(obj)) return false;
  const uint32_t header =
      1 + graph_.EncodedSize(obj) + (parent == HeapGraph::kNone ? 0 : graph_.EncodedSize(parent));
  bool open = false;
  uint32_t used = 0;
  auto consider = [&](uint32_t r) {
    if (Found(r) != HeapGraph::kNone) {
      found_[obj] = r;
      return true;
    }
    if (Seen(r)) return false;
    SetSeen(r, true);
    const uint32_t need = graph_.EncodedSize(r);
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
    if (r >= graph_.size()) {  // a damaged graph file: the command builds the graph again
      graph_.MarkDamaged();
      continue;
    }
    if (consider(r)) return hit();
  }
  if (open) stack_.back().end = static_cast<uint32_t>(pending_.size());
  return false;
}

absl::StatusOr<std::vector<uint32_t>> PathFinder::FindPathFrom(uint32_t start) {
  if (start >= graph_.size()) return std::vector<uint32_t>{};
  if (Found(start) != HeapGraph::kNone) return ChainFrom(start);
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
    found_.emplace(holder, child);
    SetSeen(holder, false);
    uint32_t last = holder, prev = holder;
    for (size_t k = stack_.size(); k-- > 0;) {
      const List& l = stack_[k];
      if (l.object == last) continue;
      last = l.object;
      if (parent != HeapGraph::kNone && l.object == parent) {
        found_.emplace(l.object, prev);
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
