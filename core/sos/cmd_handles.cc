// Handle and finalization commands, and the concurrent collection dumpers:
//  - gchandles: native SOS's GCHandles (strike.cpp) format: the handle table, per-type
//    statistics of the objects (sorted as its HeapStat tree sorts them) and handle counts.
//  - finalizequeue: dotnet-dump's managed FinalizeQueueCommand over ClrMD's view of the
//    finalize queue (its fill-pointer ranges, including their labelling).
//  - traverseheap: the CLR Profiler text format or the XML of TraverseHeapCommand. The worker
//    never writes files: `traverseheap [-xml] -` produces the file's content as the command's
//    output, and the client (client/analyze.cc) writes it at the path the user gave, on the
//    client's machine, with the user's rights (see docs/json-output.md, traverseheap).
//  - dumpconcurrentdictionary / dumpconcurrentqueue: ClrMDHelper's walks of
//    ConcurrentDictionary<K,V> (_tables._buckets, VolatileNode._node chains) and
//    ConcurrentQueue<T> (_head segments' _slots), with its value renderings.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/com.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/metadata_import.h"
#include "core/dac/object_refs.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

constexpr uint64_t kPointerSize = 8;
constexpr uint64_t kMinObjectSize = 24;

// SOSHandleData::Type values (gchandletable.h HandleType).
enum HandleType : uint32_t {
  kWeakShort = 0,
  kWeakLong = 1,
  kStrong = 2,
  kPinned = 3,
  kVariable = 4,
  kRefCounted = 5,
  kDependent = 6,
  kAsyncPinned = 7,
  kSizedRef = 8,
  kWeakWinRT = 9,
  kWeakInteriorPointer = 10,
};

// The names gchandles -type takes and prints, by type value.
constexpr const char* kHandleTypeNames[] = {
    "WeakShort", "WeakLong",    "Strong",   "Pinned",    "Variable",           "RefCounted",
    "Dependent", "AsyncPinned", "SizedRef", "WeakWinRT", "WeakInteriorPointer"};

const char* HandleTypeName(uint32_t type) {
  return type < std::size(kHandleTypeNames) ? kHandleTypeNames[type] : "Unknown";
}

// ClrMD's ClrHandle.IsStrong.
bool IsStrongHandle(const dac::HandleEntry& h) {
  switch (h.type) {
    case kRefCounted:
      return h.ref_count > 0;
    case kWeakShort:
    case kWeakLong:
    case kDependent:
    case kWeakWinRT:
      return false;
    default:
      return true;
  }
}

CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

// The object's size as SOS and ClrMD report it (base + components, at least 24), or nullopt
// when its MethodTable cannot be read.
std::optional<uint64_t> ObjectSize(dac::DacProcess& dac, uint64_t obj, uint64_t* mt_out,
                                   uint64_t string_mt) {
  uint64_t header[2] = {};
  if (dac.ReadTargetMemory(obj, header, sizeof(header)) != sizeof(header)) return std::nullopt;
  const uint64_t mt = header[0] & ~uint64_t{7};
  if (mt == 0) return std::nullopt;
  auto info = dac.GetMethodTable(mt);
  if (!info.ok()) return std::nullopt;
  uint64_t size = info->base_size;
  if (info->component_size != 0) {
    const uint64_t count = static_cast<uint32_t>(header[1]) + (mt == string_mt ? 1 : 0);
    size += count * info->component_size;
  }
  if (mt_out) *mt_out = mt;
  return std::max(size, kMinObjectSize);
}

std::string RawName(dac::DacProcess& dac, uint64_t mt) {
  auto name = dac.GetMethodTableName(mt);
  return name.ok() ? *name : "UNKNOWN";
}

std::string PrettyName(dac::DacProcess& dac, uint64_t mt) {
  auto name = dac.GetMethodTableName(mt);
  return name.ok() ? dac::PrettyTypeName(*name)
                   : absl::StrCat("<unknown_type_", absl::Hex(mt), ">");
}

// ----------------------------------------------------------------------------------------
// gchandles

struct HandleStats {
  struct Type {
    uint64_t count = 0;
    uint64_t size = 0;
  };
  std::map<uint64_t, Type> by_mt;  // ascending MT: HeapStat's insertion order
  uint64_t counts[std::size(kHandleTypeNames)] = {};
  uint64_t unknown = 0;
};

// HeapStat's order: total size ascending; equal sizes with the higher MethodTable first.
std::vector<std::pair<uint64_t, HandleStats::Type>> SortedStats(const HandleStats& s) {
  std::vector<std::pair<uint64_t, HandleStats::Type>> rows(s.by_mt.begin(), s.by_mt.end());
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    if (a.second.size != b.second.size) return a.second.size < b.second.size;
    return a.first > b.first;
  });
  return rows;
}

// SOS's TableOutput: every column but the last padded to its width and followed by one
// blank; the last printed as is.
std::string Cell(const std::string& text, int width, bool left) {
  return left ? absl::StrFormat("%-*s ", width, text) : absl::StrFormat("%*s ", width, text);
}

