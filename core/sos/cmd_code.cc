// Method commands: dumpmd, ip2md.
//
// dumpmd shows a MethodDesc the way the reference does: name, class, MethodTable, token,
// module, whether it is jitted, its current code, and its version history (the IL version of
// the current ReJIT id, a pending ReJIT, and the native code versions with their tiers, newest
// first). ip2md finds the MethodDesc of a code address, shows the same, and the source line
// of that address when a portable PDB beside the assembly has it.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/stack_walk.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/method_format.h"
#include "core/sos/stack_format.h"

namespace clrdiag::sos {
namespace {

const char* TierName(int32_t tier) {
  switch (tier) {
    case 1:
      return "MinOptJitted";
    case 2:
      return "Optimized";
    case 3:
      return "QuickJitted";
    case 4:
      return "OptimizedTier1";
    case 5:
      return "ReadyToRun";
    case 6:
      return "OptimizedTier1OSR";
    case 7:
      return "QuickJitted + Instrumented";
    case 8:
      return "OptimizedTier1 + Instrumented";
    default:
      return "Unknown Tier";
  }
}

}  // namespace

bool DescribeMethodDesc(CommandContext& ctx, uint64_t md, std::string* out, Json* j) {
  auto info = ctx.dac.GetMethodDesc(md);
  auto versions = ctx.dac.GetMethodVersions(md);
  if (!info.ok() || !versions.ok()) return false;
  auto name = ctx.dac.GetMethodDescName(md);
  std::string n = name.ok() ? *name : "UNKNOWN";
  absl::StrAppend(out, "Method Name:          ", n, "\n");
  (*j)["method_desc"] = JsonHex(md);
  (*j)["name"] = n;
  auto mt = ctx.dac.GetMethodTableDetails(info->method_table);
  if (mt.ok()) {
    absl::StrAppendFormat(out, "Class:                %016x\n", mt->klass);
    (*j)["class"] = JsonHex(mt->klass);
  }
  absl::StrAppendFormat(out,
                        "MethodTable:          %016x\n"
                        "mdToken:              %016X\n"
                        "Module:               %016x\n"
                        "IsJitted:             %s\n"
                        "Current CodeAddr:     %016x\n"
                        "Version History:\n",
                        info->method_table, info->token, info->module,
                        versions->is_jitted ? "yes" : "no", versions->native_code);
  (*j)["method_table"] = JsonHex(info->method_table);
  (*j)["token"] = JsonHex(info->token);
  (*j)["module"] = JsonHex(info->module);
  (*j)["is_jitted"] = versions->is_jitted;
  (*j)["code_address"] = JsonHex(versions->native_code);
  const dac::MethodVersions& v = *versions;
  if (v.has_pending) {
    absl::StrAppendFormat(out,
                          "  ILCodeVersion:      %016X (pending)\n"
                          "  ReJIT ID:           %d\n"
                          "  IL Addr:            %016x\n",
                          v.pending_il_version_node, v.pending_rejit_id, v.pending_il_address);
    (*j)["pending_rejit"] =
        Json{{"rejit_id", v.pending_rejit_id}, {"il_address", JsonHex(v.pending_il_address)}};
  }
  Json tiers = Json::array();
  if (v.has_tiers) {
    absl::StrAppendFormat(out,
                          "  ILCodeVersion:      %016X\n"
                          "  ReJIT ID:           %d\n"
                          "  IL Addr:            %016x\n",
                          v.il_version_node, v.rejit_id, v.il_address);
    for (auto it = v.tiers.rbegin(); it != v.tiers.rend(); ++it) {
      absl::StrAppendFormat(out,
                            "     CodeAddr:           %016x  (%s)\n"
                            "     NativeCodeVersion:  %016X\n",
                            it->code, TierName(it->tier), it->version_node);
      tiers.push_back(Json{{"code_address", JsonHex(it->code)},
                           {"tier", TierName(it->tier)},
                           {"native_code_version", JsonHex(it->version_node)}});
    }
  }
  (*j)["rejit_id"] = v.rejit_id;
  (*j)["il_address"] = JsonHex(v.il_address);
  (*j)["code_versions"] = tiers;
  return true;
}

namespace {

CommandResult DumpMd(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  uint64_t md = 0;
  if (args.size() != 1 || !ParseHexAddress(args[0], &md)) {
    return UsageError(spec, "give one MethodDesc address (hex)");
  }
  std::string out;
  Json j;
  if (!DescribeMethodDesc(ctx, md, &out, &j)) {
    return Failure(absl::StrFormat("%016X is not a MethodDesc", md));
  }
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

CommandResult Ip2Md(CommandContext& ctx, const CommandSpec& spec,
                    const std::vector<std::string>& args) {
  uint64_t ip = 0;
  if (args.size() != 1 || !ParseHexAddress(args[0], &ip) || ip == 0) {
    return UsageError(spec, "give one code address (hex)");
  }
  auto header = ctx.dac.GetCodeHeader(ip);
  if (!header.ok() || header->method_desc == 0) {
    return Failure(absl::StrFormat(
        "%016x is not in managed code: Failed to request MethodData, not in JIT code range", ip));
  }
  std::string out = absl::StrFormat("MethodDesc:   %016x\n", header->method_desc);
  Json j;
  if (!DescribeMethodDesc(ctx, header->method_desc, &out, &j)) {
    return Failure(absl::StrFormat("%016X is not a MethodDesc", header->method_desc));
  }
  dac::StackFrame f;
  f.ip = ip;
  f.method_desc = header->method_desc;
  if (auto info = ctx.dac.GetMethodDesc(header->method_desc); info.ok()) {
    f.module = info->module;
    f.method_token = info->token;
  }
  ctx.dac.FindIlOffsetAt(ip, &f);
  ResolveSourceLine(ctx.dac, &f);
  j["ip"] = JsonHex(ip);
  if (f.has_il_offset) j["il_offset"] = f.il_offset;
  if (!f.source_file.empty()) {
    absl::StrAppend(&out, "Source file:  ", f.source_file, " @ ", f.source_line, "\n");
    j["source"] = Json{{"file", f.source_file}, {"line", f.source_line}};
  }
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterCodeCommands(CommandRegistry& r) {
  r.Add({{"dumpmd"},
         "<arguments>",
         "Displays information about a MethodDesc structure at the specified address.",
         "dumpmd <MethodDesc address>\n"
         "  The method's name, class, MethodTable, token, module, current code and its version\n"
         "  history (IL version, ReJIT id, native code versions with their tiers, newest first).",
         DumpMd});
  r.Add({{"ip2md"},
         "<arguments>",
         "Displays the MethodDesc structure at the specified address in code that has been "
         "JIT-compiled.",
         "ip2md <code address>\n"
         "  The MethodDesc of the managed code holding the address (as dumpmd shows it), and the\n"
         "  source line of the address when a portable PDB beside the assembly has it.",
         Ip2Md});
}

}  // namespace clrdiag::sos
