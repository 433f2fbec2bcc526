// The managed heap as a graph of object references (gcroot, pathto), and objects read on
// demand (objsize).
//
// HeapGraph is built in one sequential pass over the heap, in WalkHeap's order and with its
// rules, headers and bodies read through one 4 MiB window of the dump: every object gets a dense
// index (address order) and the references its GCDesc names, resolved to indices. Per object
// the graph keeps only a 32-bit edge offset and a has-pointers bit, per reference one 32-bit
// index, plus a start bitmap with ranks (address -> index in two lookups): about 8 bytes per
// object and 4 per reference, reserved up front (no reallocation) on transparent huge pages —
// in this VM fresh memory, not the dump, was what the first version spent its time on.
//
// PathFinder reproduces dotnet-dump's search (ClrMD 4.2.7479's GCRoot) so that it prints the
// same chains: a depth-first search from one object that remembers across calls which objects
// it has seen and which reach the target, with ClrMD's 32-byte pending-reference lists (their
// capacity decides the order siblings are visited in), and ClrMD's habit of leaving the
// unwalked children of a successful search marked as seen.
//
// ObjectReader reads single objects and their transitive closure (ObjSize's breadth-first order)
// straight from the dump, without a heap walk: objsize costs what it reaches.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"
#include "core/dac/gc_roots.h"

namespace clrdiag::dac {

class HeapGraph {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  // Progress of Build: bytes of the heap walked so far, of `total`.
  using ProgressFn = std::function<void(uint64_t done, uint64_t total, uint64_t objects)>;

  static absl::StatusOr<std::unique_ptr<HeapGraph>> Build(DacProcess& dac,
                                                          const CancellationToken* cancel,
                                                          const ProgressFn& progress = {});

  // The graph kept in a file between sessions (a cache: gcroot of the same dump in a later
  // session skips the heap pass). `key` names the dump (device, inode, size, modification
  // time): a file made for another dump, or one that is damaged, is refused with an error.
  // Save writes a temporary file and renames it over `path`.
  absl::Status Save(const std::string& path, std::span<const uint64_t> key) const;
  static absl::StatusOr<std::unique_ptr<HeapGraph>> Load(const std::string& path,
                                                         std::span<const uint64_t> key);

  uint32_t size() const { return objects_; }
  // The address of object `i` (a select over the start bitmap: for output, not loops).
  uint64_t address(uint32_t i) const;
  // Bytes ClrMD's GCRoot spends on object i's address in a pending list (5, 6 or 8).
  uint32_t EncodedSize(uint32_t i) const;
  bool contains_pointers(uint32_t i) const { return (pointers_v_[i >> 6] >> (i & 63)) & 1; }
  // The index of the object starting at `address`, or kNone.
  uint32_t IndexOf(uint64_t address) const;
  // The index of the last object starting at or below `address` in its segment, or kNone.
  uint32_t ContainingObject(uint64_t address) const;
  // The object's references in GCDesc order (null slots and values that are not the start of
  // a heap object left out; duplicates kept).
  // (A graph file is checked as it is read: offsets out of order or past the references mark
  // the graph damaged and give no references; a reference past the last object, which the
  // caller must check against size(), likewise: see MarkDamaged.)
  std::span<const uint32_t> References(uint32_t i) const {
    const Part& p = PartOf(i);
    const uint32_t j = i - p.first;
    const uint32_t b = p.edge_begin_v[j], e = p.edge_begin_v[j + 1];
    if (b > e || e > p.edges_v.size()) {
      damaged_ = true;
      return {};
    }
    return {p.edges_v.data() + b, p.edges_v.data() + e};
  }
  // A graph mapped from a file is checked at Load only where that is cheap (header, key,
  // sizes, segments, dependent handles, the first and last offsets); the rest — offsets,
  // references, ranks — is checked as the lookups read it, so that a session reads only the
  // pages its search visits. Whatever is out of range is never used: the lookup answers
  // "none" and the graph is marked damaged; the command then drops the graph (and its
  // file), builds it again and answers from that (see cmd_roots.cc).
  bool damaged() const { return damaged_; }
  void MarkDamaged() const { damaged_ = true; }
  // The secondaries of the dependent handles whose primary is `i`, sorted by address.
  std::span<const uint32_t> Dependents(uint32_t i) const;

  uint64_t edges() const { return edge_count_; }
  // Segments whose walk stopped early, objects that could not be read: one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct Range {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t first_bit = 0;
  };
  const Range* RangeOf(uint64_t address) const;
  uint32_t RankOf(uint64_t bit) const;

