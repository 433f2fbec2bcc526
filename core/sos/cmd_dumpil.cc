// dumpil: the IL of a managed method, disassembled the way SOS's dumpil prints it (see
// docs/dumpil-notes.md): where the IL is, then one line per instruction with its exception
// blocks; token operands named ilasm-style through the module's metadata (il_type_printer.h).
//
// A DynamicMethod (given as its object, or as its MethodDesc) prints its IL the way SOS does
// (docs/dumpil-dynamic-notes.md): the IL and the token table are found by field name from the
// object (_resolver / m_resolver, m_code, m_scope, m_tokens, _items), the code has no header
// and no exception blocks are shown, and tokens are named from the token table's objects
// (strings, method handles, type handles) instead of metadata.
//
// Differences from the reference, on purpose: "pImport is" shows the address of the module's
// IMetaDataImport in the analysing process (the worker), as the reference shows its own; a
// bad or missing argument, and an object that is not a DynamicMethod, also fail (non-zero)
// after the reference's text.
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/com.h"
#include "core/sos/command.h"
#include "core/sos/il_disasm.h"
#include "core/sos/il_names.h"
#include "core/sos/json.h"
#include "core/sos/object_format.h"

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

// The JSON form of every instruction of `body`.
Json InstructionsJson(const il::MethodBody& body, const il::TokenTextFn& names) {
  Json ins = Json::array();
  for (uint32_t pos = 0; pos < body.code_size;) {
    il::Instruction in = il::DecodeInstruction(body.code, pos);
    Json e{{"offset", in.offset}, {"opcode", in.name}, {"operand_kind", KindName(in.kind)}};
    const std::string operand = il::OperandText(in, names);
    if (!operand.empty()) e["operand"] = operand;
    if (il::IsTokenOperand(in.kind)) e["token"] = JsonHex(in.token);
    if (!in.targets.empty()) e["targets"] = in.targets;
    ins.push_back(std::move(e));
    pos += in.size;
  }
  return ins;
}

// A DynamicMethod's IL and token table, found the way SOS's GatherDynamicInfo does: each step
// by field name through the object's MethodTable (object-relative offsets), any failure ends
// it. Tokens are named the way SOS's DisassembleToken does for dynamic IL.
class DynamicIl {
 public:
  explicit DynamicIl(dac::DacProcess& dac) : dac_(dac) {}

  // False when something on the way is missing (SOS: "Error gathering dynamic info").
  bool Gather(uint64_t dynamic_method) {
    uint64_t resolver = 0;
    if (!FieldPointer(dynamic_method, "m_resolver", &resolver) &&
        !FieldPointer(dynamic_method, "_resolver", &resolver)) {
      return false;
    }
    uint64_t code = 0;
    if (!FieldPointer(resolver, "m_code", &code)) return false;
    if (!IsObject(code)) return false;
    auto code_array = dac_.GetObjectDetails(code);
    if (!code_array.ok() || code_array->component_size != 1) return false;
    code_array_ = *code_array;
    uint64_t scope = 0, tokens = 0;
    if (!FieldPointer(resolver, "m_scope", &scope)) return false;
    if (!FieldPointer(scope, "m_tokens", &tokens)) return false;
    if (!FieldPointer(tokens, "_items", &token_table_, /*must_read=*/false)) return false;
    auto table = IsObject(token_table_)
                     ? dac_.GetObjectDetails(token_table_)
                     : absl::StatusOr<dac::ObjectDetails>(absl::NotFoundError("no token table"));
    if (!table.ok()) return false;
    table_ = *table;
    return true;
  }

  // The code bytes (the whole m_code array); nullopt if unreadable.
  std::optional<std::vector<uint8_t>> Code() {
    if (code_array_.components > (64u << 20)) return std::nullopt;
    std::vector<uint8_t> bytes(code_array_.components);
    if (!bytes.empty() &&
        dac_.ReadTargetMemory(code_array_.array_data, bytes.data(), bytes.size()) != bytes.size()) {
      return std::nullopt;
    }
    return bytes;
  }
  uint64_t token_table() const { return token_table_; }
  uint64_t code_array() const { return code_array_.array_data; }

