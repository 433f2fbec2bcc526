// Heap questions the reference answers with its managed commands and the seed's table does not
// list, kept because a user coming from dotnet-dump types them:
//  - sizestats: per generation, how many objects (and free blocks) of each rounded size;
//  - dumpexceptions: every exception object on the heap, with its message and the top frame of
//    its recorded stack trace; -live/-dead/-gen/-type narrow the list.
// Both answer from one heap walk over the GC layout that eeheap/gcwhere use (gc_layout.h), so a
// generation means the same thing here as there.
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/exception.h"
#include "core/dac/gc_layout.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/gc_commands.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

using dac::GcGeneration;
using dac::GcSegment;
using dac::SegmentKind;
using gc::FromStatus;
using gc::Ptr;
using gc::Right;

// The names the reference prints ("generation0", ..., "large", "pinned", "frozen").
const char* SectionName(GcGeneration g) {
  switch (g) {
    case GcGeneration::kGen0:
      return "generation0";
    case GcGeneration::kGen1:
      return "generation1";
    case GcGeneration::kGen2:
      return "generation2";
    case GcGeneration::kLarge:
      return "large";
    case GcGeneration::kPinned:
      return "pinned";
    case GcGeneration::kFrozen:
      return "frozen";
    case GcGeneration::kUnknown:
      break;
  }
  return "unknown";
}

// -gen's value, as dumpheap takes it.
std::optional<GcGeneration> GenerationFilter(const std::string& text) {
  auto kind = ParseGeneration(text);
  if (!kind) return std::nullopt;
  return dac::GenerationOfKind(*kind);
}

// A walk over the heap with a progress line beside the output.
template <typename Visit>
absl::Status Walk(CommandContext& ctx, const dac::GcLayout& layout, const std::string& stage,
                  Visit&& visit) {
  ProgressInfo progress;
  progress.stage = stage;
  for (const GcSegment* s : layout.sorted) progress.total += s->objects.length();
  auto walk = dac::WalkHeap(
      ctx.dac,
      [&](const dac::HeapObject& o) {
        progress.done += o.footprint;
        if ((++progress.items & 0xffff) == 0) ctx.out.Progress(progress);
        const GcSegment* s = layout.FindByObjectRange(o.address);
        if (s != nullptr) visit(o, *s);
        return true;
      },
      &ctx.cancel);
  if (!walk.ok()) return walk.status();
  for (const std::string& w : walk->warnings) DebugOut(ctx, w);
  return absl::OkStatus();
}

// ---- sizestats ----