CommandResult GcHandles(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  bool per_domain = false, stat = false;
  std::optional<uint32_t> only;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = absl::AsciiStrToLower(args[i]);
    if (a == "-perdomain") {
      per_domain = true;
    } else if (a == "-stat") {
      stat = true;
    } else if (a == "/d") {
      // DML: plain text here.
    } else if (a == "-type") {
      if (i + 1 >= args.size()) return UsageError(spec, "Missing value for option -type");
      const std::string& t = args[++i];
      for (uint32_t k = 0; k < std::size(kHandleTypeNames); ++k) {
        if (absl::EqualsIgnoreCase(t, kHandleTypeNames[k])) only = k;
      }
      if (!only) return Failure(absl::StrCat("Unknown handle type '", t, "'."));
    } else {
      return UsageError(spec, absl::StrCat("Unknown option: ", args[i]));
    }
  }
  auto handles = ctx.dac.GetHandles(&ctx.cancel);
  if (!handles.ok()) {
    return Failure(absl::StrCat("Failed to walk the handle table: ", handles.status().message()));
  }
  auto globals = ctx.dac.GetUsefulGlobals();
  const uint64_t string_mt = globals.ok() ? globals->string_mt : 0;
  const uint64_t free_mt = globals.ok() ? globals->free_mt : 0;

  // The statistics buckets: one, or with -perdomain the shared, system and app domains.
  struct Domain {
    uint64_t address = 0;
    const char* kind = "";
    HandleStats stats;
  };
  std::vector<Domain> domains;
  if (!per_domain) {
    domains.push_back({});
  } else {
    auto store = ctx.dac.GetAppDomainStore();
    if (!store.ok()) return Failure("Error getting per-appdomain handle information");
    if (store->shared_domain != 0) domains.push_back({store->shared_domain, "Shared Domain", {}});
    if (store->system_domain != 0) domains.push_back({store->system_domain, "System Domain", {}});
    for (uint64_t d : store->domains) domains.push_back({d, "", {}});
  }
  auto stats_for = [&](uint64_t domain) -> HandleStats* {
    if (!per_domain) return &domains[0].stats;
    for (Domain& d : domains) {
      if (d.address == domain) return &d.stats;
    }
    return nullptr;
  };

  std::string out;
  Json rows = Json::array();
  if (!stat && !ctx.json) {
    out = Cell("Handle", 16, false) + Cell("Type", 11, true) + Cell("Object", 16, false) +
          Cell("Size", 8, false) + Cell("Data", 16, false) + "Type\n";
  }
  for (const dac::HandleEntry& h : *handles) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    if (only && *only != h.type) continue;
    HandleStats* stats = stats_for(h.app_domain);
    uint64_t mt = 0;
    uint64_t size = 0;
    std::string name;
    std::optional<uint64_t> got;
    if (h.object != 0) got = ObjectSize(ctx.dac, h.object, &mt, string_mt);
    if (!got) {
      name = "<error>";
    } else if (mt == free_mt) {
      name = "<free>";
    } else {
      size = *got;
      name = RawName(ctx.dac, mt);
      if (stats) {
        auto& t = stats->by_mt[mt];
        ++t.count;
        t.size += static_cast<uint32_t>(size);  // SOS adds the size as a DWORD
      }
    }
    if (stats) {
      if (h.type < std::size(kHandleTypeNames)) {
        ++stats->counts[h.type];
      } else {
        ++stats->unknown;
      }
    }
    std::string data;
    switch (h.type) {
      case kRefCounted:
        data = absl::StrCat(h.ref_count);
        break;
      case kDependent:
      case kWeakWinRT:
      case kWeakInteriorPointer:
        data = absl::StrFormat("%016X", h.secondary);
        break;
      default:
        break;
    }
    if (ctx.json) {
      Json row{{"handle", JsonHex(h.handle)}, {"type", HandleTypeName(h.type)},
               {"object", JsonHex(h.object)}, {"size", size},
               {"mt", JsonHex(mt)},           {"type_name", name}};
      if (h.type == kRefCounted) row["ref_count"] = h.ref_count;
      if (h.type == kDependent) row["secondary"] = JsonHex(h.secondary);
      if (per_domain) row["domain"] = JsonHex(h.app_domain);
      rows.push_back(std::move(row));
    } else if (!stat) {
      out += Cell(absl::StrFormat("%016X", h.handle), 16, false) +
             Cell(HandleTypeName(h.type), 11, true) +
             Cell(absl::StrFormat("%016X", h.object), 16, false) +
             Cell(absl::StrCat(size), 8, false) + Cell(data, 16, false) + name + "\n";
    }
  }
  static constexpr std::pair<const char*, uint32_t> kCountRows[] = {
      {"Strong Handles:", kStrong},
      {"Pinned Handles:", kPinned},
      {"Async Pinned Handles:", kAsyncPinned},
      {"Ref Count Handles:", kRefCounted},
      {"Weak Long Handles:", kWeakLong},
      {"Weak Short Handles:", kWeakShort},
      {"Weak WinRT Handles:", kWeakWinRT},
      {"Weak Interior Pointer Handles:", kWeakInteriorPointer},
      {"Variable Handles:", kVariable},
      {"SizedRef Handles:", kSizedRef},
      {"Dependent Handles:", kDependent},
  };
  Json json_domains = Json::array();
  for (const Domain& d : domains) {
    auto sorted = SortedStats(d.stats);
    if (ctx.json) {
      Json st = Json::array();
      uint64_t total = 0;
      for (const auto& [mt, t] : sorted) {
        st.push_back(Json{{"mt", JsonHex(mt)},
                          {"count", t.count},
                          {"total_size", t.size},
                          {"type", RawName(ctx.dac, mt)}});
        total += t.count;
      }
      Json counts = Json::object();
      for (uint32_t k = 0; k < std::size(kHandleTypeNames); ++k) {
        if (d.stats.counts[k] != 0) counts[kHandleTypeNames[k]] = d.stats.counts[k];
      }
      if (d.stats.unknown != 0) counts["Other"] = d.stats.unknown;
      Json jd{{"statistics", st}, {"total_objects", total}, {"handle_counts", counts}};
      if (per_domain) {
        jd["domain"] = JsonHex(d.address);
        jd["kind"] = d.kind;
      }
      json_domains.push_back(std::move(jd));
      continue;
    }
    if (per_domain) {
      out += "------------------------------------------------------------------------------\n";
      absl::StrAppendFormat(&out, "GC Handle Statistics for AppDomain %016X", d.address);
      out += *d.kind ? absl::StrCat(" (", d.kind, ")\n") : "\n";
    }
    if (!stat) out += "\n";
    out += "Statistics:\n";
    absl::StrAppendFormat(&out, "%16s %8s %12s %s\n", "MT", "Count", "TotalSize", "Class Name");
    uint64_t total = 0;
    for (const auto& [mt, t] : sorted) {
      absl::StrAppendFormat(&out, "%016x %8d %12u ", mt, t.count, t.size);
      out += mt == free_mt ? absl::StrFormat("%9s\n", "Free") : RawName(ctx.dac, mt) + "\n";
      total += t.count;
    }
    absl::StrAppendFormat(&out, "Total %d objects\n", total);
    // With -type every handle is of that type: the counts are left out.
    if (!only) {
      out += "\nHandles:\n";
      for (const auto& [label, type] : kCountRows) {
        if (d.stats.counts[type] != 0) {
          out += "    " + Cell(label, 21, true) + absl::StrCat(d.stats.counts[type]) + "\n";
        }
      }
      if (d.stats.unknown != 0) {
        out += "    " + Cell("Other Handles:", 21, true) + absl::StrCat(d.stats.unknown) + "\n";
      }
    }
  }
  if (ctx.json) {
    Json doc{{"handles", stat ? Json::array() : rows}};
    if (per_domain) {
      doc["domains"] = json_domains;
    } else {
      for (auto& [k, v] : json_domains[0].items()) doc[k] = v;
    }
    WriteJson(ctx, doc);
    return {};
  }
  ctx.out.Write(out);
  return {};
}

// ----------------------------------------------------------------------------------------
// finalizequeue

// ClrMD's reading of one heap's fill pointers (ClrSubHeap): all registered objects, the
// ready-for-finalization ones, and the three "generations" (ClrMD labels [2,3) generation 0,
// [1,2) generation 1 and [0,1) generation 2; printed as it labels them).
struct FinalizeRanges {
  std::pair<uint64_t, uint64_t> objects, roots;
  std::pair<uint64_t, uint64_t> gens[3];
};

FinalizeRanges RangesOf(const std::vector<uint64_t>& fp) {
  FinalizeRanges r;
  auto at = [&](size_t i) { return i < fp.size() ? fp[i] : 0; };
  if (fp.size() == 6) {
    r.objects = {at(0), at(5)};
    r.roots = {at(3), at(5)};
  } else {
    r.objects = {at(0), at(6)};
    r.roots = {at(4), at(6)};
  }
  auto careful = [](uint64_t a, uint64_t b) {
    return a <= b ? std::pair<uint64_t, uint64_t>{a, b} : std::pair<uint64_t, uint64_t>{0, 0};
  };
  r.gens[0] = careful(at(2), at(3));
  r.gens[1] = careful(at(1), at(2));
  r.gens[2] = careful(at(0), at(1));
  return r;
}