  std::string TokenText(uint32_t token) {
    const uint32_t rid = token & 0x00ffffffu;
    switch (token & 0xff000000u) {
      case 0x02000000u: {  // TypeDef: a boxed RuntimeTypeHandle; its RuntimeType's m_handle
        const uint64_t handle = Item(rid);
        uint64_t runtime_type = 0;
        ReadPointer(handle + 8, &runtime_type);
        uint64_t mt = 0;
        ReadPointer(runtime_type + static_cast<uint64_t>(FieldOffset(runtime_type, "m_handle")),
                    &mt);
        if (mt != 0 && dac_.LooksLikeMethodTable(mt)) {
          if (auto name = dac_.GetMethodTableName(mt); name.ok()) {
            return absl::StrFormat("%x \"%s\"", token, Printable(*name));
          }
        }
        return "<invalid MethodTable>";
      }
      case 0x06000000u: {  // MethodDef: a boxed RuntimeMethodHandle; m_value's m_handle
        const uint64_t handle = Item(rid);
        uint64_t info = 0, md = 0;
        ReadPointer(handle + static_cast<uint64_t>(FieldOffset(handle, "m_value")), &info);
        ReadPointer(info + static_cast<uint64_t>(FieldOffset(info, "m_handle")), &md);
        // SOS's NameForMD_s: "<md> is not a MethodDesc" (its own line) and no name, or UNKNOWN.
        std::string prefix, name;
        if (!dac_.LooksLikeMethodDesc(md) || !dac_.GetMethodDesc(md).ok()) {
          prefix = absl::StrFormat("%016X is not a MethodDesc\n", md);
        } else if (auto n = dac_.GetMethodDescName(md); n.ok()) {
          name = Printable(*n);
        } else {
          name = "UNKNOWN";
        }
        return absl::StrFormat("%s%x %s", prefix, token, name);
      }
      case 0x70000000u:  // a string literal: the whole string
        return absl::StrFormat("%x \"%s\"", token, StringText(Item(rid)));
      case 0x01000000u:  // TypeRef, Signature, FieldDef, MemberRef: the item's address
      case 0x11000000u:
      case 0x04000000u:
      case 0x0a000000u:
        return absl::StrFormat("%x (%016X)", token, Item(rid));
      default:
        return absl::StrFormat("<unknown token type (token=%08x)>", token);
    }
  }

 private:
  bool ReadPointer(uint64_t address, uint64_t* out) {
    return dac_.ReadTargetMemory(address, out, sizeof(*out)) == sizeof(*out);
  }

  // Whether an object is at `address` (its MethodTable vetted before the DAC is asked).
  bool IsObject(uint64_t address) {
    uint64_t mt = 0;
    return address != 0 && ReadPointer(address, &mt) && dac_.LooksLikeMethodTable(mt) &&
           dac_.GetObject(address).ok();
  }

  // SOS's GetObjFieldOffset: the offset of instance field `name` from the object's start, 0
  // if the object has no such field, -1 if it is no object.
  int64_t FieldOffset(uint64_t object, const std::string& name) {
    if (!IsObject(object)) return -1;
    uint64_t mt = 0;
    ReadPointer(object, &mt);
    auto offset = InstanceFieldOffset(dac_, mt & ~uint64_t{7}, name);
    return offset.ok() ? *offset : 0;
  }

  // The reference field `name` of the object at `object`; with `must_read`, false also when
  // the field cannot be read.
  bool FieldPointer(uint64_t object, const char* name, uint64_t* out, bool must_read = true) {
    if (!IsObject(object)) return false;
    const int64_t offset = FieldOffset(object, name);
    if (offset <= 0) return false;
    *out = 0;
    return ReadPointer(object + static_cast<uint64_t>(offset), out) || !must_read;
  }

  // Token table entry `index`: 0 past the end or when unreadable (SOS's GetObj).
  uint64_t Item(uint32_t index) {
    uint64_t item = 0;
    if (index < table_.components) {
      ReadPointer(table_.array_data + table_.component_size * index, &item);
    }
    return item;
  }

