// GC heap layout and verification commands: eeheap (-gc, -loader), gcheapstat, dumpgcdata, gcwhere,
// dumpgen, verifyheap, verifyobj. Text in dotnet-dump's formats (its Table columns: pointers
// as at least 12 hex digits right-aligned in 16, integers without separators in 10, ...),
// JSON forms in docs/json-output.md.
#include <algorithm>
#include <map>
#include <optional>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/gc_layout.h"
#include "core/dac/gc_roots.h"
#include "core/dac/gc_verify.h"
#include "core/dac/heap_walk.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/gc_commands.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

using dac::GcGeneration;
using dac::GcLayout;
using dac::GcSegment;
using dac::SegmentKind;

using gc::FromStatus;
using gc::Left;
using gc::MemorySize;
using gc::Ptr;
using gc::Right;

std::string RangeText(const dac::AddressRange& r) {
  return absl::StrFormat("%x-%x", r.start, r.end);
}

absl::StatusOr<std::unique_ptr<GcLayout>> Layout(CommandContext& ctx) {
  return dac::ReadGcLayout(ctx.dac);
}

std::string KindName(SegmentKind k) {
  switch (k) {
    case SegmentKind::kGen0:
      return "gen0";
    case SegmentKind::kGen1:
      return "gen1";
    case SegmentKind::kGen2:
      return "gen2";
    case SegmentKind::kEphemeral:
      return "ephemeral";
    case SegmentKind::kLarge:
      return "loh";
    case SegmentKind::kPinned:
      return "poh";
    case SegmentKind::kFrozen:
      return "frozen";
  }
  return "?";
}

// ClrMD's GCSegmentKind order (Generation0..2, Large, Pinned, Frozen, Ephemeral).
int KindOrder(SegmentKind k) {
  switch (k) {
    case SegmentKind::kGen0:
      return 0;
    case SegmentKind::kGen1:
      return 1;
    case SegmentKind::kGen2:
      return 2;
    case SegmentKind::kLarge:
      return 3;
    case SegmentKind::kPinned:
      return 4;
    case SegmentKind::kFrozen:
      return 5;
    case SegmentKind::kEphemeral:
      return 6;
  }
  return 7;
}

Json SegmentJson(const GcSegment& s) {
  Json j = {{"address", JsonHex(s.address)},
            {"heap", s.heap},
            {"kind", KindName(s.kind)},
            {"begin", JsonHex(s.objects.start)},
            {"allocated", JsonHex(s.objects.end)},
            {"committed", JsonHex(s.committed.end)},
            {"allocated_size", s.objects.length()},
            {"committed_size", s.committed.length()},
            {"reserved", JsonHex(s.reserved.end)}};
  return j;
}
// ---- eeheap -------------------------------------------------------------------------------