struct FinalizableObject {
  uint64_t slot = 0;
  uint64_t address = 0;
  uint64_t mt = 0;
  uint64_t size = 0;
};

// The valid objects of the slots [begin, end), as ClrMD enumerates them.
std::vector<FinalizableObject> ObjectsIn(dac::DacProcess& dac, std::pair<uint64_t, uint64_t> range,
                                         uint64_t string_mt) {
  std::vector<FinalizableObject> out;
  auto [begin, end] = range;
  if (end <= begin || end - begin > (uint64_t{1} << 28)) return out;  // 32M slots at most
  std::vector<uint64_t> slots((end - begin) / kPointerSize);
  const size_t got = dac.ReadTargetMemory(begin, slots.data(), slots.size() * kPointerSize);
  slots.resize(got / kPointerSize);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] == 0) continue;
    uint64_t mt = 0;
    auto size = ObjectSize(dac, slots[i], &mt, string_mt);
    if (!size) continue;
    out.push_back({begin + i * kPointerSize, slots[i], mt, *size});
  }
  return out;
}

// dotnet-dump's DumpHeapService.PrintHeap for the Normal and Short kinds (no fragmentation).
void PrintObjects(CommandContext& ctx, const std::vector<FinalizableObject>& objects, bool short_,
                  bool stat, std::string* out) {
  struct Acc {
    uint64_t count = 0;
    uint64_t size = 0;
    size_t first = 0;
  };
  std::unordered_map<uint64_t, Acc> by_mt;
  uint64_t total = 0, bytes = 0;
  bool header = false;
  for (const FinalizableObject& o : objects) {
    if (short_) {
      absl::StrAppendFormat(out, "%012x\n", o.address);
      continue;
    }
    if (!stat) {
      if (!header) {
        absl::StrAppendFormat(out, "%16s %16s %14s\n", "Address", "MT", "Size");
        header = true;
      }
      absl::StrAppendFormat(out, "%16x %16x %14s \n", o.address, o.mt, N0(o.size));
    }
    auto [it, fresh] = by_mt.try_emplace(o.mt, Acc{0, 0, by_mt.size()});
    ++it->second.count;
    it->second.size += o.size;
    ++total;
    bytes += o.size;
  }
  if (short_ || by_mt.empty()) return;
  std::vector<std::pair<uint64_t, Acc>> rows(by_mt.begin(), by_mt.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    if (a.second.size != b.second.size) return a.second.size < b.second.size;
    return a.second.first < b.second.first;
  });
  size_t mt_w = 12, count_w = 5, size_w = 9;
  for (const auto& [mt, acc] : rows) {
    mt_w = std::max(mt_w, absl::StrFormat("%x", mt).size());
    count_w = std::max(count_w, N0(acc.count).size());
    size_w = std::max(size_w, N0(acc.size).size());
  }
  if (!stat) *out += "\n";
  *out += "Statistics:\n";
  absl::StrAppendFormat(out, "%*s %*s %*s Class Name\n", mt_w, "MT", count_w, "Count", size_w,
                        "TotalSize");
  for (const auto& [mt, acc] : rows) {
    absl::StrAppendFormat(out, "%*x %*s %*s %s\n", mt_w, mt, count_w, N0(acc.count), size_w,
                          N0(acc.size), PrettyName(ctx.dac, mt));
  }
  absl::StrAppendFormat(out, "Total %s objects, %s bytes\n", N0(total), N0(bytes));
}