CommandResult SizeStats(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  auto layout = dac::ReadGcLayout(ctx.dac);
  if (!layout.ok()) return FromStatus(layout.status());
  auto globals = ctx.dac.GetUsefulGlobals();
  if (!globals.ok()) return FromStatus(globals.status());

  // Per generation (GcGeneration's value) and free or not: rounded size -> count. Hashed while
  // walking (one lookup per object), sorted by size when printed.
  constexpr size_t kGenerations = static_cast<size_t>(GcGeneration::kUnknown);
  std::array<std::array<absl::flat_hash_map<uint64_t, uint64_t>, 2>, kGenerations> stats;
  bool has_pinned = false, has_frozen = false;
  for (const GcSegment* s : (*layout)->sorted) {
    has_pinned |= s->kind == SegmentKind::kPinned;
    has_frozen |= s->kind == SegmentKind::kFrozen;
  }
  absl::Status st =
      Walk(ctx, **layout, "walking the heap", [&](const dac::HeapObject& o, const GcSegment& s) {
        const GcGeneration g = s.GenerationOf(o.address);
        if (g == GcGeneration::kUnknown) return;
        ++stats[static_cast<size_t>(g)][o.mt == globals->free_mt ? 1 : 0][o.footprint];
      });
  if (!st.ok()) return FromStatus(st);

  // The reference's sections, in its order: objects of each generation (pinned and frozen only
  // when the heap has such segments), then free blocks (no frozen ones).
  std::vector<std::pair<GcGeneration, bool>> sections;
  for (bool free : {false, true}) {
    for (GcGeneration g :
         {GcGeneration::kGen0, GcGeneration::kGen1, GcGeneration::kGen2, GcGeneration::kLarge}) {
      sections.emplace_back(g, free);
    }
    if (has_pinned) sections.emplace_back(GcGeneration::kPinned, free);
    if (has_frozen && !free) sections.emplace_back(GcGeneration::kFrozen, free);
  }

  std::string text;
  Json sections_json = Json::array();
  for (const auto& [g, free] : sections) {
    const auto& hashed = stats[static_cast<size_t>(g)][free ? 1 : 0];
    const std::map<uint64_t, uint64_t> sizes(hashed.begin(), hashed.end());
    text +=
        absl::StrCat("Size Statistics for ", SectionName(g), free ? " free" : "", " objects\n\n");
    if (sizes.empty()) {
      text += "(none)\n";
    } else {
      text += absl::StrCat(Right("Size", 14), " ", Right("Count", 14), " ",
                           Right("Cumulative Size", 15), " ", Right("Cumulative Count", 16), "\n");
    }
    // The reference's cumulative columns hold the totals of the rows above (smaller sizes),
    // not including the row itself.
    uint64_t cumulative_size = 0, cumulative_count = 0;
    Json rows = Json::array();
    for (const auto& [size, count] : sizes) {
      text +=
          absl::StrCat(Right(N0(size), 14), " ", Right(N0(count), 14), " ",
                       Right(N0(cumulative_size), 15), " ", Right(N0(cumulative_count), 16), "\n");
      rows.push_back(Json{{"size", size}, {"count", count}, {"total_size", size * count}});
      cumulative_size += size * count;
      cumulative_count += count;
    }
    text += "\n";
    sections_json.push_back(Json{{"generation", SectionName(g)},
                                 {"free", free},
                                 {"objects", cumulative_count},
                                 {"bytes", cumulative_size},
                                 {"sizes", rows}});
    if (!ctx.json && text.size() >= (1u << 16)) {
      ctx.out.Write(text);
      text.clear();
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"sections", sections_json}});
  } else {
    ctx.out.Write(text);
  }
  return {};
}

// ---- dumpexceptions ----