  // dotnet-dump's console keeps tabs, newlines and printable ASCII.
  static std::string Printable(const std::string& text) {
    std::string out;
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (u == '\n' || u == '\t' || (u >= 0x20 && u <= 0x7f)) out.push_back(c);
    }
    return out;
  }

  // SOS's StringObjectContent (not literal): the whole string, as one output piece (nothing
  // when it is 8 KiB or more).
  std::string StringText(uint64_t object) {
    if (!IsObject(object)) return "<Invalid Object>";
    auto details = dac_.GetObjectDetails(object);
    if (!details.ok()) return "<Invalid Object>";
    uint8_t header[12];
    if (dac_.ReadTargetMemory(object, header, sizeof(header)) != sizeof(header)) {
      return "Error getting string data\n";
    }
    uint32_t length = 0;
    std::memcpy(&length, header + 8, sizeof(length));
    if (details->size > 0x200000 || length > 0x200000) {
      return "<String is invalid or too large to print>\n";
    }
    auto chars = dac_.GetObjectString(object, length);
    if (!chars.ok()) return "Error getting string data\n";
    std::string text = dac::Utf16ToUtf8(*chars);
    if (text.size() >= 8192) return "";
    return Printable(text);
  }

  dac::DacProcess& dac_;
  dac::ObjectDetails code_array_;
  dac::ObjectDetails table_;
  uint64_t token_table_ = 0;
};

// dumpil of a DynamicMethod object (or any object: SOS tries whatever it is given).
CommandResult DumpDynamicIl(CommandContext& ctx, uint64_t object, uint64_t method_desc) {
  DynamicIl dyn(ctx.dac);
  if (!dyn.Gather(object)) {
    const std::string msg =
        absl::StrFormat("Error gathering dynamic info from object at %016x.", object);
    if (!ctx.json) ctx.out.Write(msg + "\n");
    return Failure(msg);
  }
  auto code = dyn.Code();
  if (!code) {
    if (!ctx.json) ctx.out.Write("Failed to read memory\n");
    return Failure(absl::StrCat("cannot read the IL of DynamicMethod ", P(object), " at ",
                                P(dyn.code_array())));
  }
  il::MethodBody body;
  body.code_size = static_cast<uint32_t>(code->size());
  body.code = std::move(*code);
  il::TokenTextFn names = [&](uint32_t token) { return dyn.TokenText(token); };
  std::vector<il::Line> lines = il::Disassemble(body, names, /*with_clauses=*/false);
  if (ctx.json) {
    Json j{{"address", JsonHex(method_desc != 0 ? method_desc : object)},
           {"dynamic", true},
           {"dynamic_method_object", JsonHex(object)},
           {"token_table", JsonHex(dyn.token_table())},
           {"il_address", JsonHex(dyn.code_array())},
           {"code_size", body.code_size}};
    if (method_desc != 0) j["method_desc"] = JsonHex(method_desc);
    j["instructions"] = InstructionsJson(body, names);
    j["lines"] = Json::array();
    for (const il::Line& l : lines) j["lines"].push_back(l.text);
    WriteJson(ctx, j);
    return {};
  }
  ctx.out.Write(
      absl::StrCat("This is dynamic IL. Exception info is not reported at this time.\n"
                   "If a token is unresolved, run \"dumpobj <addr>\" on the addr given\n"
                   "in parenthesis. You can also look at the token table yourself, by\n"
                   "running \"dumparray ",
                   P(dyn.token_table()), "\".\n\n", il::LinesText(lines)));
  return {};
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
    if (object_like && ctx.dac.GetObject(address).ok()) return DumpDynamicIl(ctx, address, 0);
    auto loc = ctx.dac.GetMethodIl(address);
    if (!loc.ok()) {
      if (!ctx.json) ctx.out.Write(absl::StrCat(P(address), " is not a MethodDesc\n"));
      return Failure(absl::StrCat(P(address), " is not a MethodDesc"));
    }
    if (loc->is_dynamic && loc->dynamic_method_object != 0) {
      return DumpDynamicIl(ctx, loc->dynamic_method_object, address);
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
    if (ctx.json) j["instructions"] = InstructionsJson(*body, names);
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
         "dumpil [-i] <MethodDesc address | DynamicMethod object>\n"
         "  The IL of the method whose MethodDesc is given (dumpmt -md, name2ee, ip2md): where\n"
         "  it is (profiler-replaced IL first, else the module's copy), then one line per\n"
         "  instruction, IL_<offset>: opcode operand, with the method's exception blocks\n"
         "  (.try / .catch / .finally). Tokens are named the ilasm way from the module's\n"
         "  metadata; locals and arguments print as VAR OR ARG <n>.\n"
         "  A DynamicMethod object (or the MethodDesc of a dynamic method): its IL from the\n"
         "  object's resolver, tokens named from its token table (no exception blocks).\n"
         "  -i  the address is the IL method body itself (no metadata: tokens print as numbers).",
         DumpIl});
}

}  // namespace clrdiag::sos
