// eeheap's loader part: the loader heaps of each app domain's LoaderAllocator and the JIT
// managers' code heaps, in EEHeapCommand's layout.
#include <algorithm>
#include <map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/gc_commands.h"

namespace clrdiag::sos::gc {
namespace {

// ---- eeheap -loader -----------------------------------------------------------------------

// EEHeapCommand's order of the loader heap kinds.
int LoaderKindOrder(const std::string& kind) {
  static const std::vector<std::string> kOrder = {
      "LowFrequencyHeap",    "HighFrequencyHeap", "StubHeap",
      "ExecutableHeap",      "FixupPrecodeHeap",  "NewStubPrecodeHeap",
      "IndirectionCellHeap", "LookupHeap",        "ResolveHeap",
      "DispatchHeap",        "CacheEntryHeap",    "VtableHeap"};
  for (size_t i = 0; i < kOrder.size(); ++i) {
    if (kOrder[i] == kind) return static_cast<int>(i);
  }
  return 100;
}

// The runtime's heap names as ClrMD's NativeHeapKind prints them.
std::string LoaderKindName(const std::string& name) {
  static const std::map<std::string, std::string> kKnown = {
      {"LowFrequencyHeap", "LowFrequencyHeap"},
      {"HighFrequencyHeap", "HighFrequencyHeap"},
      {"StubHeap", "StubHeap"},
      {"ExecutableHeap", "ExecutableHeap"},
      {"FixupPrecodeHeap", "FixupPrecodeHeap"},
      {"NewStubPrecodeHeap", "NewStubPrecodeHeap"},
      {"IndcellHeap", "IndirectionCellHeap"},
      {"LookupHeap", "LookupHeap"},
      {"ResolveHeap", "ResolveHeap"},
      {"DispatchHeap", "DispatchHeap"},
      {"CacheEntryHeap", "CacheEntryHeap"},
      {"VtableHeap", "VtableHeap"}};
  auto it = kKnown.find(name);
  return it == kKnown.end() ? "Unknown" : it->second;
}

struct LoaderTotals {
  uint64_t size = 0, wasted = 0;
};

class LoaderPrinter {
 public:
  LoaderPrinter(CommandContext& ctx, const LoaderFilter& filter) : ctx_(ctx), filter_(filter) {}

  // EEHeapCommand.IsIncludedInFilter: the block starts in the range, or its last byte is in it.
  bool Included(const dac::LoaderHeapBlock& b) const {
    if (!filter_.has_range) return true;
    auto in = [&](uint64_t a) { return a >= filter_.start && a < filter_.end; };
    return in(b.start) || (b.size > 0 && in(b.start + b.size - 1));
  }
  std::string TotalLabel() const { return filter_.partial ? "Partial size:" : "Total size:"; }

  std::string out;
  Json json = Json::object();

  // "start(size:actual)" for a block; adds its actual size and waste.
  void Block(std::string& text, const dac::LoaderHeapBlock& b, LoaderTotals& t) {
    absl::StrAppend(&text, Ptr(b.start));
    if (b.size == 0) return;
    const uint64_t actual = ActualSize(b.start, b.size);
    absl::StrAppend(&text, absl::StrFormat("(%x:%x)", b.size, actual));
    t.size += actual;
    if (actual < b.size && !b.current) t.wasted += b.size - actual;
  }

  static std::string SizeAndWasted(const LoaderTotals& t) {
    std::string s = absl::StrCat("Size: ", MemorySize(t.size), " bytes total");
    if (t.wasted > 0) absl::StrAppend(&s, ", ", MemorySize(t.wasted), " bytes wasted");
    return s;
  }

  void Row(const std::string& label, const std::string& value) {
    absl::StrAppend(&out, Left(label, 21), " ", value, "\n");
  }
  void Divider() { out += std::string(40, '-') + "\n"; }