CommandResult EEHeap(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  bool gc = false, loader = false;
  int heap = -1;
  uint64_t segment = 0;
  std::vector<std::string> range_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::string l = absl::AsciiStrToLower(a);
    if (l == "-gc") {
      gc = true;
    } else if (l == "-loader") {
      loader = true;
    } else if (l == "-heap") {
      if (i + 1 >= args.size() || !absl::SimpleAtoi(args[i + 1], &heap) || heap < 0) {
        return UsageError(spec, "-heap needs a GC heap number (0, 1, ...)");
      }
      ++i;
    } else if (l == "-segment") {
      if (i + 1 >= args.size() || !ParseHexAddress(args[i + 1], &segment)) {
        return UsageError(spec, absl::StrCat("Failed to parse segment '",
                                             i + 1 < args.size() ? args[i + 1] : "", "'."));
      }
      ++i;
    } else if (!l.empty() && (l[0] == '-' || l[0] == '/')) {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else {
      range_args.push_back(a);
    }
  }
  // The reference's HeapWithFilters (without its check that the range meets the GC heap: the
  // range may be meant for the loader heaps).
  if (range_args.size() > 2) return UsageError(spec, "Too many arguments to !eeheap");
  gc::LoaderFilter filter;
  if (!range_args.empty()) {
    filter.has_range = true;
    auto bound = [](const std::string& t, uint64_t* v) {
      std::string digits = absl::StartsWithIgnoreCase(t, "0x") ? t.substr(2) : t;
      return !digits.empty() && absl::SimpleHexAtoi(digits, v);
    };
    if (!bound(range_args[0], &filter.start)) {
      return UsageError(spec, absl::StrCat("Invalid start address: ", range_args[0]));
    }
    if (range_args.size() == 2) {
      std::string end = range_args[1];
      const bool length = !end.empty() && (end[0] == 'L' || end[0] == 'l');
      if (length) end = end.substr(1);
      if (!bound(end, &filter.end)) {
        return UsageError(spec, absl::StrCat("Invalid end address: ", end));
      }
      if (length) filter.end += filter.start;
      if (filter.end <= filter.start) {
        return UsageError(spec, absl::StrCat("Start address must be before end address: '",
                                             range_args[0], "' < '", range_args[1], "'"));
      }
    }
  }
  filter.partial = heap >= 0 || segment != 0 || filter.has_range;
  const std::string total_word = filter.partial ? "Partial" : "Total";
  auto keep_segment = [&](const GcSegment& s) {
    if (heap >= 0 && s.heap != heap) return false;
    if (segment != 0 && s.address != segment && !s.committed.Contains(segment)) return false;
    if (filter.has_range && !(s.committed.start < filter.end && filter.start < s.committed.end)) {
      return false;
    }
    return true;
  };
  const bool all = !gc && !loader;
  std::string out;
  Json loader_json;
  uint64_t loader_total = 0;
  if (heap >= 0) {
    auto layout_or = Layout(ctx);
    if (!layout_or.ok()) return FromStatus(layout_or.status());
    const auto& heaps = (*layout_or)->heaps;
    if (std::none_of(heaps.begin(), heaps.end(),
                     [&](const dac::GcSubHeap& h) { return h.index == heap; })) {
      return Failure(absl::StrCat("No GC heap with index of ", heap));
    }
  }
  if (loader || all) {
    auto total = gc::PrintLoaderHeaps(ctx, &out, &loader_json, filter);
    if (!total.ok()) return FromStatus(total.status());
    loader_total = *total;
    if (!gc && !all) {
      if (ctx.json) {
        WriteJson(ctx, Json{{"loader", loader_json}});
      } else {
        ctx.out.Write(out);
      }
      return {};
    }
  }
  auto layout_or = Layout(ctx);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  uint64_t total_allocated = 0, total_committed = 0;
  for (const GcSegment* s : layout.sorted) {
    if (!keep_segment(*s)) continue;
    total_allocated += s->objects.length();
    total_committed += s->committed.length();
  }
  if (ctx.json) {
    Json heaps = Json::array();
    for (const dac::GcSubHeap& h : layout.heaps) {
      Json segs = Json::array();
      for (const GcSegment& s : h.segments) {
        if (keep_segment(s)) segs.push_back(SegmentJson(s));
      }
      Json gens = Json::array();
      for (const auto& g : h.generations) {
        gens.push_back({{"start_segment", JsonHex(g.start_segment)},
                        {"allocation_start", JsonHex(g.allocation_start)}});
      }
      heaps.push_back({{"index", h.index},
                       {"address", JsonHex(h.address)},
                       {"regions", h.regions},
                       {"generations", gens},
                       {"segments", segs}});
    }
    Json result = {{"server", layout.server},
                   {"datas", layout.has_datas ? Json(layout.datas_mode) : Json()},
                   {"heap_count", layout.heaps.size()},
                   {"heaps", heaps},
                   {"allocated", total_allocated},
                   {"committed", total_committed}};
    if (!loader_json.is_null()) {
      result["loader"] = loader_json;
      if (all) result["total"] = loader_total + total_committed;
    }
    WriteJson(ctx, result);
    return {};
  }
  // Column widths: the size columns fit every segment's committed size (and the headers).
  size_t size_width = 0;
  for (const GcSegment* s : layout.sorted) {
    size_width = std::max(size_width, MemorySize(s->committed.length()).size());
  }
  size_width = std::clamp<size_t>(size_width, 14, 32);
  auto header = [&]() {
    return absl::StrCat(Right("segment", 16), " ", Right("begin", 16), " ", Right("allocated", 16),
                        " ", Right("committed", 16), " ", Left("allocated size", size_width), " ",
                        Left("committed size", size_width), "\n");
  };
  auto row = [&](const GcSegment& s) {
    return absl::StrCat(Right(Ptr(s.address), 16), " ", Right(Ptr(s.objects.start), 16), " ",
                        Right(Ptr(s.objects.end), 16), " ", Right(Ptr(s.committed.end), 16), " ",
                        Left(MemorySize(s.objects.length()), size_width), " ",
                        Left(MemorySize(s.committed.length()), size_width), "\n");
  };
  out += "\n";
  absl::StrAppend(&out, "DATAS = ", layout.has_datas ? absl::StrCat(layout.datas_mode) : "", "\n",
                  std::string(40, '='), "\n");
  absl::StrAppend(&out, "Number of GC Heaps: ", layout.heaps.size(), "\n", std::string(40, '-'),
                  "\n");
  for (const dac::GcSubHeap& h : layout.heaps) {
    if (filter.partial && std::none_of(h.segments.begin(), h.segments.end(), keep_segment)) {
      continue;
    }
    if (layout.server)
      absl::StrAppend(&out, absl::StrFormat("Heap %d (%016x)\n", h.index, h.address));
    if (!h.regions) {
      for (int i = 0; i <= 2 && i < static_cast<int>(h.generations.size()); ++i) {
        absl::StrAppend(&out, absl::StrFormat("generation %d starts at %x\n", i,
                                              h.generations[i].allocation_start));
      }
      const auto& g0 = h.generations[0];
      out += "ephemeral segment allocation context: ";
      if (g0.alloc_context_limit > g0.alloc_context_ptr) {
        // As the reference: the end is printed in decimal after its "0x".
        absl::StrAppend(
            &out, absl::StrFormat("(0x%x, 0x%d)\n", g0.alloc_context_ptr, g0.alloc_context_limit));
      } else {
        out += "none\n";
      }
    }
    out += "Small object heap\n" + header();
    std::vector<const GcSegment*> soh, frozen, loh, poh;
    uint64_t heap_allocated = 0, heap_committed = 0;
    for (const GcSegment& s : h.segments) {
      if (!keep_segment(s)) continue;
      heap_allocated += s.objects.length();
      heap_committed += s.committed.length();
      switch (s.kind) {
        case SegmentKind::kFrozen:
          frozen.push_back(&s);
          break;
        case SegmentKind::kLarge:
          loh.push_back(&s);
          break;
        case SegmentKind::kPinned:
          poh.push_back(&s);
          break;
        default:
          soh.push_back(&s);
      }
    }
    auto by_start = [](const GcSegment* a, const GcSegment* b) {
      return a->objects.start < b->objects.start;
    };
    std::stable_sort(soh.begin(), soh.end(), [](const GcSegment* a, const GcSegment* b) {
      if (KindOrder(a->kind) != KindOrder(b->kind)) return KindOrder(a->kind) < KindOrder(b->kind);
      return a->objects.start < b->objects.start;
    });
    bool printed[3] = {false, false, false};
    for (const GcSegment* s : soh) {
      const int g = KindOrder(s->kind);
      if (h.regions && g <= 2 && !printed[g]) {
        absl::StrAppend(&out, "generation ", g, ":\n");
        printed[g] = true;
      }
      out += row(*s);
    }
    std::stable_sort(frozen.begin(), frozen.end(), by_start);
    std::stable_sort(loh.begin(), loh.end(), by_start);
    std::stable_sort(poh.begin(), poh.end(), by_start);
    if (!frozen.empty()) {
      out += "NonGC heap\n" + header();
      for (const GcSegment* s : frozen) out += row(*s);
    }
    if (h.regions || h.generations.size() <= 3) {
      out += "Large object heap\n";
    } else {
      absl::StrAppend(&out, absl::StrFormat("Large object heap starts at %x\n",
                                            h.generations[3].allocation_start));
    }
    out += header();
    for (const GcSegment* s : loh) out += row(*s);
    if (!poh.empty()) {
      if (h.regions || h.generations.size() <= 4) {
        out += "Pinned object heap\n";
      } else {
        absl::StrAppend(&out, absl::StrFormat("Pinned object heap starts at %x\n",
                                              h.generations[4].allocation_start));
      }
      out += header();
      for (const GcSegment* s : poh) out += row(*s);
    }
    if (filter.partial) {
      absl::StrAppend(&out,
                      "Partial Allocated Size:              Size: ", MemorySize(heap_allocated),
                      " bytes.\n");
      absl::StrAppend(&out,
                      "Partial Committed Size:              Size: ", MemorySize(heap_committed),
                      " bytes.\n");
    }
    out += std::string(30, '-') + "\n";
  }
  const std::string prefix = filter.partial ? "Partial " : "";
  absl::StrAppend(&out, prefix, "GC Allocated Heap Size:    Size: ", MemorySize(total_allocated),
                  " bytes.\n");
  absl::StrAppend(&out, prefix, "GC Committed Heap Size:    Size: ", MemorySize(total_committed),
                  " bytes.\n");
  if (all) {
    absl::StrAppend(&out, "\n", total_word,
                    " bytes consumed by CLR: ", MemorySize(loader_total + total_committed, "0"),
                    "\n\n");
  }
  ctx.out.Write(out);
  return {};
}

