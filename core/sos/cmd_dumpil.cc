// dumpil: the IL of a managed method, disassembled the way SOS's dumpil prints it (see
// docs/dumpil-notes.md): where the IL is, then one line per instruction with its exception
// blocks; token operands named ilasm-style through the module's metadata (il_type_printer.h).
//
// Differences from the reference, on purpose: "pImport is" shows the address of the module's
// IMetaDataImport in the analysing process (the worker), as the reference shows its own; a
// bad or missing argument also fails (non-zero) after the reference's text; a DynamicMethod
// (or an object address) is not decoded yet and says so.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/il_disasm.h"
#include "core/sos/il_names.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

std::string P(uint64_t v) { return absl::StrFormat("%016X", v); }

const char* KindName(il::OperandKind k) {
  using K = il::OperandKind;
  switch (k) {
    case K::kNone:
      return "none";
    case K::kShortVar:
    case K::kVar:
      return "var";
    case K::kShortI:
    case K::kI:
    case K::kI8:
      return "integer";
    case K::kShortR:
    case K::kR:
      return "real";
    case K::kShortBrTarget:
    case K::kBrTarget:
      return "branch";
    case K::kSwitch:
      return "switch";
    case K::kMethod:
      return "method";
    case K::kField:
      return "field";
    case K::kType:
      return "type";
    case K::kTok:
      return "token";
    case K::kSig:
      return "signature";
    case K::kString:
      return "string";
  }
  return "none";
}