  // One domain; returns the bytes its unseen heaps hold.
  uint64_t Domain(const std::string& label, uint64_t domain, Json& list) {
    Row(label, Ptr(domain));
    Json d = {{"name", label.substr(0, label.size() - 1)}, {"address", JsonHex(domain)}};
    auto la = ctx_.dac.GetDomainLoaderAllocator(domain);
    if (!la.ok()) {
      status_ = la.status();
      return 0;
    }
    std::vector<dac::LoaderHeap> heaps;
    if (*la != 0) {
      // The reference (ClrMD 4.2) prints, and tells domains apart by, the domain's own address
      // on this line; the heaps are those of the domain's real LoaderAllocator (in the JSON).
      Row("LoaderAllocator:", Ptr(domain));
      d["loader_allocator"] = JsonHex(*la);
      if (!seen_.insert(domain).second) {
        list.push_back(d);
        return 0;
      }
      auto got = ctx_.dac.GetLoaderAllocatorHeaps(*la);
      if (!got.ok()) {
        status_ = got.status();
        return 0;
      }
      heaps = std::move(*got);
    }
    // Group by kind (first-seen order), keep blocks not seen before, order the groups.
    std::vector<std::pair<std::string, std::vector<dac::LoaderHeapBlock>>> groups;
    for (const dac::LoaderHeap& h : heaps) {
      const std::string kind = LoaderKindName(h.kind);
      for (const dac::LoaderHeapBlock& b : h.blocks) {
        if (!Included(b) || !seen_.insert(b.start).second) continue;
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const auto& g) { return g.first == kind; });
        if (it == groups.end()) {
          groups.push_back({kind, {}});
          it = std::prev(groups.end());
        }
        it->second.push_back(b);
      }
    }
    std::stable_sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
      return LoaderKindOrder(a.first) < LoaderKindOrder(b.first);
    });
    LoaderTotals total;
    Json jheaps = Json::array();
    for (const auto& [kind, blocks] : groups) {
      std::string text;
      LoaderTotals t;
      Json jblocks = Json::array();
      for (const dac::LoaderHeapBlock& b : blocks) {
        if (!text.empty()) text += ' ';
        LoaderTotals one;
        Block(text, b, one);
        t.size += one.size;
        t.wasted += one.wasted;
        jblocks.push_back({{"start", JsonHex(b.start)}, {"size", b.size}, {"actual", one.size}});
      }
      absl::StrAppend(&text, " ", SizeAndWasted(t), ".");
      Row(kind + ":", text);
      jheaps.push_back(
          {{"kind", kind}, {"blocks", jblocks}, {"size", t.size}, {"wasted", t.wasted}});
      total.size += t.size;
      total.wasted += t.wasted;
    }
    if (total.size > 0) {
      Row(TotalLabel(), SizeAndWasted(total) + ".");
    } else {
      out += "No unique loader heaps found.\n";
    }
    Divider();
    d["heaps"] = jheaps;
    d["size"] = total.size;
    d["wasted"] = total.wasted;
    list.push_back(d);
    return total.size;
  }

  uint64_t JitManagers(Json& list) {
    auto managers = ctx_.dac.GetJitManagers();
    if (!managers.ok()) {
      status_ = managers.status();
      return 0;
    }
    uint64_t all = 0;
    for (uint64_t m : *managers) {
      Row("JIT Manager:", Ptr(m));
      auto heaps = ctx_.dac.GetCodeHeaps(m);
      if (!heaps.ok()) {
        status_ = heaps.status();
        return all;
      }
      struct One {
        std::string kind;
        dac::LoaderHeapBlock block;
      };
      std::vector<One> blocks;
      for (const dac::LoaderHeap& h : *heaps) {
        for (const dac::LoaderHeapBlock& b : h.blocks) {
          if (Included(b)) blocks.push_back({h.kind, b});
        }
      }
      // By kind (NativeHeapKind order: Unknown, LoaderCodeHeap, HostCodeHeap), then start.
      auto order = [](const std::string& k) {
        return k == "Unknown" ? 0 : k == "LoaderCodeHeap" ? 1 : 2;
      };
      std::stable_sort(blocks.begin(), blocks.end(), [&](const One& a, const One& b) {
        if (order(a.kind) != order(b.kind)) return order(a.kind) < order(b.kind);
        return a.block.start < b.block.start;
      });
      LoaderTotals total;
      Json jheaps = Json::array();
      for (const One& o : blocks) {
        std::string text;
        LoaderTotals t;
        Block(text, o.block, t);
        absl::StrAppend(&text, " ", SizeAndWasted(t), ".");
        Row(o.kind + ":", text);
        jheaps.push_back({{"kind", o.kind},
                          {"start", JsonHex(o.block.start)},
                          {"size", o.block.size},
                          {"actual", t.size}});
        total.size += t.size;
        total.wasted += t.wasted;
      }
      Row(TotalLabel(), SizeAndWasted(total) + ".");
      Divider();
      list.push_back({{"address", JsonHex(m)}, {"heaps", jheaps}, {"size", total.size}});
      all += total.size;
    }
    return all;
  }

  absl::Status status() const { return status_; }

 private:
  // Bytes of the block the dump holds, a page at a time from its start (as the reference).
  uint64_t ActualSize(uint64_t start, uint64_t size) {
    constexpr uint64_t kPage = 0x1000;
    uint8_t page[kPage];
    uint64_t actual = 0;
    for (uint64_t a = start; a < start + size; a += kPage) {
      if (ctx_.core.ReadDumpedMemory(a, page, kPage) == 0) break;
      actual += kPage;
    }
    return actual;
  }

  CommandContext& ctx_;
  LoaderFilter filter_;
  std::unordered_set<uint64_t> seen_;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<uint64_t> PrintLoaderHeaps(CommandContext& ctx, std::string* out, Json* json,
                                          const LoaderFilter& filter) {
  LoaderPrinter p(ctx, filter);
  auto store = ctx.dac.GetAppDomainStore();
  if (!store.ok()) return store.status();
  p.out += "Loader Heap:\n";
  p.Divider();
  uint64_t total = 0;
  Json domains = Json::array();
  if (store->system_domain != 0) total += p.Domain("System Domain:", store->system_domain, domains);
  if (store->shared_domain != 0) total += p.Domain("Shared Domain:", store->shared_domain, domains);
  for (size_t i = 0; i < store->domains.size(); ++i) {
    if (ctx.cancel.cancelled()) return absl::CancelledError("eeheap");
    total += p.Domain(absl::StrCat("Domain ", i + 1, ":"), store->domains[i], domains);
  }
  Json managers = Json::array();
  total += p.JitManagers(managers);
  if (!p.status().ok()) return p.status();
  p.json["domains"] = domains;
  p.json["jit_managers"] = managers;
  p.json["size"] = total;
  *out += p.out;
  *json = std::move(p.json);
  return total;
}

}  // namespace clrdiag::sos::gc
