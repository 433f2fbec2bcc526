// verifyheap and verifyobj over core/dac/gc_verify, in VerifyHeapCommand's and
// VerifyObjectCommand's layouts.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/gc_verify.h"
#include "core/sos/format.h"
#include "core/sos/gc_commands.h"

namespace clrdiag::sos::gc {
namespace {

using dac::GcLayout;
using dac::GcSegment;

// ---- verifyheap / verifyobj ---------------------------------------------------------------

std::string ReadPointerText(CommandContext& ctx, uint64_t address) {
  uint64_t v = 0;
  if (ctx.core.ReadDumpedMemory(address, &v, 8) != 8 &&
      ctx.dac.ReadTargetMemory(address, &v, 8) != 8) {
    return "???";
  }
  return absl::StrFormat("%x", v);
}

std::string SyncBlockMessage(const dac::Corruption& c) {
  if (c.clr_sync_block_index >= 0) {
    std::string r = absl::StrFormat("Object %x should have a SyncBlock index of %d ", c.object,
                                    c.clr_sync_block_index);
    if (c.sync_block_index >= 0) {
      return r + absl::StrCat("but instead had an index of ", c.sync_block_index);
    }
    return r + "but instead had no SyncBlock";
  }
  if (c.sync_block_index >= 0) {
    return absl::StrFormat(
        "Object %x had a SyncBlock index of %d but the runtime has no matching SyncBlock", c.object,
        c.sync_block_index);
  }
  return absl::StrFormat("Object %x had no SyncBlock when it was expected to", c.object);
}

// VerifyHeapCommand.GetObjectCorruptionMessage.
std::string CorruptionMessage(CommandContext& ctx, const GcLayout& layout,
                              const dac::Corruption& c) {
  using K = dac::CorruptionKind;
  const uint64_t at = c.object + static_cast<uint64_t>(c.offset);
  switch (c.kind) {
    case K::kObjectNotOnTheHeap:
      return absl::StrFormat("Tried to validate %x but its address was not on any segment.",
                             c.object);
    case K::kObjectNotPointerAligned:
      return absl::StrFormat("Object %x is not pointer aligned", c.object);
    case K::kObjectTooLarge: {
      const GcSegment* s = layout.FindByObjectRange(c.object);
      return absl::StrFormat("Object %x is too large, size=%x, segmentEnd: %s", c.object, c.size,
                             s ? absl::StrFormat("%x", s->objects.end) : "???");
    }
    case K::kInvalidMethodTable:
      return absl::StrFormat("Object %x has an invalid method table %s", c.object,
                             ReadPointerText(ctx, c.object));
    case K::kInvalidThinlock:
      return absl::StrFormat("Object %x has an invalid thin lock", c.object);
    case K::kSyncBlockMismatch:
    case K::kSyncBlockZero:
      return SyncBlockMessage(c);
    case K::kObjectReferenceNotPointerAligned:
      return absl::StrFormat(
          "Object %x has an unaligned member at offset %x: is not pointer aligned", c.object,
          c.offset);
    case K::kInvalidObjectReference:
      return absl::StrFormat("Object %x has a bad member at offset %x: %s", c.object, c.offset,
                             ReadPointerText(ctx, at));
    case K::kFreeObjectReference:
      return absl::StrFormat("Object %x contains free object at offset %x: %s", c.object, c.offset,
                             ReadPointerText(ctx, at));
    case K::kCouldNotReadObject:
      return absl::StrFormat("Could not read object %x at offset %x: %s", c.object, c.offset,
                             ReadPointerText(ctx, at));
    case K::kCouldNotReadMethodTable:
      return absl::StrFormat("Could not read method table for Object %x", c.object);
    case K::kCouldNotReadCardTable:
      return absl::StrFormat("Could not verify object %x: could not read card table", c.object);
    case K::kCouldNotReadGCDesc:
      return absl::StrFormat("Could not verify object %x: could not read GCDesc", c.object);
    case K::kNone:
      break;
  }
  return "";
}

constexpr size_t kKindWidth = 32;  // the longest ObjectCorruptionKind name

Json CorruptionJson(CommandContext& ctx, const GcLayout& layout, const dac::Corruption& c) {
  Json j = {{"object", JsonHex(c.object)},
            {"offset", c.offset},
            {"kind", dac::CorruptionKindName(c.kind)},
            {"message", CorruptionMessage(ctx, layout, c)}};
  if (const GcSegment* s = layout.FindByObjectRange(c.object)) {
    j["segment"] = JsonHex(s->address);
    j["heap"] = s->heap;
  }
  return j;
}

}  // namespace

namespace {
// A memory range bound as the reference takes it: hex, 0x allowed.
bool ParseRangeBound(const std::string& s, uint64_t* out) {
  std::string digits = absl::StartsWithIgnoreCase(s, "0x") ? s.substr(2) : s;
  return !digits.empty() && absl::SimpleHexAtoi(digits, out);
}
}  // namespace

CommandResult VerifyHeap(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  bool ignore_state = false;
  int heap = -1;
  uint64_t segment = 0;
  std::vector<std::string> range_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::string l = absl::AsciiStrToLower(a);
    if (l == "-ignoregcstate") {
      ignore_state = true;
    } else if (l == "-noprogress") {
      // Progress goes to the progress channel, never into the output.
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
  if (range_args.size() > 2) return UsageError(spec, "Too many arguments to !verifyheap");
  dac::VerifyScope scope;
  if (!range_args.empty()) {
    scope.has_range = true;
    scope.range.end = UINT64_MAX;
    if (!ParseRangeBound(range_args[0], &scope.range.start)) {
      return UsageError(spec, absl::StrCat("Invalid start address: ", range_args[0]));
    }
    if (range_args.size() == 2) {
      std::string end = range_args[1];
      const bool length = !end.empty() && (end[0] == 'L' || end[0] == 'l');
      if (length) end = end.substr(1);
      if (!ParseRangeBound(end, &scope.range.end)) {
        return UsageError(spec, absl::StrCat("Invalid end address: ", end));
      }
      if (length) scope.range.end += scope.range.start;
      if (scope.range.end <= scope.range.start) {
        return UsageError(spec, absl::StrCat("Start address must be before end address: '",
                                             range_args[0], "' < '", range_args[1], "'"));
      }
    }
  }
  auto layout_or = dac::ReadGcLayout(ctx.dac);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  // The reference's HeapWithFilters: the segments of the heap, the one at (or committed over)
  // the -segment address, those whose committed memory overlaps the range; ordered by heap
  // then segment address. Filtered runs also verify the sync block table's objects.
  const bool filtered = heap >= 0 || segment != 0 || scope.has_range;
  if (heap >= 0 && std::none_of(layout.heaps.begin(), layout.heaps.end(),
                                [&](const dac::GcSubHeap& h) { return h.index == heap; })) {
    return Failure(absl::StrCat("No GC heap with index of ", heap));
  }
  if (scope.has_range &&
      std::none_of(layout.sorted.begin(), layout.sorted.end(), [&](const GcSegment* s) {
        return s->committed.start < scope.range.end && scope.range.start < s->committed.end;
      })) {
    return Failure(absl::StrFormat("No segments or objects in range [%x,%x)", scope.range.start,
                                   scope.range.end));
  }
  for (const GcSegment* s : layout.sorted) {
    if (heap >= 0 && s->heap != heap) continue;
    if (segment != 0 && s->address != segment && !s->committed.Contains(segment)) continue;
    if (scope.has_range &&
        !(s->committed.start < scope.range.end && scope.range.start < s->committed.end)) {
      continue;
    }
    scope.segments.push_back(s);
  }
  std::stable_sort(scope.segments.begin(), scope.segments.end(),
                   [](const GcSegment* a, const GcSegment* b) {
                     return a->heap != b->heap ? a->heap < b->heap : a->address < b->address;
                   });
  if (!layout.structures_valid && !ignore_state) {
    return Failure(
        "The GC heap is not in a valid state for traversal.  (Use -ignoreGCState to override.)");
  }
  dac::HeapVerifier verifier(ctx.dac, layout);
  uint64_t errors = 0;
  std::string table;
  Json list = Json::array();
  auto report = [&](const dac::Corruption& c) {
    ++errors;
    if (ctx.json) {
      list.push_back(CorruptionJson(ctx, layout, c));
      return;
    }
    if (table.empty()) {
      if (layout.server) table += Left("Heap", 4) + " ";
      absl::StrAppend(&table, Left("Segment", 16), " ", Left("Object", 16), " ",
                      Left("Failure", kKindWidth), " Reason\n");
    }
    const GcSegment* s = layout.FindByObjectRange(c.object);
    if (layout.server) table += Left(s ? absl::StrCat(s->heap) : "???", 4) + " ";
    absl::StrAppend(&table, Left(s ? Ptr(s->address) : "???", 16), " ", Left(Ptr(c.object), 16),
                    " ", Left(dac::CorruptionKindName(c.kind), kKindWidth), " ",
                    CorruptionMessage(ctx, layout, c), "\n");
  };
  auto progress = [&](const dac::VerifyProgress& p) {
    ProgressInfo info;
    info.stage = "verifying the heap";
    info.done = p.bytes_done;
    info.total = p.bytes_total;
    info.items = p.objects;
    ctx.out.Progress(info);
  };
  auto objects = verifier.VerifyHeap(report, progress, &ctx.cancel, filtered ? &scope : nullptr);
  if (!objects.ok()) return FromStatus(objects.status());
  // Filtered: the objects of the sync block table too (the first problem of each), in a
  // table of their own.
  uint64_t sync_blocks = 0, sync_errors = 0;
  const std::string object_table = table;
  std::string sync_table;
  if (filtered) {
    sync_blocks = verifier.sync_block_count();
    for (uint64_t object : verifier.SyncBlockObjects()) {
      auto found = verifier.VerifyObject(object);
      if (!found.ok() || found->empty()) continue;
      if (sync_errors++ == 0) table.clear();  // a new header
      report(found->front());
      --errors;
      if (ctx.json) list.back()["sync_block_table"] = true;
    }
    if (sync_errors > 0) sync_table = table;
  }
  if (ctx.json) {
    Json result{{"objects", *objects}, {"errors", errors + sync_errors}, {"corruptions", list}};
    if (filtered) result["sync_blocks"] = sync_blocks;
    WriteJson(ctx, result);
  } else {
    std::string out = object_table;
    if (sync_errors > 0) {
      if (!out.empty()) out += "\n";
      absl::StrAppend(&out, "SyncBlock Table:\n", sync_table, "\n");
    }
    if (filtered) {
      absl::StrAppend(&out, N0(sync_blocks), " SyncBlocks verified, ", N0(sync_errors), " error",
                      sync_errors == 1 ? "" : "s", ".\n");
    }
    if (errors + sync_errors > 0) out += "\n";
    absl::StrAppend(&out, N0(*objects), " objects verified, ", N0(errors), " error",
                    errors == 1 ? "" : "s", ".\n");
    if (errors == 0 && sync_errors == 0) out += "No heap corruption detected.\n";
    ctx.out.Write(out);
  }
  errors += sync_errors;
  if (errors > 0) {
    return Failure(absl::StrCat("heap corruption detected: ", N0(errors), " object",
                                errors == 1 ? "" : "s", " failed verification"));
  }
  return {};
}

// HexOffset: "0x08", "-0x04".
std::string HexOffset(int64_t v) {
  return v < 0 ? absl::StrFormat("-0x%02x", -v) : absl::StrFormat("0x%02x", v);
}

CommandResult VerifyObj(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  if (args.empty()) return UsageError(spec, "missing object address");
  if (args.size() > 1) return UsageError(spec, absl::StrCat("unexpected argument '", args[1], "'"));
  uint64_t address = 0;
  if (!ParseHexAddress(args[0], &address)) {
    return Failure(absl::StrCat("Invalid object address: '", args[0], "'"));
  }
  auto layout_or = dac::ReadGcLayout(ctx.dac);
  if (!layout_or.ok()) return FromStatus(layout_or.status());
  const GcLayout& layout = **layout_or;
  dac::HeapVerifier verifier(ctx.dac, layout);
  auto found = verifier.VerifyObject(address);
  if (!found.ok()) return FromStatus(found.status());
  if (ctx.json) {
    Json list = Json::array();
    for (const dac::Corruption& c : *found) list.push_back(CorruptionJson(ctx, layout, c));
    WriteJson(ctx, Json{{"object", JsonHex(address)}, {"valid", found->empty()}, {"errors", list}});
  } else if (found->empty()) {
    ctx.out.Write(absl::StrFormat("object 0x%x is a valid object\n", address));
  } else {
    size_t w = 6;  // "Offset"
    for (const dac::Corruption& c : *found) w = std::max(w, HexOffset(c.offset).size());
    std::string out =
        absl::StrCat(Left("Offset", w), " ", Left("Issue", kKindWidth), " ", "Description\n");
    for (const dac::Corruption& c : *found) {
      absl::StrAppend(&out, Left(HexOffset(c.offset), w), " ",
                      Left(dac::CorruptionKindName(c.kind), kKindWidth), " ",
                      CorruptionMessage(ctx, layout, c), "\n");
    }
    absl::StrAppend(&out, "\n", N0(found->size()), " error", found->size() == 1 ? "" : "s",
                    "  detected.\n");
    ctx.out.Write(out);
  }
  if (!found->empty()) {
    return Failure(absl::StrFormat("object 0x%x is not a valid object: %s error%s detected",
                                   address, N0(found->size()), found->size() == 1 ? "" : "s"));
  }
  return {};
}

}  // namespace clrdiag::sos::gc
