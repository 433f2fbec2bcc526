// Runtime and thread commands: eeversion, clrthreads.
#include "absl/strings/str_cat.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

CommandResult EeVersion(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  std::string vs =
      ctx.runtime.version_string.empty() ? ctx.location.version_string : ctx.runtime.version_string;
  std::string version = vs.substr(0, vs.find(' '));
  auto gc = ctx.dac.GetGcHeapSummary();
  if (ctx.json) {
    Json j{{"version", version}, {"version_string", vs}};
    if (gc.ok()) {
      j["gc_mode"] = gc->server ? "server" : "workstation";
      j["gc_heap_count"] = gc->server ? gc->heap_count : 1;
    }
    j["runtime_build_id"] = ctx.runtime.build_id;
    j["dac_dir"] = ctx.location.dir;
    WriteJson(ctx, j);
    return {};
  }
  std::string out = absl::StrCat(version, "\n", vs, "\n");
  if (gc.ok()) {
    out += gc->server ? absl::StrCat("Server mode with ", gc->heap_count, " gc heaps\n")
                      : "Workstation mode\n";
  }
  out += "SOS Version: clrdiag " CLRDIAG_VERSION "\n";
  ctx.out.Write(out);
  return {};
}

CommandResult ClrThreads(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  auto ts = ctx.dac.GetThreadStore();
  if (!ts.ok()) return Failure(std::string(ts.status().message()));
  ctx.out.Write(ctx.json ? ClrThreadsJson(*ts, ctx.core) : FormatClrThreads(*ts, ctx.core));
  return {};
}

}  // namespace

void RegisterRuntimeCommands(CommandRegistry& r) {
  r.Add({{"eeversion"},
         "<arguments>",
         "Displays information about the runtime version.",
         "eeversion\n  The runtime's version, commit and GC mode.",
         EeVersion});
  r.Add(
      {{"clrthreads"},
       "<arguments>",
       "Lists the managed threads running.",
       "clrthreads\n  Lists the managed threads with their state, GC mode and allocation context.",
       ClrThreads});
}

}  // namespace clrdiag::sos