// ---- gcheapstat ---------------------------------------------------------------------------

struct GenInfo {
  uint64_t allocated = 0, free = 0, unrooted = 0, committed = 0;
  GenInfo& operator+=(const GenInfo& o) {
    allocated += o.allocated;
    free += o.free;
    unrooted += o.unrooted;
    committed += o.committed;
    return *this;
  }
};
struct HeapInfo {
  int index = -1;
  GenInfo eph, gen0, gen1, gen2, loh, poh, frozen;
  GenInfo* ByGeneration(GcGeneration g) {
    switch (g) {
      case GcGeneration::kGen0:
        return &gen0;
      case GcGeneration::kGen1:
        return &gen1;
      case GcGeneration::kGen2:
        return &gen2;
      case GcGeneration::kLarge:
        return &loh;
      case GcGeneration::kPinned:
        return &poh;
      case GcGeneration::kFrozen:
        return &frozen;
      default:
        return nullptr;
    }
  }
  GenInfo* ByKind(SegmentKind k) {
    switch (k) {
      case SegmentKind::kGen0:
        return &gen0;
      case SegmentKind::kGen1:
        return &gen1;
      case SegmentKind::kGen2:
        return &gen2;
      case SegmentKind::kLarge:
        return &loh;
      case SegmentKind::kPinned:
        return &poh;
      case SegmentKind::kFrozen:
        return &frozen;
      case SegmentKind::kEphemeral:
        return nullptr;
    }
    return nullptr;
  }
};