CommandResult FinalizeQueue(CommandContext& ctx, const CommandSpec& spec,
                            const std::vector<std::string>& args) {
  bool detail = false, all_ready = false, short_ = false, stat = false;
  uint64_t only_mt = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = absl::AsciiStrToLower(args[i]);
    if (a == "-detail") {
      detail = true;
    } else if (a == "-allready") {
      all_ready = true;
    } else if (a == "-short") {
      short_ = true;
    } else if (a == "-stat" || a == "-summary") {
      stat = true;
    } else if (a == "-mt") {
      if (i + 1 >= args.size()) return UsageError(spec, "-mt needs a MethodTable address");
      const std::string& v = args[++i];
      if (!ParseHexAddress(v, &only_mt)) {
        return Failure(absl::StrCat("Could not parse MethodTable: '", v, "'"));
      }
    } else {
      return UsageError(spec, absl::StrCat("Unrecognized command or argument '", args[i], "'."));
    }
  }
  (void)detail;  // The cleanup lists are printed whole with or without it, as the reference.
  if (short_ && stat) return Failure("Cannot specify both -short and -stat.");
  auto globals = ctx.dac.GetUsefulGlobals();
  const uint64_t string_mt = globals.ok() ? globals->string_mt : 0;

  std::string out;
  std::optional<dac::LiveObjectSet> live;
  if (all_ready) {
    // Printed with -short too, as the reference does.
    if (!ctx.json) ctx.out.Write("Calculating live objects, this may take a while...\n");
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
  auto fill = ctx.dac.GetFinalizationFillPointers();
  if (!fill.ok()) return FromStatus(fill.status());
  std::vector<FinalizeRanges> heaps;
  for (const auto& fp : *fill) heaps.push_back(RangesOf(fp));

  Json doc = Json::object();
  if (!short_) {
    auto cleanup = ctx.dac.GetSyncBlockCleanupList();
    std::vector<dac::SyncBlockCleanup> sync_blocks;
    if (cleanup.ok()) sync_blocks = *cleanup;
    auto ptr = [](uint64_t v) { return absl::StrFormat("%16s", absl::StrFormat("%012x", v)); };
    if (!sync_blocks.empty()) {
      absl::StrAppendFormat(&out, "%16s %16s %16s %16s\n", "SyncBlock", "RCW", "CCW",
                            "ComClassFactory");
    }
    Json jsb = Json::array();
    for (const auto& s : sync_blocks) {
      out += absl::StrCat(ptr(s.sync_block), " ", ptr(s.rcw), " ", ptr(s.ccw), " ",
                          ptr(s.class_factory), "\n");
      jsb.push_back(Json{{"sync_block", JsonHex(s.sync_block)},
                         {"rcw", JsonHex(s.rcw)},
                         {"ccw", JsonHex(s.ccw)},
                         {"class_factory", JsonHex(s.class_factory)}});
    }
    absl::StrAppendFormat(&out, "SyncBlocks to be cleaned up: %s\n", N0(sync_blocks.size()));
    std::vector<dac::RcwCleanup> rcws = ctx.dac.GetRcwCleanupList();
    uint64_t free_threaded = 0, mta = 0, sta = 0;
    if (!rcws.empty()) {
      absl::StrAppendFormat(&out, "%16s %16s %16s %s\n", "RCW", "Context", "Thread", "Apartment");
    }
    for (const auto& r : rcws) {
      const char* apartment = "(STA)";
      if (r.free_threaded) {
        ++free_threaded;
        apartment = "(FreeThreaded)";
      } else if (r.thread == 0) {
        ++mta;
        apartment = "(MTA)";
      } else {
        ++sta;
      }
      out +=
          absl::StrCat(ptr(r.rcw), " ", ptr(r.context), " ", ptr(r.thread), " ", apartment, "\n");
    }
    absl::StrAppendFormat(&out, "Free-Threaded Interfaces to be released: %s\n", N0(free_threaded));
    absl::StrAppendFormat(&out, "MTA Interfaces to be released: %s\n", N0(mta));
    absl::StrAppendFormat(&out, "STA Interfaces to be released: %s\n", N0(sta));
    out += "----------------------------------\n\n";
    Json jheaps = Json::array();
    for (size_t h = 0; h < heaps.size(); ++h) {
      const FinalizeRanges& r = heaps[h];
      absl::StrAppendFormat(&out, "Heap %d\n", h);
      Json jgens = Json::array();
      for (int g = 0; g < 3; ++g) {
        const uint64_t n = (r.gens[g].second - r.gens[g].first) / kPointerSize;
        absl::StrAppendFormat(&out, "generation %d has %s objects (%x->%x)\n", g, N0(n),
                              r.gens[g].first, r.gens[g].second);
        jgens.push_back(Json{{"generation", g},
                             {"objects", n},
                             {"start", JsonHex(r.gens[g].first)},
                             {"end", JsonHex(r.gens[g].second)}});
      }
      const uint64_t ready =
          r.roots.second >= r.roots.first ? (r.roots.second - r.roots.first) / kPointerSize : 0;
      absl::StrAppendFormat(&out, "Ready for finalization %s objects (%x->%x)\n", N0(ready),
                            r.roots.first, r.roots.second);
      out += "------------------------------\n";
      jheaps.push_back(Json{{"heap", h},
                            {"generations", jgens},
                            {"ready_for_finalization", Json{{"objects", ready},
                                                            {"start", JsonHex(r.roots.first)},
                                                            {"end", JsonHex(r.roots.second)}}}});
    }
    out += all_ready ? "Statistics for all finalizable objects that are no longer rooted:\n"
                     : "Statistics for all finalizable objects (including all objects ready for "
                       "finalization):\n";
    doc["sync_blocks_to_clean_up"] = jsb;
    doc["interfaces_to_release"] =
        Json{{"free_threaded", free_threaded}, {"mta", mta}, {"sta", sta}};
    doc["heaps"] = jheaps;
  }
  // The objects: every heap's registered objects, then (-allReady) only those the finalizer
  // queue roots or nothing reaches.
  std::unordered_set<uint64_t> rooted_by_queue;
  if (all_ready) {
    for (const FinalizeRanges& r : heaps) {
      for (const auto& o : ObjectsIn(ctx.dac, r.roots, string_mt))
        rooted_by_queue.insert(o.address);
    }
  }
  std::vector<FinalizableObject> objects;
  for (const FinalizeRanges& r : heaps) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    for (const auto& o : ObjectsIn(ctx.dac, r.objects, string_mt)) {
      if (only_mt != 0 && o.mt != only_mt) continue;
      if (live && !rooted_by_queue.count(o.address) && live->IsLive(o.address)) continue;
      objects.push_back(o);
    }
  }
  if (ctx.json) {
    doc["all_ready"] = all_ready;
    Json jobjects = Json::array();
    std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> order;
    std::unordered_map<uint64_t, size_t> pos;
    uint64_t bytes = 0;
    for (const auto& o : objects) {
      if (!stat) {
        jobjects.push_back(
            Json{{"address", JsonHex(o.address)}, {"mt", JsonHex(o.mt)}, {"size", o.size}});
      }
      auto [it, fresh] = pos.try_emplace(o.mt, order.size());
      if (fresh) order.push_back({o.mt, {0, 0}});
      ++order[it->second].second.first;
      order[it->second].second.second += o.size;
      bytes += o.size;
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.second.second < b.second.second;
    });
    Json st = Json::array();
    if (!short_) {
      for (const auto& [mt, cs] : order) {
        st.push_back(Json{{"mt", JsonHex(mt)},
                          {"count", cs.first},
                          {"total_size", cs.second},
                          {"type", PrettyName(ctx.dac, mt)}});
      }
    }
    doc["objects"] = jobjects;
    doc["statistics"] = st;
    doc["total_objects"] = objects.size();
    doc["total_size"] = bytes;
    if (live) doc["warnings"] = live->warnings();
    WriteJson(ctx, doc);
    return {};
  }
  PrintObjects(ctx, objects, short_, stat, &out);
  if (live) {
    for (const std::string& w : live->warnings()) absl::StrAppendFormat(&out, "warning: %s\n", w);
  }
  ctx.out.Write(out);
  return {};
}

// ----------------------------------------------------------------------------------------
// traverseheap

std::string Hex16(uint64_t v) { return absl::StrFormat("0x%016x", v); }