  uint32_t objects_ = 0;
  // Per object only what the searches need: where its references start (objects in address
  // order), and one bit for "its type has pointers". References are object indices.
  // The graph is built by one thread per run of segments, and each run's arrays are kept as
  // they are (joining them would copy them into fresh memory): objects [first, next part's
  // first) are part k's, their references in edges[edge_begin[i - first] ...].
  struct Part {
    uint32_t first = 0;
    std::vector<uint32_t> edge_begin;  // objects + 1 entries
    std::vector<uint32_t> edges;
    // What the lookups read: the vectors above, or a graph file's mapping (Load).
    std::span<const uint32_t> edge_begin_v, edges_v;
  };
  const Part& PartOf(uint32_t i) const {
    size_t k = parts_.size() - 1;
    while (k > 0 && parts_[k].first > i) --k;
    return parts_[k];
  }
  std::vector<Part> parts_;
  uint64_t edge_count_ = 0;
  std::vector<uint64_t> pointers_;
  std::vector<std::pair<uint32_t, uint32_t>> dependents_;  // (primary, secondary), sorted
  std::vector<uint32_t> dependent_targets_;                // secondaries, in dependents_ order
  // Object starts: one bit per 8-byte word of the segments, and the number of set bits
  // before each 64-bit word (the rank), so that address → index is two lookups.
  std::vector<Range> ranges_;
  std::vector<uint64_t> starts_;
  std::vector<uint32_t> rank_;
  // The views the lookups read: of the vectors above, or of a graph file mapped by Load.
  std::span<const uint64_t> starts_v_, pointers_v_;
  std::span<const uint32_t> rank_v_;
  struct Mapping {
    void* data = nullptr;
    size_t size = 0;
    ~Mapping();
  };
  std::unique_ptr<Mapping> mapping_;
  uint32_t uniform_encoded_size_ = 0;  // the one EncodedSize of every range, or 0
  mutable bool damaged_ = false;
  std::vector<std::string> warnings_;
  friend class HeapGraphBuilder;
};

// dotnet-dump's `gcroot` search (ClrMD's GCRoot with a target): FindPathFrom(root object)
// returns the chain of object indices from it to the target, or an empty vector. State is
// kept across calls as ClrMD keeps it: objects already known to reach the target end a later
// chain early (joining the earlier chain), and objects seen by earlier searches are skipped.
class PathFinder {
 public:
  PathFinder(const HeapGraph& graph, uint32_t target, const CancellationToken* cancel,
             bool follow_dependents = true);
  absl::StatusOr<std::vector<uint32_t>> FindPathFrom(uint32_t start);

 private:
  struct List {  // One of ClrMD's 32-byte pending-reference lists.
    uint32_t object;
    uint32_t parent;  // kNone for the search's start
    uint32_t begin;   // children in pending_[begin, end), next one at cursor
    uint32_t end;
    uint32_t cursor;
  };
  // Expands `obj` (reached from `parent`): true if it is or directly leads to a found object.
  bool Walk(uint32_t parent, uint32_t obj);
  std::vector<uint32_t> ChainFrom(uint32_t obj) const;
  bool Seen(uint32_t i) const { return (seen_[i >> 6] >> (i & 63)) & 1; }
  void SetSeen(uint32_t i, bool on) {
    if (on) {
      seen_[i >> 6] |= uint64_t{1} << (i & 63);
    } else {
      seen_[i >> 6] &= ~(uint64_t{1} << (i & 63));
    }
  }

  const HeapGraph& graph_;
  const uint32_t target_;
  const CancellationToken* cancel_;
  const bool follow_dependents_;
  std::vector<uint64_t> seen_;
  // found_[i]: kNone = not known to reach the target; kEnd = i is the target; else the next
  // object of i's chain.
  static constexpr uint32_t kEnd = 0xfffffffeu;
  std::unordered_map<uint32_t, uint32_t> found_;
  uint32_t Found(uint32_t i) const {
    auto it = found_.find(i);
    return it == found_.end() ? HeapGraph::kNone : it->second;
  }
  std::vector<List> stack_;
  std::vector<uint32_t> pending_;
};

// One heap object read on demand.
struct ObjectRef {
  uint64_t address = 0;
  uint64_t mt = 0;
  uint64_t size = 0;  // as dumpheap reports it
};

// Reads objects one at a time from the dump, without walking the heap: for commands that
// look at a few objects and what they reach (objsize). Validity is ClrMD's: the address lies
// in a heap segment and starts with a MethodTable the DAC knows.
class ObjectReader {
 public:
  static absl::StatusOr<std::unique_ptr<ObjectReader>> Create(DacProcess& dac,
                                                              const CancellationToken* cancel);
  // (The reader lives for the session; each call takes its command's cancellation token.)
  // The object at `address`, or nullopt if there is none.
  std::optional<ObjectRef> Read(uint64_t address);
  // The objects reachable from `start` (themselves first; invalid ones left out),
  // breadth-first in reference order, each once — ObjSize's transitive closure, with the
  // secondaries of dependent handles as references.
  absl::StatusOr<std::vector<ObjectRef>> Closure(std::span<const uint64_t> start,
                                                 const CancellationToken* cancel);

 private:
  explicit ObjectReader(DacProcess& dac) : dac_(dac) {}
  struct TypeInfo {
    bool valid = false;
    MethodTableInfo info;
    GcDesc desc;
  };
  const TypeInfo* TypeOf(uint64_t mt);

  DacProcess& dac_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;      // segments [start, end), sorted
  std::vector<std::pair<uint64_t, uint64_t>> dependents_;  // (primary, secondary), sorted
  uint64_t string_mt_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<TypeInfo>> types_;
  std::vector<uint8_t> buf_;
};

}  // namespace clrdiag::dac