CommandResult GCHeapStat(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  bool unreachable = false;
  for (const std::string& a : args) {
    const std::string l = absl::AsciiStrToLower(a);
    if (l == "-unreachable" || l == "-inclunrooted" || l == "-iu") {
      unreachable = true;
    } else {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    }
  }
  auto layout_or = Layout(ctx);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  std::string out;
  std::optional<dac::LiveObjectSet> live;
  if (unreachable) {
    if (!ctx.json) {
      ctx.out.Write(
          "Calculating live objects, this may take a while...\n"
          "Caching GC roots, this may take a while.\n"
          "Subsequent runs of this command will be faster.\n\n");
    }
    ProgressInfo marking;
    marking.stage = "marking live objects";
    ctx.out.Progress(marking);
    auto computed = dac::LiveObjectSet::Compute(ctx.dac, &ctx.cancel);
    if (!computed.ok()) return FromStatus(computed.status());
    live = std::move(*computed);
    if (!ctx.json) {
      ctx.out.Write(absl::StrFormat("Calculating live objects complete: %s objects from %s roots\n",
                                    N0(live->live_objects()), N0(live->roots())));
    }
  }
  auto globals = ctx.dac.GetUsefulGlobals();
  if (!globals.ok()) return FromStatus(globals.status());
  std::vector<HeapInfo> heaps(layout.heaps.size());
  for (size_t i = 0; i < heaps.size(); ++i) heaps[i].index = static_cast<int>(i);
  std::map<uint64_t, const GcSegment*> by_address;
  for (const GcSegment* s : layout.sorted) {
    HeapInfo& h = heaps[static_cast<size_t>(s->heap)];
    if (s->kind == SegmentKind::kEphemeral) {
      h.eph.allocated += s->objects.length();
      h.eph.committed += s->committed.length();
    } else if (GenInfo* g = h.ByKind(s->kind)) {
      g->allocated += s->objects.length();
      g->committed += s->committed.length();
    }
  }
  // One walk: free space (and unrooted objects) per generation.
  ProgressInfo progress;
  progress.stage = "walking the heap";
  for (const GcSegment* s : layout.sorted) progress.total += s->objects.length();
  auto walk = dac::WalkHeap(
      ctx.dac,
      [&](const dac::HeapObject& o) {
        progress.done += o.footprint;
        if ((++progress.items & 0xffff) == 0) ctx.out.Progress(progress);
        const GcSegment* s = layout.FindByObjectRange(o.address);
        if (s == nullptr) return true;
        HeapInfo& h = heaps[static_cast<size_t>(s->heap)];
        const bool is_free = o.mt == globals->free_mt;
        if (s->kind == SegmentKind::kEphemeral) {
          GenInfo* g = h.ByGeneration(s->GenerationOf(o.address));
          if (g == nullptr) return true;
          if (is_free) {
            h.eph.free += o.size;
            g->free += o.size;
          } else {
            g->allocated += o.size;
            if (live && !live->IsLive(o.address)) g->unrooted += o.size;
          }
        } else if (GenInfo* g = h.ByKind(s->kind)) {
          if (is_free) {
            g->free += o.size;
          } else if (live && !live->IsLive(o.address)) {
            g->unrooted += o.size;
          }
        }
        return true;
      },
      &ctx.cancel);
  if (!walk.ok()) return FromStatus(walk.status());
  HeapInfo total;
  for (const HeapInfo& h : heaps) {
    total.eph += h.eph;
    total.gen0 += h.gen0;
    total.gen1 += h.gen1;
    total.gen2 += h.gen2;
    total.loh += h.loh;
    total.poh += h.poh;
    total.frozen += h.frozen;
  }
  if (ctx.json) {
    auto gen = [&](const GenInfo& g) {
      Json j = {{"allocated", g.allocated}, {"free", g.free}, {"committed", g.committed}};
      if (unreachable) j["unrooted"] = g.unrooted;
      return j;
    };
    auto heap = [&](const HeapInfo& h) {
      Json j = {{"heap", h.index}};
      if (h.eph.committed > 0) j["ephemeral"] = gen(h.eph);
      j["gen0"] = gen(h.gen0);
      j["gen1"] = gen(h.gen1);
      j["gen2"] = gen(h.gen2);
      j["loh"] = gen(h.loh);
      j["poh"] = gen(h.poh);
      j["frozen"] = gen(h.frozen);
      return j;
    };
    Json list = Json::array();
    for (const HeapInfo& h : heaps) list.push_back(heap(h));
    Json t = heap(total);
    t.erase("heap");
    WriteJson(ctx, Json{{"heaps", list}, {"total", t}});
    return {};
  }
  bool print_frozen = false, has_eph = false;
  for (const HeapInfo& h : heaps) {
    print_frozen |= h.frozen.committed != 0;
    has_eph |= h.eph.committed > 0;
  }
  // Columns (all left-aligned): Heap 8, [EPH 10], Gen0..POH 10 each, [an extra 10 when a
  // frozen heap exists: the reference adds the column but not its value], then three of 8.
  auto header = [&]() {
    std::vector<std::string> cells = {"Heap"};
    if (has_eph) cells.emplace_back("EPH");
    for (const char* c : {"Gen0", "Gen1", "Gen2", "LOH", "POH"}) cells.emplace_back(c);
    if (print_frozen) cells.emplace_back("FRZ");
    return cells;
  };
  auto render = [&](const std::vector<std::optional<std::string>>& cells) {
    // Widths: 8, then the integer columns, then 8s.
    const size_t ints = 5 + (print_frozen ? 1 : 0);
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) line += ' ';
      const size_t w = i == 0 ? 8 : (i <= ints ? 10 : 8);
      line += Left(cells[i].value_or(""), w);
    }
    return line + "\n";
  };
  auto write_header = [&]() {
    std::vector<std::optional<std::string>> cells;
    for (auto& c : header()) cells.emplace_back(c);
    out += render(cells);
  };
  auto write_row = [&](HeapInfo& h, uint64_t GenInfo::*field, bool percentages) {
    std::vector<std::optional<std::string>> cells;
    cells.emplace_back(h.index < 0 ? std::string("Total") : absl::StrCat("Heap", h.index));
    const bool eph = h.eph.committed > 0;
    if (eph) cells.emplace_back(absl::StrCat(h.eph.*field));
    for (GenInfo* g : {&h.gen0, &h.gen1, &h.gen2, &h.loh, &h.poh}) {
      cells.emplace_back(absl::StrCat(g->*field));
    }
    if (percentages) {
      const uint64_t soh_alloc = h.gen0.allocated + h.gen1.allocated + h.gen2.allocated;
      if (soh_alloc != 0) {
        const uint64_t v = h.gen0.*field + h.gen1.*field + h.gen2.*field;
        cells.emplace_back(absl::StrCat("SOH:", v * 100 / soh_alloc, "%"));
      } else {
        cells.emplace_back(std::nullopt);
      }
      if (h.loh.allocated != 0) {
        cells.emplace_back(absl::StrCat("LOH:", h.loh.*field * 100 / h.loh.allocated, "%"));
      } else {
        cells.emplace_back(std::nullopt);
      }
      if (h.poh.allocated != 0) {
        cells.emplace_back(absl::StrCat("POH:", h.poh.*field * 100 / h.poh.allocated, "%"));
      } else {
        cells.emplace_back(std::nullopt);
      }
    }
    out += render(cells);
  };
  write_header();
  for (HeapInfo& h : heaps) write_row(h, &GenInfo::allocated, false);
  write_row(total, &GenInfo::allocated, false);
  out += "\nFree space:\n";
  write_header();
  for (HeapInfo& h : heaps) write_row(h, &GenInfo::free, true);
  write_row(total, &GenInfo::free, false);
  out += "\n";
  if (unreachable) {
    out += "Unrooted objects:\n";
    write_header();
    for (HeapInfo& h : heaps) write_row(h, &GenInfo::unrooted, true);
    out += "\n";
    write_row(total, &GenInfo::unrooted, false);
    out += "\n";
  }
  out += "Committed space:\n";
  write_header();
  for (HeapInfo& h : heaps) write_row(h, &GenInfo::committed, false);
  write_row(total, &GenInfo::committed, false);
  out += "\n";
  ctx.out.Write(out);
  return {};
}

