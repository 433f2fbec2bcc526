// logging and dbgout: session switches that show the worker's own diagnostic trace in the
// session's output. dotnet-dump's `logging` traces the tool and `dbgout` SOS's internals; here
// `logging` traces each command the worker runs (name, runtime, DAC, result, time) and `dbgout`
// the commands' internal steps (DebugOut). Both are off at the start of a session and never
// change a command's JSON form. A log file (`logging <path>`) is refused: the worker's files
// are on the daemon host.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

CommandResult Logging(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    std::string o = absl::AsciiStrToLower(a);
    if (o == "enable" || o == "-e" || o == "--enable") {
      ctx.state.trace_logging = true;
    } else if (o == "disable" || o == "-d" || o == "--disable") {
      ctx.state.trace_logging = false;
    } else if (!o.empty() && o[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else {
      return UsageError(spec, absl::StrCat("a log file ('", a,
                                           "') is not supported: the trace goes to the "
                                           "session's output"));
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"logging", ctx.state.trace_logging}});
  } else {
    ctx.out.Write(ctx.state.trace_logging ? "Logging is enabled\n" : "Logging is disabled\n");
  }
  return {};
}

CommandResult DbgOut(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  bool on = true;
  for (const std::string& a : args) {
    if (absl::AsciiStrToLower(a) == "-off") {
      on = false;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  ctx.state.trace_dbgout = on;
  if (ctx.json) {
    WriteJson(ctx, Json{{"dbgout", on}});
  } else {
    ctx.out.Write(on ? "Debug output logging enabled\n" : "Debug output logging disabled\n");
  }
  return {};
}

}  // namespace

void RegisterTraceCommands(CommandRegistry& r) {
  r.Add({{"logging"},
         "[enable|disable]",
         "Enables/disables internal diagnostic logging.",
         "logging [enable|-e|disable|-d]\n"
         "  Without an option, tells whether logging is on. When on, the worker traces each\n"
         "  command it runs (name, runtime, DAC, result and time) into the session's output\n"
         "  (text output only). A log file is not supported.",
         Logging});
  r.Add({{"dbgout"},
         "[-off]",
         "Enables/disables (-off) internal SOS logging.",
         "dbgout [-off]\n"
         "  Shows (or with -off stops showing) the commands' internal debug trace, lines\n"
         "  starting with 'dbgout:', in the session's output (text output only).",
         DbgOut});
}

}  // namespace clrdiag::sos