CommandResult DumpExceptions(CommandContext& ctx, const CommandSpec& spec,
                             const std::vector<std::string>& args) {
  bool live_only = false, dead_only = false;
  std::optional<GcGeneration> generation;
  std::string type_filter;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = absl::AsciiStrToLower(args[i]);
    if (a == "-live") {
      live_only = true;
    } else if (a == "-dead") {
      dead_only = true;
    } else if (a == "-gen" || a == "-type") {
      if (i + 1 >= args.size()) return UsageError(spec, absl::StrCat(args[i], " needs a value"));
      const std::string& v = args[++i];
      if (a == "-type") {
        type_filter = absl::AsciiStrToLower(v);
      } else {
        generation = GenerationFilter(v);
        if (!generation) {
          return UsageError(spec, absl::StrCat("Unknown generation: ", v,
                                               ". Only gen0, gen1, gen2, loh (large), poh "
                                               "(pinned) and foh (frozen) are supported"));
        }
      }
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  // As dumpheap: the reference quietly drops both; asking for opposites is a mistake.
  if (live_only && dead_only) return UsageError(spec, "-live and -dead exclude each other");

  auto layout = dac::ReadGcLayout(ctx.dac);
  if (!layout.ok()) return FromStatus(layout.status());
  auto globals = ctx.dac.GetUsefulGlobals();
  if (!globals.ok()) return FromStatus(globals.status());

  if (!ctx.json) {
    ctx.out.Write(
        absl::StrCat(Right("Address", 16), " ", Right("MethodTable", 16), " Message Name\n"));
  }
  std::optional<dac::LiveObjectSet> live;
  if (live_only || dead_only) {
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

  // Whether a MethodTable is System.Exception or derives from it, and its name; per type once.
  struct TypeFacts {
    bool exception = false;
    bool matches_type = true;  // -type's text is in the name (any case)
    std::string name;
  };
  std::unordered_map<uint64_t, TypeFacts> types;
  auto facts = [&](uint64_t mt) -> const TypeFacts& {
    auto it = types.find(mt);
    if (it != types.end()) return it->second;
    TypeFacts f;
    uint64_t m = mt;
    for (int depth = 0; m != 0 && depth < 64; ++depth) {
      if (m == globals->exception_mt) {
        f.exception = true;
        break;
      }
      auto mtd = ctx.dac.GetMethodTableDetails(m);
      if (!mtd.ok()) break;
      m = mtd->parent;
    }
    if (f.exception) {
      auto name = ctx.dac.GetMethodTableName(mt);
      f.name = name.ok() ? dac::PrettyTypeName(*name) : "<unknown type>";
      f.matches_type =
          type_filter.empty() || absl::StrContains(absl::AsciiStrToLower(f.name), type_filter);
    }
    return types.emplace(mt, std::move(f)).first->second;
  };

  std::vector<std::pair<uint64_t, uint64_t>> found;  // address, MethodTable
  absl::Status st = Walk(ctx, **layout, "looking for exceptions",
                         [&](const dac::HeapObject& o, const GcSegment& s) {
                           if (o.mt == globals->free_mt) return;
                           if (generation && s.GenerationOf(o.address) != *generation) return;
                           const TypeFacts& f = facts(o.mt);
                           if (!f.exception) return;
                           if (live && live->IsLive(o.address) != live_only) return;
                           if (!f.matches_type) return;
                           found.emplace_back(o.address, o.mt);
                         });
  if (!st.ok()) return FromStatus(st);

  dac::ExceptionReadOptions read_options;
  read_options.runtime_relro_in_dump = dac::RuntimeRelroInDump(ctx.core, ctx.runtime.base);
  std::string text;
  Json list = Json::array();
  for (const auto& [address, mt] : found) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    const TypeFacts& f = facts(mt);
    auto e = dac::ReadException(ctx.dac, address, read_options);
    std::optional<std::string> message, frame;
    if (e.ok()) {
      if (e->message.address != 0) message = e->message.text;
      if (e->stack_state == dac::StackTraceState::kFrames && !e->frames.empty()) {
        frame = e->frames.front().method;
      }
    }
    text += absl::StrCat(Right(Ptr(address), 16), " ", Right(Ptr(mt), 16), " ", f.name, "\n");
    text += absl::StrCat("        Message: ", message.value_or("<null>"), "\n");
    if (frame) text += absl::StrCat("        StackFrame: ", *frame, "\n");
    list.push_back(Json{{"address", JsonHex(address)},
                        {"method_table", JsonHex(mt)},
                        {"type", f.name},
                        {"message", message ? Json(*message) : Json(nullptr)},
                        {"stack_frame", frame ? Json(*frame) : Json(nullptr)}});
    if (!ctx.json && text.size() >= (1u << 16)) {
      ctx.out.Write(text);
      text.clear();
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"exceptions", list}, {"total", found.size()}});
  } else {
    text += absl::StrCat("\n    Total: ", found.size(), " objects\n");
    ctx.out.Write(text);
  }
  return {};
}

}  // namespace

void RegisterHeapStatsCommands(CommandRegistry& r) {
  r.Add({{"sizestats"},
         "",
         "Size statistics for the GC heap.",
         "sizestats\n"
         "  For each generation (gen0, gen1, gen2, large; pinned and frozen when the heap has\n"
         "  them), how many objects of each size it holds, sizes rounded up to 8 bytes, smallest\n"
         "  first; then the same for the free blocks. The cumulative columns total the rows\n"
         "  above each row (the smaller sizes), as the reference prints them.",
         SizeStats});
  r.Add({{"dumpexceptions"},
         "[-live] [-dead] [-gen <generation>] [-type <text>]",
         "Displays a list of all managed exceptions.",
         "dumpexceptions [-live | -dead] [-gen <generation>] [-type <text>]\n"
         "  Every object on the GC heap whose type derives from System.Exception: its address,\n"
         "  MethodTable and type, its message, and the top frame of the stack trace recorded\n"
         "  when it was thrown (none if it was never thrown).\n"
         "  -live   only exceptions reachable from the GC roots\n"
         "  -dead   only exceptions no root reaches\n"
         "  -gen    only this generation: gen0, gen1, gen2, loh (large), poh (pinned),\n"
         "          foh (frozen)\n"
         "  -type   only exceptions whose type name contains the text (any case)",
         DumpExceptions});
}

}  // namespace clrdiag::sos