// ---- dumpgcdata ---------------------------------------------------------------------------

constexpr const char* kGlobalMechanisms[] = {"concurrent GCs", "compacting GCs",
                                             "promoting GCs",  "GCs that did demotion",
                                             "card bundles",   "elevation logic"};
constexpr const char* kDataPoints[] = {"pre short",        "post short",       "merged pins",
                                       "converted pins",   "pre pin",          "post pin",
                                       "pre and post pin", "pre short padded", "post short padded"};
// (name, mandatory)
constexpr std::pair<const char*, bool> kCompactReasons[] = {
    {"low on ephemeral space", true},
    {"high fragmentation", false},
    {"couldn't allocate gaps", true},
    {"user specfied compact LOH", true},
    {"last GC before OOM", true},
    {"induced compacting GC", true},
    {"fragmented gen0 (ephemeral GC)", false},
    {"high memory load (ephemeral GC)", false},
    {"high memory load and frag", true},
    {"very high memory load and frag", true},
    {"no gc mode", true}};
constexpr const char* kExpandMechanisms[] = {
    "reused seg with normal fit", "reused seg with best fit", "expand promoting eph",
    "expand with a new seg",      "no memory for a new seg",  "expand in next full GC"};
constexpr const char* kBitMechanisms[] = {"using mark list", "demotion"};