// XmlWriter's attribute escaping.
std::string XmlAttr(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// Buffers output and hands it to the sink in large pieces.
class Chunked {
 public:
  explicit Chunked(OutputSink& out) : out_(out) {}
  ~Chunked() { Flush(); }
  void Add(const std::string& s) {
    buf_ += s;
    bytes_ += s.size();
    if (buf_.size() >= 256 * 1024) Flush();
  }
  void Flush() {
    if (!buf_.empty()) out_.Write(buf_);
    buf_.clear();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  OutputSink& out_;
  std::string buf_;
  uint64_t bytes_ = 0;
};

struct Root {
  const char* kind;  // handle, finalizer, stack
  uint64_t address;  // the handle, queue slot or stack slot
};

// RootCacheService.EnumerateRoots: the strong handles, the finalizer queue's ready objects,
// then the stack roots of the live threads.
absl::StatusOr<std::vector<Root>> EnumerateRoots(CommandContext& ctx,
                                                 const std::vector<dac::HandleEntry>& handles,
                                                 const std::vector<dac::HeapSegment>& segments,
                                                 uint64_t string_mt) {
  std::vector<Root> roots;
  for (const auto& h : handles) {
    if (IsStrongHandle(h)) roots.push_back({"handle", h.handle});
  }
  auto fill = ctx.dac.GetFinalizationFillPointers();
  if (!fill.ok()) return fill.status();
  for (const auto& fp : *fill) {
    for (const auto& o : ObjectsIn(ctx.dac, RangesOf(fp).roots, string_mt)) {
      roots.push_back({"finalizer", o.slot});
    }
  }
  auto in_heap = [&](uint64_t a) {
    for (const auto& s : segments) {
      if (a >= s.start && a < s.end) return true;
    }
    return false;
  };
  auto ts = ctx.dac.GetThreadStore();
  if (!ts.ok()) return ts.status();
  for (const dac::ManagedThread& t : ts->threads) {
    if (t.os_id == 0 || (t.state & (dac::kThreadStateUnstarted | dac::kThreadStateDead)) != 0) {
      continue;
    }
    if (ctx.cancel.cancelled()) return absl::CancelledError("stack roots");
    auto refs = ctx.dac.GetStackReferences(t.os_id);
    if (!refs.ok()) continue;
    for (const dac::StackReference& r : *refs) {
      if (r.object == 0) continue;
      if (r.interior && !in_heap(r.object)) {
        uint64_t target = 0;
        if (ctx.dac.ReadTargetMemory(r.object, &target, sizeof(target)) != sizeof(target) ||
            !in_heap(target)) {
          continue;
        }
      }
      roots.push_back({"stack", r.address});
    }
  }
  return roots;
}

CommandResult TraverseHeap(CommandContext& ctx, const CommandSpec& spec,
                           const std::vector<std::string>& args) {
  bool xml = false;
  std::string file;
  for (const std::string& a : args) {
    const std::string lower = absl::AsciiStrToLower(a);
    if (lower == "-xml") {
      xml = true;
    } else if (lower == "-verify") {
      // Older SOS's extra checks: every object is read and checked here anyway.
    } else if (a.size() > 1 && a[0] == '-') {
      return UsageError(spec, absl::StrCat("Unrecognized command or argument '", a, "'."));
    } else if (file.empty()) {
      file = a;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (file.empty()) return UsageError(spec, "Output filename cannot be empty.");
  if (file != "-") {
    // The client writes the file (on its machine, as its user) from the content this command
    // produces with "-"; a path reaching the worker means the client did not do that.
    return Failure(absl::StrCat(
        "traverseheap: this client cannot receive the file; the clrdiag client writes '", file,
        "' itself (it asks the worker for `traverseheap -`)"));
  }
  auto globals = ctx.dac.GetUsefulGlobals();
  if (!globals.ok()) return FromStatus(globals.status());
  auto segments = ctx.dac.GetHeapSegments();
  if (!segments.ok()) return FromStatus(segments.status());
  auto handles = ctx.dac.GetHandles(&ctx.cancel);
  if (!handles.ok()) return FromStatus(handles.status());
  // Every dependent handle, even one whose secondary is gone: ClrMD then reports a null
  // reference, and so does the reference's file.
  std::vector<std::pair<uint64_t, uint64_t>> dependents;
  for (const auto& h : *handles) {
    if (h.type == kDependent && h.object != 0) dependents.emplace_back(h.object, h.secondary);
  }
  auto roots = EnumerateRoots(ctx, *handles, *segments, globals->string_mt);
  if (!roots.ok()) return FromStatus(roots.status());

  // The types come first in the file but get their ids in heap order: a first walk numbers
  // them (the reference keeps the whole rest of the file in memory instead), a second one
  // streams the objects.
  std::unordered_map<uint64_t, int> type_ids;
  std::vector<uint64_t> type_order;
  ProgressInfo progress;
  progress.stage = "numbering the types";
  for (const auto& s : *segments) {
    if (s.end > s.start) progress.total += s.end - s.start;
  }
  auto numbering = dac::WalkHeap(
      ctx.dac,
      [&](const dac::HeapObject& obj) {
        progress.done += obj.footprint;
        if ((++progress.items & 0xffff) == 0) ctx.out.Progress(progress);
        auto [it, fresh] = type_ids.try_emplace(obj.mt, static_cast<int>(type_ids.size()) + 1);
        if (fresh) type_order.push_back(obj.mt);
        return true;
      },
      &ctx.cancel);
  if (!numbering.ok()) return FromStatus(numbering.status());

  // JSON: the whole content in one value (meant for small heaps; the client writes files
  // from the text form).
  std::string content;
  std::optional<Chunked> chunked;
  if (!ctx.json) chunked.emplace(ctx.out);
  auto emit = [&](const std::string& piece) {
    if (chunked) {
      chunked->Add(piece);
    } else {
      content += piece;
    }
  };
  std::string text;
  if (xml) text = "<gcheap>\n  <types>";
  for (uint64_t mt : type_order) {
    const std::string name = mt == globals->free_mt ? std::string("Free") : PrettyName(ctx.dac, mt);
    if (xml) {
      absl::StrAppend(&text, "\n    <type id=\"", type_ids[mt], "\" name=\"", XmlAttr(name),
                      "\" />");
    } else {
      absl::StrAppend(&text, "t ", type_ids[mt], " 0 ", name, "\n");
    }
  }
  if (xml) text += "\n  </types>";
  text += "\n";
  if (xml) {
    text += "<roots>";
    for (const Root& r : *roots) {
      absl::StrAppend(&text, "\n  <root kind=\"", r.kind, "\" address=\"", Hex16(r.address),
                      "\" />");
    }
    text += "\n</roots>\n<objects>";
  } else {
    text += "r";
    for (const Root& r : *roots) absl::StrAppend(&text, " ", Hex16(r.address));
    text += "\n";
  }
  emit(text);
  text.clear();

  dac::ObjectReferenceReader reader(ctx.dac, std::move(dependents));
  std::vector<uint64_t> refs;
  int next_object = 1;
  progress.stage = "writing the objects";
  progress.done = 0;
  progress.items = 0;
  auto walk = dac::WalkHeap(
      ctx.dac,
      [&](const dac::HeapObject& obj) {
        progress.done += obj.footprint;
        if ((++progress.items & 0xffff) == 0) ctx.out.Progress(progress);
        auto it = type_ids.find(obj.mt);
        if (it == type_ids.end()) {  // cannot happen: the same walk numbered every type
          it = type_ids.emplace(obj.mt, static_cast<int>(type_ids.size()) + 1).first;
        }
        const int type_id = it->second;
        const int id = next_object++;
        refs.clear();
        if (obj.mt != globals->free_mt) reader.References(obj.address, obj.mt, obj.size, &refs);
        if (xml) {
          absl::StrAppend(&text, "\n  <object address=\"", Hex16(obj.address), "\" typeid=\"",
                          type_id, "\" size=\"", obj.size, "\"");
          if (refs.empty()) {
            text += " />";
          } else {
            text += ">";
            for (uint64_t r : refs) {
              absl::StrAppend(&text, "\n    <member address=\"", Hex16(r), "\" />");
            }
            text += "\n  </object>";
          }
        } else {
          absl::StrAppend(&text, "n ", id, " 1 ", type_id, " ", obj.size, "\n! 1 ",
                          Hex16(obj.address), " ", id, "\no ", Hex16(obj.address), " ", type_id,
                          " ", obj.size, " ");
          for (uint64_t r : refs) absl::StrAppend(&text, " ", Hex16(r));
          text += "\n";
        }
        if (text.size() >= 64 * 1024) {
          emit(text);
          text.clear();
        }
        return true;
      },
      &ctx.cancel);
  if (!walk.ok()) return FromStatus(walk.status());
  if (xml) text += "\n</objects>\n</gcheap>";
  emit(text);
  if (ctx.json) {
    Json doc{{"format", xml ? "xml" : "clrprofiler"},
             {"roots", roots->size()},
             {"objects", next_object - 1},
             {"types", type_order.size()},
             {"content", content}};
    WriteJson(ctx, doc);
  }
  return {};
}

// ----------------------------------------------------------------------------------------
// dumpconcurrentdictionary / dumpconcurrentqueue

// CorElementType values the renderings look at.
enum : int32_t {
  kElemBoolean = 0x2,
  kElemChar = 0x3,
  kElemI1 = 0x4,
  kElemU1 = 0x5,
  kElemI2 = 0x6,
  kElemU2 = 0x7,
  kElemI4 = 0x8,
  kElemU4 = 0x9,
  kElemI8 = 0xa,
  kElemU8 = 0xb,
  kElemR4 = 0xc,
  kElemR8 = 0xd,
  kElemString = 0xe,
  kElemValueType = 0x11,
  kElemClass = 0x12,
  kElemVar = 0x13,
  kElemArray = 0x14,
  kElemGenericInst = 0x15,
  kElemI = 0x18,
  kElemU = 0x19,
  kElemObject = 0x1c,
  kElemSzArray = 0x1d,
};

bool IsReferenceElement(int32_t t) {
  return t == kElemString || t == kElemClass || t == kElemVar || t == kElemArray ||
         t == kElemObject || t == kElemSzArray || t == kElemGenericInst;
}

// Fields of a type by name, as ClrMD's GetFieldByName finds them: the type's own first,
// then its parents'.
class Fields {
 public:
  explicit Fields(dac::DacProcess& dac) : dac_(dac) {}

  std::optional<dac::FieldDescInfo> Find(uint64_t mt, const std::string& name) {
    for (int depth = 0; mt != 0 && depth < 64; ++depth) {
      auto details = dac_.GetMethodTableDetails(mt);
      if (!details.ok()) return std::nullopt;
      auto fields = dac_.GetMethodTableFields(mt);
      if (!fields.ok()) return std::nullopt;
      uint32_t parent_instance = 0;
      if (details->parent != 0) {
        auto pf = dac_.GetMethodTableFields(details->parent);
        if (pf.ok()) parent_instance = pf->num_instance;
      }
      const uint32_t own =
          (fields->num_instance >= parent_instance ? fields->num_instance - parent_instance : 0) +
          fields->num_static + fields->num_thread_static;
      uint64_t addr = fields->first_field;
      for (uint32_t i = 0; i < own && addr != 0; ++i) {
        auto fd = dac_.GetFieldDesc(addr);
        if (!fd.ok()) break;
        if (!fd->is_static) {
          auto n = dac_.GetMetadataName(details->module, fd->token | dac::kMdtFieldDef);
          if (n.ok() && *n == name) return *fd;
        }
        addr = fd->next;
      }
      mt = details->parent;
    }
    return std::nullopt;
  }

 private:
  dac::DacProcess& dac_;
};

// Renders values the way ClrMDHelper does.
class ValueRenderer {
 public:
  explicit ValueRenderer(CommandContext& ctx) : ctx_(ctx), fields_(ctx.dac) {
    auto g = ctx.dac.GetUsefulGlobals();
    if (g.ok()) globals_ = *g;
  }

  Fields& fields() { return fields_; }
  const dac::UsefulGlobals& globals() const { return globals_; }

  bool ReadPointer(uint64_t addr, uint64_t* out) {
    return ctx_.dac.ReadTargetMemory(addr, out, sizeof(*out)) == sizeof(*out);
  }

  // The MethodTable of the object at `obj`, or 0 if it is not one.
  uint64_t MethodTableOf(uint64_t obj) {
    if (obj == 0) return 0;
    auto details = ctx_.dac.GetObjectDetails(obj);
    if (!details.ok() || details->mt == 0) return 0;
    if (!ctx_.dac.GetMethodTableDetails(details->mt).ok()) return 0;
    return details->mt;
  }

  std::string String(uint64_t obj) {
    uint32_t length = 0;
    if (ctx_.dac.ReadTargetMemory(obj + 8, &length, sizeof(length)) != sizeof(length)) return "";
    auto chars = ctx_.dac.GetObjectString(obj, std::min<uint32_t>(length, 1u << 20));
    return chars.ok() ? dac::Utf16ToUtf8(*chars) : "";
  }

  // TryGetSimpleValue: the primitive of element type `t` at `addr`.
  std::optional<std::string> Simple(int32_t t, uint64_t addr, bool array_style = false) {
    uint8_t raw[8] = {};
    auto read = [&](size_t n) { return ctx_.dac.ReadTargetMemory(addr, raw, n) == n; };
    auto as = [&](auto v) {
      std::memcpy(&v, raw, sizeof(v));
      return v;
    };
    switch (t) {
      case kElemChar: {
        if (!read(2)) return std::nullopt;
        std::u16string c(1, as(char16_t{}));
        return absl::StrCat("'", dac::Utf16ToUtf8(c), "'");
      }
      case kElemBoolean:
        if (!read(1)) return std::nullopt;
        return raw[0] ? "True" : "False";
      case kElemI1:
        if (!read(1)) return std::nullopt;
        return absl::StrCat(as(int8_t{}));
      case kElemU1:
        if (!read(1)) return std::nullopt;
        return absl::StrCat(as(uint8_t{}));
      case kElemI2:
        if (!read(2)) return std::nullopt;
        return absl::StrCat(as(int16_t{}));
      case kElemU2:
        if (!read(2)) return std::nullopt;
        return absl::StrCat(as(uint16_t{}));
      case kElemI4:
        if (!read(4)) return std::nullopt;
        return absl::StrCat(as(int32_t{}));
      case kElemU4:
        if (!read(4)) return std::nullopt;
        return absl::StrCat(as(uint32_t{}));
      case kElemI8:
        if (!read(8)) return std::nullopt;
        return absl::StrCat(as(int64_t{}));
      case kElemU8:
        if (!read(8)) return std::nullopt;
        return absl::StrCat(as(uint64_t{}));
      case kElemR4:
        if (!read(4)) return std::nullopt;
        return Real(as(float{}));
      case kElemR8:
        if (!read(8)) return std::nullopt;
        return Real(as(double{}));
      case kElemI:
      case kElemU: {
        if (!read(8)) return std::nullopt;
        const uint64_t v = as(uint64_t{});
        if (v == 0) return "null";
        return array_style ? absl::StrFormat("0x%016x", v) : absl::StrFormat("0x%x", v);
      }
      default:
        return std::nullopt;
    }
  }

  // DumpPropertyValue: a field of kind `fd` whose data is at `addr`.
  std::string Property(const dac::FieldDescInfo& fd, uint64_t addr) {
    if (IsReferenceElement(fd.type)) {
      uint64_t obj = 0;
      if (!ReadPointer(addr, &obj)) return "?";
      if (obj == 0) return "null";
      const uint64_t mt = MethodTableOf(obj);
      if (mt == 0) return "?";
      if (mt == globals_.string_mt) return absl::StrCat("\"", String(obj), "\"");
      auto d = ctx_.dac.GetObjectDetails(obj);
      if (d.ok() && d->kind == 3 /* OBJ_ARRAY */) return absl::StrFormat("dumparray %016x", obj);
      return absl::StrFormat("dumpobj %016x", obj);
    }
    if (auto simple = Simple(fd.type, addr)) return *simple;
    if (fd.type == kElemValueType) {
      return absl::StrFormat("dumpvc %016x %016x", fd.mt_of_type, addr);
    }
    return "?";
  }

 private:
  // .NET's shortest round-trip rendering of a float or double (E notation beyond 1e15).
  template <typename T>
  static std::string Real(T v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "\u221e" : "-\u221e";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    std::string s(buf, r.ptr);
    if (auto e = s.find('e'); e != std::string::npos) {
      std::string mant = s.substr(0, e), exp = s.substr(e + 1);
      const char sign = exp[0] == '-' ? '-' : '+';
      if (exp[0] == '-' || exp[0] == '+') exp = exp.substr(1);
      if (exp.size() < 2) exp = "0" + exp;
      s = absl::StrCat(mant, "E", std::string(1, sign), exp);
    }
    return s;
  }

  CommandContext& ctx_;
  Fields fields_;
  dac::UsefulGlobals globals_;
};

// The shared start of both commands: the address argument and the object's type check.
// Returns the pretty type name, or a failure in *error.
std::optional<std::string> CheckCollection(CommandContext& ctx, const CommandSpec& spec,
                                           const std::vector<std::string>& args,
                                           const std::string& kind, uint64_t* address,
                                           CommandResult* error) {
  std::string text;
  for (const std::string& a : args) {
    if (a.size() > 1 && a[0] == '-') {
      *error = UsageError(spec, absl::StrCat("Unrecognized command or argument '", a, "'."));
      return std::nullopt;
    }
    if (!text.empty()) {
      *error = UsageError(spec, absl::StrCat("Unrecognized command or argument '", a, "'."));
      return std::nullopt;
    }
    text = a;
  }
  if (text.empty()) {
    *error = Failure(absl::StrCat("Missing ", kind, " address..."));
    return std::nullopt;
  }
  if (!ParseHexAddress(text, address)) {
    *error = Failure("Hexadecimal address expected...");
    return std::nullopt;
  }
  ValueRenderer values(ctx);
  const uint64_t mt = values.MethodTableOf(*address);
  auto raw = mt != 0 ? ctx.dac.GetMethodTableName(mt)
                     : absl::StatusOr<std::string>(absl::NotFoundError(""));
  if (mt == 0 || !raw.ok() || mt == values.globals().free_mt) {
    *error = Failure(absl::StrCat(text, " is not referencing an object..."));
    return std::nullopt;
  }
  std::string name = dac::PrettyTypeName(*raw);
  if (!absl::StartsWith(name, absl::StrCat("System.Collections.Concurrent.", kind, "<"))) {
    *error = Failure(absl::StrCat(text, " is not a ", kind, " but an instance of ", name, "..."));
    return std::nullopt;
  }
  return name;
}

std::string Truncate(const std::string& s, size_t max) {
  // Counted in UTF-16 units by the reference; in bytes here (the same for ASCII).
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

CommandResult DumpConcurrentDictionary(CommandContext& ctx, const CommandSpec& spec,
                                       const std::vector<std::string>& args) {
  uint64_t address = 0;
  CommandResult error;
  auto name = CheckCollection(ctx, spec, args, "ConcurrentDictionary", &address, &error);
  if (!name) return error;
  ValueRenderer v(ctx);
  Fields& f = v.fields();
  const uint64_t mt = v.MethodTableOf(address);
  std::vector<std::pair<std::string, std::string>> items;
  std::string problem;
  [&] {
    auto tables_fd = f.Find(mt, "_tables");
    uint64_t tables = 0;
    if (!tables_fd || !v.ReadPointer(address + 8 + tables_fd->offset, &tables) ||
        v.MethodTableOf(tables) == 0) {
      problem = "ConcurrentDictionary does not own _tables attribute";
      return;
    }
    auto buckets_fd = f.Find(v.MethodTableOf(tables), "_buckets");
    uint64_t buckets = 0;
    if (!buckets_fd || !v.ReadPointer(tables + 8 + buckets_fd->offset, &buckets) ||
        v.MethodTableOf(buckets) == 0) {
      problem = "ConcurrentDictionary tables does not own _buckets attribute";
      return;
    }
    auto array = ctx.dac.GetObjectDetails(buckets);
    if (!array.ok()) return;
    // .NET 8+: the buckets are VolatileNode structs holding the node in _node; before, nodes.
    const bool volatile_nodes = f.Find(mt, "_comparerIsDefaultForClasses").has_value();
    std::optional<dac::FieldDescInfo> node_fd;
    if (volatile_nodes) node_fd = f.Find(array->element_type_handle, "_node");
    for (uint64_t i = 0; i < array->components; ++i) {
      if (ctx.cancel.cancelled()) return;
      uint64_t slot = array->array_data + i * array->component_size;
      if (volatile_nodes) slot += node_fd ? node_fd->offset : 0;
      uint64_t node = 0;
      if (!v.ReadPointer(slot, &node)) break;
      std::optional<dac::FieldDescInfo> key_fd, value_fd, next_fd;
      for (int guard = 0; node != 0 && guard < 10000000; ++guard) {
        const uint64_t node_mt = v.MethodTableOf(node);
        if (node_mt == 0) break;
        if (!key_fd) {
          key_fd = f.Find(node_mt, "_key");
          value_fd = f.Find(node_mt, "_value");
          next_fd = f.Find(node_mt, "_next");
          if (!key_fd || !value_fd) {
            problem =
                "Concurrent dictionary doesn't contain _key and _value attributes. This command "
                "may not be compatible with the current runtime";
            return;
          }
        }
        items.emplace_back(v.Property(*key_fd, node + 8 + key_fd->offset),
                           v.Property(*value_fd, node + 8 + value_fd->offset));
        if (!next_fd || !v.ReadPointer(node + 8 + next_fd->offset, &node)) break;
      }
    }
  }();
  if (ctx.cancel.cancelled()) return Failure("cancelled");
  if (ctx.json) {
    Json jitems = Json::array();
    for (const auto& [k, val] : items) jitems.push_back(Json{{"key", k}, {"value", val}});
    Json doc{
        {"address", JsonHex(address)}, {"type", *name}, {"items", jitems}, {"count", items.size()}};
    if (!problem.empty()) doc["error"] = problem;
    WriteJson(ctx, doc);
    return {};
  }
  std::string out = *name + "\n";
  for (const auto& [k, val] : items) {
    absl::StrAppend(&out, "    -----\n      Key: ", Truncate(k, 100),
                    "\n    Value: ", Truncate(val, 100), "\n");
  }
  if (problem.empty()) {
    absl::StrAppend(&out, "---------------------------------------------\n", items.size(),
                    " items\n");
  } else {
    absl::StrAppend(&out, problem, "\n");
  }
  out += "\n";
  ctx.out.Write(out);
  return {};
}

CommandResult DumpConcurrentQueue(CommandContext& ctx, const CommandSpec& spec,
                                  const std::vector<std::string>& args) {
  uint64_t address = 0;
  CommandResult error;
  auto name = CheckCollection(ctx, spec, args, "ConcurrentQueue", &address, &error);
  if (!name) return error;
  ValueRenderer v(ctx);
  Fields& f = v.fields();
  const uint64_t mt = v.MethodTableOf(address);
  std::vector<std::string> items;
  auto head_fd = f.Find(mt, "_head");
  uint64_t segment = 0;
  if (head_fd) v.ReadPointer(address + 8 + head_fd->offset, &segment);
  std::optional<dac::FieldDescInfo> slots_fd, next_fd, item_fd;
  bool known = false, value_items = true, dump_arrays = false;
  for (int guard = 0; segment != 0 && guard < 1000000; ++guard) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    const uint64_t seg_mt = v.MethodTableOf(segment);
    if (seg_mt == 0) break;
    if (!slots_fd) {
      slots_fd = f.Find(seg_mt, "_slots");
      next_fd = f.Find(seg_mt, "_nextSegment");
      if (!slots_fd) break;
    }
    uint64_t slots = 0;
    v.ReadPointer(segment + 8 + slots_fd->offset, &slots);
    auto next = [&] {
      uint64_t n = 0;
      if (!next_fd || !v.ReadPointer(segment + 8 + next_fd->offset, &n)) n = 0;
      segment = n;
    };
    auto array = slots != 0 ? ctx.dac.GetObjectDetails(slots)
                            : absl::StatusOr<dac::ObjectDetails>(absl::NotFoundError(""));
    if (!array.ok()) break;
    if (!known) {
      // The slot struct's Item field: System.__Canon for reference types, or the value type.
      item_fd = f.Find(array->element_type_handle, "Item");
      if (array->element_type_handle == 0 || array->components == 0 || !item_fd) {
        items.push_back(absl::StrFormat("dumparray %016x", slots));
        next();
        continue;
      }
      known = true;
      value_items = !IsReferenceElement(item_fd->type);
      if (value_items && !v.Simple(item_fd->type, array->array_data + item_fd->offset)) {
        dump_arrays = true;
      }
    }
    if (dump_arrays) {
      items.push_back(absl::StrFormat("dumparray %016x", slots));
      next();
      continue;
    }
    for (uint64_t i = 0; i < array->components; ++i) {
      const uint64_t at = array->array_data + i * array->component_size + item_fd->offset;
      if (value_items) {
        auto s = v.Simple(item_fd->type, at);
        if (!s) {
          items.push_back(absl::StrFormat("dumparray %016x", slots));
          break;
        }
        items.push_back(*s);
        continue;
      }
      uint64_t obj = 0;
      if (!v.ReadPointer(at, &obj) || obj == 0) continue;
      if (v.MethodTableOf(obj) == v.globals().string_mt) {
        items.push_back(absl::StrCat("\"", v.String(obj), "\""));
      } else {
        items.push_back(absl::StrFormat("dumpobj 0x%016x", obj));
      }
    }
    next();
  }
  if (ctx.json) {
    Json doc{
        {"address", JsonHex(address)}, {"type", *name}, {"items", items}, {"count", items.size()}};
    WriteJson(ctx, doc);
    return {};
  }
  std::string out = *name + "\n";
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppendFormat(&out, "%4d - %s\n", i + 1, items[i]);
  }
  absl::StrAppend(&out, "---------------------------------------------\n", items.size(),
                  " items\n\n");
  ctx.out.Write(out);
  return {};
}

}  // namespace

void RegisterHandleCommands(CommandRegistry& r) {
  r.Add({{"gchandles", "GCHandles"},
         "<arguments>",
         "Provides statistics about GCHandles in the process.",
         "gchandles [-type <handle type>] [-stat] [-perdomain]\n"
         "  Every GC handle (handle, type, object, size, data, type name), statistics of the\n"
         "  objects they hold and the number of handles of each type.\n"
         "  -type       only handles of this type: Strong, Pinned, WeakShort, WeakLong,\n"
         "              RefCounted, Dependent, AsyncPinned, SizedRef, Variable, WeakWinRT,\n"
         "              WeakInteriorPointer (any case)\n"
         "  -stat       only the statistics, not the handles\n"
         "  -perdomain  the statistics per application domain",
         GcHandles});
  r.Add({{"finalizequeue", "fq", "FinalizeQueue"},
         "<arguments>",
         "Displays all objects registered for finalization.",
         "finalizequeue [-detail] [-allReady] [-short] [-mt <MethodTable>] [-stat]\n"
         "  The sync blocks and COM wrappers waiting for cleanup, the finalize queue's ranges\n"
         "  per heap, then the objects registered for finalization and their statistics.\n"
         "  -detail    the cleanup lists in full (they are always printed here)\n"
         "  -allReady  only objects that are ready: queued for their finalizer already, or\n"
         "             reachable from no root (computes reachability: slower)\n"
         "  -short     only the objects' addresses\n"
         "  -mt        only objects of this MethodTable (hex)\n"
         "  -stat      only the statistics (also -summary)",
         FinalizeQueue});
  r.Add({{"traverseheap", "TraverseHeap"},
         "<arguments>",
         "Writes out heap information to a file in a format understood by the CLR Profiler.",
         "traverseheap [-xml] <filename>\n"
         "  Writes every heap object (address, type, size and the objects it references) and\n"
         "  the roots (strong handles, finalizer queue, stack slots) to <filename>, in the CLR\n"
         "  Profiler's text format or, with -xml, as XML (<gcheap><types/><roots/><objects/>).\n"
         "  The file is written by the client, on the client's machine, relative to its\n"
         "  current directory; `traverseheap [-xml] -` prints the content instead.",
         TraverseHeap});
  r.Add({{"dumpconcurrentdictionary", "dcd"},
         "<address>",
         "Displays concurrent dictionary content.",
         "dumpconcurrentdictionary <address of a ConcurrentDictionary>\n"
         "  Lists the key/value pairs: numbers, booleans and strings by value, reference types\n"
         "  as the dumpobj/dumparray command to see them, other value types as dumpvc.",
         DumpConcurrentDictionary});
  r.Add({{"dumpconcurrentqueue", "dcq"},
         "<address>",
         "Displays concurrent queue content.",
         "dumpconcurrentqueue <address of a ConcurrentQueue>\n"
         "  Lists the items: numbers, booleans and strings by value, reference types as the\n"
         "  dumpobj command to see them, other value types as the dumparray command of each\n"
         "  segment. Like the reference, a queue of numbers shows every slot of its segments.",
         DumpConcurrentQueue});
}

}  // namespace clrdiag::sos