CommandResult DumpIl(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  bool il_pointer = false;
  std::vector<std::string> rest;
  for (const std::string& a : args) {
    if (a == "-i" || a == "/i") {
      il_pointer = true;
    } else if (a == "/d") {
      // DML: no effect on plain text.
    } else if (!a.empty() && a[0] == '-' && a.size() > 1 && !std::isxdigit(a[1])) {
      return UsageError(spec, absl::StrCat("unknown option ", a));
    } else {
      rest.push_back(a);
    }
  }
  if (rest.size() > 1) return UsageError(spec, "give one MethodDesc address (hex)");
  uint64_t address = 0;
  if (rest.empty() || !ParseHexAddress(rest[0], &address) || address == 0) {
    if (!ctx.json) ctx.out.Write("Must pass a valid expression\n");
    return Failure(rest.empty() ? "dumpil: no MethodDesc given"
                                : absl::StrCat("dumpil: not an address: ", rest[0]));
  }

  std::string text;
  Json j{{"address", JsonHex(address)}};
  uint64_t il_address = 0;
  uint64_t module = 0;
  if (il_pointer) {
    il_address = address;
  } else {
    // An object starts with its MethodTable: only then is the DAC asked (on a MethodDesc the
    // DAC would read its flags as a MethodTable, which .NET 8's does not survive).
    uint64_t first = 0;
    const bool object_like =
        ctx.dac.ReadTargetMemory(address, &first, sizeof(first)) == sizeof(first) &&
        ctx.dac.LooksLikeMethodTable(first);
    if (object_like && ctx.dac.GetObject(address).ok()) {
      return Failure(
          absl::StrCat(P(address), " is an object: DynamicMethod IL is not decoded yet"));
    }
    auto loc = ctx.dac.GetMethodIl(address);
    if (!loc.ok()) {
      if (!ctx.json) ctx.out.Write(absl::StrCat(P(address), " is not a MethodDesc\n"));
      return Failure(absl::StrCat(P(address), " is not a MethodDesc"));
    }
    if (loc->is_dynamic && loc->dynamic_method_object != 0) {
      return Failure(absl::StrCat("DynamicMethod IL (object ", P(loc->dynamic_method_object),
                                  ") is not decoded yet"));
    }
    if ((loc->token & 0x00ffffffu) == 0) {
      const std::string msg =
          "This method has no IL body (e.g. IL stubs generated for P/Invoke or Reverse P/Invoke "
          "marshaling).";
      if (ctx.json) {
        j["il"] = nullptr;
        j["message"] = msg;
        WriteJson(ctx, j);
      } else {
        ctx.out.Write(msg + "\n");
      }
      return {};
    }
    if (loc->profiler_modified) text += "Found profiler modified IL\n";
    if (!loc->problem.empty()) text += loc->problem + "\n";
    if (loc->il_address == 0) {
      text += absl::StrCat("Unable to retrieve IL for this method (ilAddr is ", P(0), ").\n");
      if (!ctx.json) ctx.out.Write(text);
      return Failure(absl::StrCat("no IL for MethodDesc ", P(address)));
    }
    il_address = loc->il_address;
    module = loc->module;
    j["module"] = JsonHex(module);
    j["token"] = JsonHex(loc->token);
    j["profiler_modified"] = loc->profiler_modified;
    text += absl::StrCat("ilAddr is ", P(il_address), " pImport is ", P(loc->import), "\n");
  }
  j["il_address"] = JsonHex(il_address);

  auto body = il::ReadMethodBody([&](uint32_t offset, uint8_t* buffer, size_t size) {
    return ctx.dac.ReadTargetMemory(il_address + offset, buffer, size);
  });
  if (!body.ok()) {
    text += "error decoding IL\n";
    if (!ctx.json) ctx.out.Write(text);
    return Failure(absl::StrCat("error decoding IL at ", P(il_address), ": ",
                                std::string(body.status().message())));
  }
  text += absl::StrCat("ilAddr = ", P(il_address), "\n");

  // Token operands named from the module's metadata (il_names.h, shared with clru -il).
  std::vector<il::Line> lines;
  auto disassemble = [&](const il::TokenTextFn& names) -> absl::Status {
    lines = il::Disassemble(*body, names);
    if (ctx.json) {
      Json ins = Json::array();
      for (uint32_t pos = 0; pos < body->code_size;) {
        il::Instruction in = il::DecodeInstruction(body->code, pos);
        Json e{{"offset", in.offset}, {"opcode", in.name}, {"operand_kind", KindName(in.kind)}};
        const std::string operand = il::OperandText(in, names);
        if (!operand.empty()) e["operand"] = operand;
        if (il::IsTokenOperand(in.kind)) e["token"] = JsonHex(in.token);
        if (!in.targets.empty()) e["targets"] = in.targets;
        ins.push_back(std::move(e));
        pos += in.size;
      }
      j["instructions"] = std::move(ins);
    }
    return absl::OkStatus();
  };
  absl::Status st = il::WithModuleTokenNames(ctx.dac, module, disassemble);
  if (!st.ok()) return Failure(std::string(st.message()));

  if (ctx.json) {
    j["code_size"] = body->code_size;
    j["max_stack"] = body->max_stack;
    if (body->local_sig_token != 0) j["local_signature"] = JsonHex(body->local_sig_token);
    Json clauses = Json::array();
    for (const il::ExceptionClause& c : body->clauses) {
      const char* kind = c.flags == 2   ? "finally"
                         : c.flags == 4 ? "fault"
                         : c.flags == 1 ? "filter"
                                        : "catch";
      clauses.push_back({{"kind", kind},
                         {"try_offset", c.try_offset},
                         {"try_length", c.try_length},
                         {"handler_offset", c.handler_offset},
                         {"handler_length", c.handler_length}});
    }
    j["clauses"] = std::move(clauses);
    j["lines"] = Json::array();
    for (const il::Line& l : lines) {
      j["lines"].push_back(std::string(static_cast<size_t>(std::max(l.indent, 0)), ' ') + l.text);
    }
    WriteJson(ctx, j);
    return {};
  }
  ctx.out.Write(text + il::LinesText(lines));
  return {};
}

}  // namespace

void RegisterDumpIlCommand(CommandRegistry& r) {
  r.Add({{"dumpil", "DumpIL"},
         "<arguments>",
         "Displays the Microsoft intermediate language (MSIL) that's associated with a managed "
         "method.",
         "dumpil [-i] <MethodDesc address>\n"
         "  The IL of the method whose MethodDesc is given (dumpmt -md, name2ee, ip2md): where\n"
         "  it is (profiler-replaced IL first, else the module's copy), then one line per\n"
         "  instruction, IL_<offset>: opcode operand, with the method's exception blocks\n"
         "  (.try / .catch / .finally). Tokens are named the ilasm way from the module's\n"
         "  metadata; locals and arguments print as VAR OR ARG <n>.\n"
         "  -i  the address is the IL method body itself (no metadata: tokens print as numbers).",
         DumpIl});
}

}  // namespace clrdiag::sos
