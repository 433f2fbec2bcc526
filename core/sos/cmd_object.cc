// Object and type commands (dumpobj, dumpmt).
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/sos/command.h"
#include "core/sos/object_format.h"

namespace clrdiag::sos {
namespace {

CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

CommandResult DumpObj(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  bool fields = true;
  std::string address_text;
  for (const std::string& a : args) {
    std::string lower = absl::AsciiStrToLower(a);
    if (lower == "-nofields") {
      fields = false;
    } else if (lower == "/d") {
      // DML output: there is no DML here; plain text is printed.
    } else if (lower == "-refs") {
      return UsageError(spec, "-refs is not supported yet");
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else if (address_text.empty()) {
      address_text = a;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (address_text.empty()) return UsageError(spec, "missing object address");
  uint64_t address = 0;
  if (!ParseHexAddress(address_text, &address) || address == 0) {
    return Failure(absl::StrCat("Invalid parameter ", address_text));
  }
  return FromStatus(
      RunDumpObj(ctx.dac, ctx.core, ctx.runtime, address, fields, ctx.out, ctx.cancel, ctx.json));
}

CommandResult DumpMt(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  DumpMtOptions o;
  std::string address_text;
  for (const std::string& a : args) {
    std::string lower = absl::AsciiStrToLower(a);
    if (lower == "-md") {
      o.method_descs = true;
    } else if (lower == "-all") {
      o.all = true;
    } else if (lower == "/d") {
      // DML output: plain text is printed.
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else if (address_text.empty()) {
      address_text = a;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (address_text.empty()) return UsageError(spec, "Missing MethodTable address");
  uint64_t mt = 0;
  if (!ParseHexAddress(address_text, &mt)) {
    return Failure(absl::StrCat("Invalid parameter ", address_text));
  }
  return FromStatus(
      RunDumpMt(ctx.dac, ctx.core, ctx.runtime, mt, o, ctx.out, ctx.cancel, ctx.json));
}

}  // namespace

void RegisterObjectCommands(CommandRegistry& r) {
  r.Add({{"dumpobj", "do", "DumpObj"},
         "<arguments>",
         "Displays info about an object at the specified address.",
         "dumpobj [-nofields] <object address>\n"
         "  The object's type, MethodTable, size and module, its string or array contents, and\n"
         "  its fields (instance, static and thread-static) with their values.\n"
         "  -nofields  leave out the fields",
         DumpObj});
  r.Add({{"dumpmt", "DumpMT"},
         "<arguments>",
         "Displays information about a method table at the specified address.",
         "dumpmt [-md] [-all] <MethodTable address>\n"
         "  The type's parent, canonical MethodTable, module, name, token, file, sizes and\n"
         "  method and interface counts.\n"
         "  -md   also the MethodDesc table: entry point, MethodDesc, JIT state, slot, name\n"
         "  -all  -md plus the class attributes, slot and field counts and the fields",
         DumpMt});
}

}  // namespace clrdiag::sos
