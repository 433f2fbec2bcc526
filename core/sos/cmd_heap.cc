// Heap commands: dumpheap.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/sos/command.h"
#include "core/sos/format.h"

namespace clrdiag::sos {
namespace {

// A size as SOS takes it: hex with 0x, else decimal.
bool ParseSize(const std::string& s, uint64_t* out) {
  if (absl::StartsWithIgnoreCase(s, "0x")) return absl::SimpleHexAtoi(s.substr(2), out);
  return absl::SimpleAtoi(s, out);
}

CommandResult DumpHeap(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  DumpHeapOptions o;
  o.json = ctx.json;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = absl::AsciiStrToLower(args[i]);
    std::string v;
    auto value = [&]() {
      if (i + 1 >= args.size()) return false;
      v = args[++i];
      return true;
    };
    if (a == "-stat") {
      o.stat = true;
    } else if (a == "-live") {
      o.live = true;
    } else if (a == "-dead") {
      o.dead = true;
    } else if (a == "-short") {
      o.short_ = true;
    } else if (a == "-type") {
      if (!value()) return UsageError(spec, "-type needs a type name");
      o.type = v;
    } else if (a == "-mt") {
      if (!value() || !ParseHexAddress(v, &o.mt)) {
        return UsageError(spec, "-mt needs a MethodTable address in hex");
      }
      if (o.mt == 0) return UsageError(spec, "Invalid MethodTable: 0");
    } else if (a == "-min") {
      if (!value() || !ParseSize(v, &o.min)) return UsageError(spec, "-min needs a size");
    } else if (a == "-max") {
      if (!value() || !ParseSize(v, &o.max)) return UsageError(spec, "-max needs a size");
    } else {
      return UsageError(spec, absl::StrCat("unknown option '", args[i], "'"));
    }
  }
  // The reference quietly drops both when given both; asking for opposites is a mistake.
  if (o.live && o.dead) return UsageError(spec, "-live and -dead exclude each other");
  absl::Status st = RunDumpHeap(ctx.dac, o, ctx.out, ctx.cancel, &ctx.state.heap_index);
  if (!st.ok()) return Failure(std::string(st.message()));
  return {};
}

}  // namespace

void RegisterHeapCommands(CommandRegistry& r) {
  r.Add({{"dumpheap", "DumpHeap"},
         "<memoryrange>",
         "Displays a list of all managed objects.",
         "dumpheap [-stat] [-short] [-type <partial type name>] [-mt <MethodTable address>]\n"
         "         [-min <size>] [-max <size>] [-live | -dead]\n"
         "  -stat   only the statistics (per type: count, total size)\n"
         "  -short  only the addresses of the matching objects\n"
         "  -type   objects whose type name contains the text\n"
         "  -mt     objects of this MethodTable (hex)\n"
         "  -min    objects at least this many bytes (decimal, or hex with 0x)\n"
         "  -max    objects at most this many bytes\n"
         "  -live   only objects reachable from the GC roots (handles, stacks, finalizer queue)\n"
         "  -dead   only objects not reachable from them (garbage the next GC may free)",
         DumpHeap});
}

}  // namespace clrdiag::sos