// The counters print as C's %d did in SOS: the low 32 bits, signed.
int32_t AsInt(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

std::string InterestingInfoText(const std::vector<uint64_t>& v) {
  std::string out = "Interesting data points\n";
  size_t k = 0;
  for (const char* n : kDataPoints)
    absl::StrAppend(&out, absl::StrFormat("%20s: %d\n", n, AsInt(v[k++])));
  out += "\nCompacting reasons\n";
  for (const auto& [n, m] : kCompactReasons) {
    absl::StrAppend(&out, absl::StrFormat("[%s]%35s: %d\n", m ? "M" : "W", n, AsInt(v[k++])));
  }
  out += "\nExpansion mechanisms\n";
  for (const char* n : kExpandMechanisms)
    absl::StrAppend(&out, absl::StrFormat("%30s: %d\n", n, AsInt(v[k++])));
  out += "\nOther mechanisms enabled\n";
  for (const char* n : kBitMechanisms)
    absl::StrAppend(&out, absl::StrFormat("%20s: %d\n", n, AsInt(v[k++])));
  return out;
}

Json InterestingInfoJson(const std::vector<uint64_t>& v) {
  Json j = Json::object();
  size_t k = 0;
  Json points = Json::object(), reasons = Json::object(), expand = Json::object(),
       bits = Json::object();
  for (const char* n : kDataPoints) points[n] = v[k++];
  for (const auto& [n, m] : kCompactReasons) reasons[n] = v[k++];
  for (const char* n : kExpandMechanisms) expand[n] = v[k++];
  for (const char* n : kBitMechanisms) bits[n] = v[k++];
  j["data_points"] = points;
  j["compact_reasons"] = reasons;
  j["expand_mechanisms"] = expand;
  j["mechanisms_enabled"] = bits;
  return j;
}

CommandResult DumpGCData(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  auto summary = ctx.dac.GetGcHeapSummary();
  if (!summary.ok()) return FromStatus(summary.status());
  std::string out;
  Json result = Json::object();
  if (!summary->server) {
    auto global = ctx.dac.GetGcInterestingInfo(0, true);
    if (!global.ok()) return FromStatus(global.status());
    Json g = Json::object();
    for (size_t i = 0; i < global->size(); ++i) {
      absl::StrAppend(&out,
                      absl::StrFormat("%-30s: %d\n", kGlobalMechanisms[i], AsInt((*global)[i])));
      g[kGlobalMechanisms[i]] = (*global)[i];
    }
    out += "\n[info per heap]\n";
    auto info = ctx.dac.GetGcInterestingInfo(0, false);
    if (!info.ok()) return Failure("Error requesting interesting GC info");
    out += InterestingInfoText(*info);
    result["global_mechanisms"] = g;
    result["heaps"] = Json::array({InterestingInfoJson(*info)});
  } else {
    out += "\n[info per heap]\n";
    auto raws = ctx.dac.GetGcHeapsRaw();
    if (!raws.ok()) return FromStatus(raws.status());
    result["heaps"] = Json::array();
    for (size_t n = 0; n < raws->size(); ++n) {
      auto info = ctx.dac.GetGcInterestingInfo((*raws)[n].address, false);
      if (!info.ok())
        return Failure(absl::StrCat("Heap ", n, ": Error requesting interesting GC info"));
      absl::StrAppend(&out, "--------info for heap ", n, "--------\n", InterestingInfoText(*info),
                      "\n");
      result["heaps"].push_back(InterestingInfoJson(*info));
    }
  }
  if (ctx.json) {
    WriteJson(ctx, result);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ---- gcwhere ------------------------------------------------------------------------------

const char* GenerationText(GcGeneration g) {
  switch (g) {
    case GcGeneration::kGen0:
      return "0";
    case GcGeneration::kGen1:
      return "1";
    case GcGeneration::kGen2:
      return "2";
    case GcGeneration::kFrozen:
      return "frozen";
    case GcGeneration::kPinned:
      return "pinned";
    case GcGeneration::kLarge:
      return "large";
    default:
      return "???";
  }
}

CommandResult GCWhere(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  if (args.empty()) return UsageError(spec, "missing address");
  if (args.size() > 1) return UsageError(spec, absl::StrCat("unexpected argument '", args[1], "'"));
  uint64_t address = 0;
  if (!ParseHexAddress(args[0], &address)) {
    return Failure(absl::StrCat("Could not parse address: ", args[0]));
  }
  auto layout_or = Layout(ctx);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  std::vector<const GcSegment*> found;
  for (const GcSegment* s : layout.sorted) {
    if (s->objects.Contains(address) || s->committed.Contains(address) ||
        s->reserved.Contains(address)) {
      found.push_back(s);
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const GcSegment* a, const GcSegment* b) {
    if (a->heap != b->heap) return a->heap < b->heap;
    return a->address < b->address;
  });
  if (found.empty()) {
    return Failure(absl::StrFormat("Address %x not found in the managed heap.", address));
  }
  auto generation = [&](const GcSegment* s) -> std::string {
    if (s->reserved.Contains(address)) return "reserve";
    return GenerationText(s->GenerationOf(address));
  };
  if (ctx.json) {
    Json list = Json::array();
    for (const GcSegment* s : found) {
      list.push_back({{"heap", s->heap},
                      {"segment", JsonHex(s->address)},
                      {"generation", generation(s)},
                      {"allocated", {JsonHex(s->objects.start), JsonHex(s->objects.end)}},
                      {"committed", {JsonHex(s->committed.start), JsonHex(s->committed.end)}},
                      {"reserved", {JsonHex(s->reserved.start), JsonHex(s->reserved.end)}}});
    }
    WriteJson(ctx, Json{{"address", JsonHex(address)}, {"segments", list}});
    return {};
  }
  size_t wa = 9, wc = 9, wr = 8;  // at least the headers
  for (const GcSegment* s : found) {
    wa = std::max(wa, RangeText(s->objects).size());
    wc = std::max(wc, RangeText(s->committed).size());
    wr = std::max(wr, RangeText(s->reserved).size());
  }
  std::string out =
      absl::StrCat(Left("Address", 16), " ", Left("Heap", 6), " ", Left("Segment", 16), " ",
                   Left("Generation", 10), " ", Left("Allocated", wa), " ", Left("Committed", wc),
                   " ", Left("Reserved", wr), "\n");
  for (const GcSegment* s : found) {
    absl::StrAppend(&out, Left(Ptr(address), 16), " ", Left(absl::StrCat(s->heap), 6), " ",
                    Left(Ptr(s->address), 16), " ", Left(generation(s), 10), " ",
                    Left(RangeText(s->objects), wa), " ", Left(RangeText(s->committed), wc), " ",
                    Left(RangeText(s->reserved), wr), "\n");
  }
  ctx.out.Write(out);
  return {};
}

// ---- dumpgen ------------------------------------------------------------------------------

enum class GenArg { kGen0, kGen1, kGen2, kLoh, kPoh, kFoh };

// The objects of `gen`: each segment's range for it, in address order of the segments.
absl::Status WalkGeneration(CommandContext& ctx, const GcLayout& layout, GenArg gen,
                            const std::function<void(const dac::HeapObject&)>& visit) {
  auto range_of = [&](const GcSegment& s) -> dac::AddressRange {
    switch (gen) {
      case GenArg::kGen0:
      case GenArg::kGen1:
      case GenArg::kGen2: {
        const int g = gen == GenArg::kGen0 ? 0 : gen == GenArg::kGen1 ? 1 : 2;
        const SegmentKind k = g == 0   ? SegmentKind::kGen0
                              : g == 1 ? SegmentKind::kGen1
                                       : SegmentKind::kGen2;
        if (s.kind == k || s.kind == SegmentKind::kEphemeral) return s.gen[g];
        return {};
      }
      case GenArg::kLoh:
        return s.kind == SegmentKind::kLarge ? s.objects : dac::AddressRange{};
      case GenArg::kPoh:
        return s.kind == SegmentKind::kPinned ? s.objects : dac::AddressRange{};
      case GenArg::kFoh:
        return s.kind == SegmentKind::kFrozen ? s.objects : dac::AddressRange{};
    }
    return {};
  };
  ProgressInfo progress;
  progress.stage = "walking the heap";
  for (const GcSegment* s : layout.sorted) progress.total += s->objects.length();
  auto walk = dac::WalkHeap(
      ctx.dac,
      [&](const dac::HeapObject& o) {
        progress.done += o.footprint;
        if ((++progress.items & 0xffff) == 0) ctx.out.Progress(progress);
        const GcSegment* s = layout.FindByObjectRange(o.address);
        if (s != nullptr && range_of(*s).Contains(o.address)) visit(o);
        return true;
      },
      &ctx.cancel);
  return walk.status();
}

CommandResult DumpGen(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  std::string gen_text, type, mt_text;
  bool has_mt = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string l = absl::AsciiStrToLower(args[i]);
    if (l == "-type") {
      if (i + 1 >= args.size()) return UsageError(spec, "-type needs a type name");
      type = args[++i];
    } else if (l == "-mt") {
      if (i + 1 >= args.size()) return UsageError(spec, "-mt needs a MethodTable address in hex");
      mt_text = args[++i];
      has_mt = true;
    } else if (!l.empty() && l[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", args[i], "'"));
    } else if (gen_text.empty()) {
      gen_text = args[i];
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  if (gen_text.empty()) return UsageError(spec, "Generation argument is missing");
  static const std::map<std::string, GenArg> kGens = {
      {"gen0", GenArg::kGen0}, {"gen1", GenArg::kGen1}, {"gen2", GenArg::kGen2},
      {"0", GenArg::kGen0},    {"1", GenArg::kGen1},    {"2", GenArg::kGen2},
      {"loh", GenArg::kLoh},   {"poh", GenArg::kPoh},   {"foh", GenArg::kFoh}};
  auto g = kGens.find(absl::AsciiStrToLower(gen_text));
  if (g == kGens.end()) {
    return Failure(
        absl::StrCat(gen_text, " is not a supported generation (gen0, gen1, gen2, loh, poh, foh)"));
  }
  uint64_t mt = 0;
  if (has_mt && !ParseHexAddress(mt_text, &mt)) {
    return Failure("Hexadecimal address expected for -mt option");
  }
  auto layout_or = Layout(ctx);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  std::unordered_map<uint64_t, std::string> names;
  auto name_of = [&](uint64_t m) -> const std::string& {
    auto it = names.find(m);
    if (it != names.end()) return it->second;
    auto n = ctx.dac.GetMethodTableName(m);
    return names[m] = n.ok() ? dac::PrettyTypeName(*n) : "";
  };
  if (has_mt) {
    std::string out = "         Address               MT     Size\n";
    Json list = Json::array();
    uint64_t count = 0;
    absl::Status st = WalkGeneration(ctx, layout, g->second, [&](const dac::HeapObject& o) {
      if (o.mt != mt) return;
      ++count;
      if (ctx.json) {
        list.push_back({{"address", JsonHex(o.address)}, {"mt", JsonHex(o.mt)}, {"size", o.size}});
      } else {
        absl::StrAppend(&out, absl::StrFormat("%016x %016x %8d\n", o.address, o.mt, o.size));
      }
    });
    if (!st.ok()) return FromStatus(st);
    if (ctx.json) {
      WriteJson(ctx, Json{{"generation", absl::AsciiStrToLower(gen_text)}, {"objects", list}});
    } else {
      absl::StrAppend(&out, "Total ", count, " objects\n\n");
      ctx.out.Write(out);
    }
    return {};
  }
  struct Acc {
    uint64_t mt = 0, count = 0, size = 0;
  };
  std::vector<Acc> stats;
  std::unordered_map<uint64_t, size_t> pos;
  const std::string type_lower = absl::AsciiStrToLower(type);
  absl::Status st = WalkGeneration(ctx, layout, g->second, [&](const dac::HeapObject& o) {
    if (!type.empty()) {
      const std::string& n = name_of(o.mt);
      if (n.empty() || !absl::StrContains(absl::AsciiStrToLower(n), type_lower)) return;
    }
    auto [it, fresh] = pos.try_emplace(o.mt, stats.size());
    if (fresh) stats.push_back({o.mt, 0, 0});
    ++stats[it->second].count;
    stats[it->second].size += o.size;
  });
  if (!st.ok()) return FromStatus(st);
  std::stable_sort(stats.begin(), stats.end(),
                   [](const Acc& a, const Acc& b) { return a.size < b.size; });
  uint64_t total = 0;
  if (ctx.json) {
    Json list = Json::array();
    for (const Acc& a : stats) {
      total += a.count;
      list.push_back(
          {{"mt", JsonHex(a.mt)}, {"count", a.count}, {"size", a.size}, {"type", name_of(a.mt)}});
    }
    WriteJson(
        ctx,
        Json{{"generation", absl::AsciiStrToLower(gen_text)}, {"types", list}, {"objects", total}});
    return {};
  }
  std::string out = "Statistics:\n              MT    Count    TotalSize Class Name\n";
  for (const Acc& a : stats) {
    total += a.count;
    absl::StrAppend(&out,
                    absl::StrFormat("%016x %8d %12d %s\n", a.mt, a.count, a.size, name_of(a.mt)));
  }
  absl::StrAppend(&out, "Total ", total, " objects\n\n");
  ctx.out.Write(out);
  return {};
}
}  // namespace

void RegisterGcCommands(CommandRegistry& r) {
  r.Add({{"eeheap", "EEHeap"},
         "[-gc] [-loader]",
         "Displays the memory the runtime uses: loader heaps, JIT code heaps, the GC heap.",
         "eeheap [-gc] [-loader] [-heap <n>] [-segment <address>] [<start> [<end> | L<length>]]\n"
         "  -gc      the GC heap: per heap, each generation's segments (regions on .NET 7+) with\n"
         "           their first object, allocated end, committed end and sizes, then totals\n"
         "  -loader  the loader heaps of each app domain's LoaderAllocator and the JIT managers'\n"
         "           code heaps: blocks as start(reserved:dumped), sizes, wasted bytes\n"
         "  -heap     only GC heap <n> (server GC; 0 with workstation GC)\n"
         "  -segment  only the GC segment at this address, or whose committed memory holds it\n"
         "  start, end  only GC segments whose committed memory overlaps [start, end) (hex) and\n"
         "           loader blocks that start or end in it; L<length>: end = start + length\n"
         "  Without an option: both, and the total bytes the runtime holds. With a filter the\n"
         "  totals say \"Partial\" and each GC heap shows its own.",
         EEHeap});
  r.Add({{"gcheapstat", "GCHeapStat"},
         "[-unreachable]",
         "Displays per heap and generation the allocated, free and committed bytes.",
         "gcheapstat [-unreachable | -inclUnrooted | -iu]\n"
         "  Per GC heap and generation (Gen0, Gen1, Gen2, LOH, POH): allocated bytes, free space\n"
         "  (with its share of the SOH/LOH/POH), committed bytes.\n"
         "  -unreachable  also the bytes of objects no GC root reaches (computes the live set)",
         GCHeapStat});
  r.Add({{"dumpgcdata", "DumpGCData"},
         "",
         "Displays the GC's own counters: compaction reasons, mechanisms used.",
         "dumpgcdata\n"
         "  The GC's global mechanism counters (workstation GC) and, per heap, its interesting\n"
         "  data points, compacting reasons ([M]andatory / [W]ise), expansion mechanisms and\n"
         "  the other mechanisms enabled.",
         DumpGCData});
  r.Add({{"gcwhere", "GCWhere"},
         "<address>",
         "Displays where in the GC heap an address lies (heap, segment, generation).",
         "gcwhere <address>\n"
         "  The heap, segment/region and generation holding the address (hex), and the\n"
         "  segment's allocated, committed and reserved ranges; \"reserve\" when the address is\n"
         "  reserved but not committed. Fails if no segment holds it.",
         GCWhere});
  r.Add({{"dumpgen", "dg"},
         "<generation>",
         "Displays the heap's content for one generation.",
         "dumpgen <gen0|gen1|gen2|loh|poh|foh> [-type <partial type name>] [-mt <MethodTable>]\n"
         "  Per-type statistics (count, total size) of the objects of the generation, like\n"
         "  dumpheap -stat; 0, 1 and 2 are accepted for gen0..gen2.\n"
         "  -type  only types whose name contains the text (case-insensitive)\n"
         "  -mt    list the objects of this MethodTable (hex) instead",
         DumpGen});
  r.Add({{"verifyheap", "VerifyHeap"},
         "",
         "Checks the GC heap for signs of corruption.",
         "verifyheap [-heap <n>] [-segment <address>] [-ignoreGCState] [-noprogress]\n"
         "           [<start> [<end> | L<length>]]\n"
         "  Walks every object and checks its MethodTable, its size against its segment, each\n"
         "  reference (aligned, to a valid object, not to free space), its sync block index and\n"
         "  thin lock. Reports the first problem of each bad object; fails when any is found.\n"
         "  -heap           only GC heap <n>'s segments (server GC; 0 with workstation GC)\n"
         "  -segment        only the segment at this address, or whose committed memory holds it\n"
         "  start, end      only objects starting in [start, end) (hex), in the segments whose\n"
         "                  committed memory overlaps it; L<length>: end = start + length\n"
         "                  (filtered: segments by heap, then address; the sync block table's\n"
         "                  objects are verified too and counted on their own line)\n"
         "  -ignoreGCState  verify even if the GC says its structures are not walkable\n"
         "  -noprogress     accepted for compatibility (progress never goes to the output)",
         gc::VerifyHeap});
  r.Add({{"verifyobj", "VerifyObj"},
         "<object address>",
         "Checks one object for signs of corruption.",
         "verifyobj <object address>\n"
         "  Every problem of the object (see verifyheap), by offset; fails when there is any.",
         gc::VerifyObj});
}

}  // namespace clrdiag::sos
