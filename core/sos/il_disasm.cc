// The CIL decoder (il_disasm.h). The opcode names and operand kinds are those of ECMA-335
// partition III; indices follow the runtime's opcode numbering (two-byte opcodes 0xfe xx at
// 0x100 + xx) so that an unknown byte still has a name ("unused"), as in SOS.
#include "core/sos/il_disasm.h"

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos::il {
namespace {

using K = OperandKind;

constexpr uint32_t kTableSize = 0x122;

// Fills the table once: every slot "unused" with no operand, then the defined opcodes.
struct OpCodeTable {
  std::array<OpCodeInfo, kTableSize> ops;
  OpCodeTable() {
    ops.fill({"unused", K::kNone});
    auto set = [&](uint32_t i, const char* n, K k = K::kNone) { ops[i] = {n, k}; };
    set(0x00, "nop");
    set(0x01, "break");
    static const char* const kArgLoc[] = {"ldarg.0", "ldarg.1", "ldarg.2", "ldarg.3",
                                          "ldloc.0", "ldloc.1", "ldloc.2", "ldloc.3",
                                          "stloc.0", "stloc.1", "stloc.2", "stloc.3"};
    for (uint32_t i = 0; i < 12; ++i) set(0x02 + i, kArgLoc[i]);
    set(0x0e, "ldarg.s", K::kShortVar);
    set(0x0f, "ldarga.s", K::kShortVar);
    set(0x10, "starg.s", K::kShortVar);
    set(0x11, "ldloc.s", K::kShortVar);
    set(0x12, "ldloca.s", K::kShortVar);
    set(0x13, "stloc.s", K::kShortVar);
    set(0x14, "ldnull");
    static const char* const kLdc[] = {"ldc.i4.m1", "ldc.i4.0", "ldc.i4.1", "ldc.i4.2", "ldc.i4.3",
                                       "ldc.i4.4",  "ldc.i4.5", "ldc.i4.6", "ldc.i4.7", "ldc.i4.8"};
    for (uint32_t i = 0; i < 10; ++i) set(0x15 + i, kLdc[i]);
    set(0x1f, "ldc.i4.s", K::kShortI);
    set(0x20, "ldc.i4", K::kI);
    set(0x21, "ldc.i8", K::kI8);
    set(0x22, "ldc.r4", K::kShortR);
    set(0x23, "ldc.r8", K::kR);
    set(0x25, "dup");
    set(0x26, "pop");
    set(0x27, "jmp", K::kMethod);
    set(0x28, "call", K::kMethod);
    set(0x29, "calli", K::kSig);
    set(0x2a, "ret");
    static const char* const kBranches[] = {"br",     "brfalse", "brtrue", "beq",    "bge",
                                            "bgt",    "ble",     "blt",    "bne.un", "bge.un",
                                            "bgt.un", "ble.un",  "blt.un"};
    static std::array<std::string, 13> short_names;
    for (uint32_t i = 0; i < 13; ++i) {
      short_names[i] = absl::StrCat(kBranches[i], ".s");
      set(0x2b + i, short_names[i].c_str(), K::kShortBrTarget);
      set(0x38 + i, kBranches[i], K::kBrTarget);
    }
    set(0x45, "switch", K::kSwitch);
    static const char* const kRun46[] = {
        "ldind.i1", "ldind.u1", "ldind.i2", "ldind.u2",  "ldind.i4",  "ldind.u4", "ldind.i8",
        "ldind.i",  "ldind.r4", "ldind.r8", "ldind.ref", "stind.ref", "stind.i1", "stind.i2",
        "stind.i4", "stind.i8", "stind.r4", "stind.r8",  "add",       "sub",      "mul",
        "div",      "div.un",   "rem",      "rem.un",    "and",       "or",       "xor",
        "shl",      "shr",      "shr.un",   "neg",       "not",       "conv.i1",  "conv.i2",
        "conv.i4",  "conv.i8",  "conv.r4",  "conv.r8",   "conv.u4",   "conv.u8"};
    for (uint32_t i = 0; i < std::size(kRun46); ++i) set(0x46 + i, kRun46[i]);
    set(0x6f, "callvirt", K::kMethod);
    set(0x70, "cpobj", K::kType);
    set(0x71, "ldobj", K::kType);
    set(0x72, "ldstr", K::kString);
    set(0x73, "newobj", K::kMethod);
    set(0x74, "castclass", K::kType);
    set(0x75, "isinst", K::kType);
    set(0x76, "conv.r.un");
    set(0x79, "unbox", K::kType);
    set(0x7a, "throw");
    set(0x7b, "ldfld", K::kField);
    set(0x7c, "ldflda", K::kField);
    set(0x7d, "stfld", K::kField);
    set(0x7e, "ldsfld", K::kField);
    set(0x7f, "ldsflda", K::kField);
    set(0x80, "stsfld", K::kField);
    set(0x81, "stobj", K::kType);
    static const char* const kOvfUn[] = {
        "conv.ovf.i1.un", "conv.ovf.i2.un", "conv.ovf.i4.un", "conv.ovf.i8.un", "conv.ovf.u1.un",
        "conv.ovf.u2.un", "conv.ovf.u4.un", "conv.ovf.u8.un", "conv.ovf.i.un",  "conv.ovf.u.un"};
    for (uint32_t i = 0; i < 10; ++i) set(0x82 + i, kOvfUn[i]);
    set(0x8c, "box", K::kType);
    set(0x8d, "newarr", K::kType);
    set(0x8e, "ldlen");
    set(0x8f, "ldelema", K::kType);
    static const char* const kElem[] = {
        "ldelem.i1", "ldelem.u1", "ldelem.i2", "ldelem.u2",  "ldelem.i4", "ldelem.u4", "ldelem.i8",
        "ldelem.i",  "ldelem.r4", "ldelem.r8", "ldelem.ref", "stelem.i",  "stelem.i1", "stelem.i2",
        "stelem.i4", "stelem.i8", "stelem.r4", "stelem.r8",  "stelem.ref"};
    for (uint32_t i = 0; i < std::size(kElem); ++i) set(0x90 + i, kElem[i]);
    set(0xa3, "ldelem", K::kType);
    set(0xa4, "stelem", K::kType);
    set(0xa5, "unbox.any", K::kType);
    static const char* const kOvf[] = {"conv.ovf.i1", "conv.ovf.u1", "conv.ovf.i2", "conv.ovf.u2",
                                       "conv.ovf.i4", "conv.ovf.u4", "conv.ovf.i8", "conv.ovf.u8"};
    for (uint32_t i = 0; i < 8; ++i) set(0xb3 + i, kOvf[i]);
    set(0xc2, "refanyval", K::kType);
    set(0xc3, "ckfinite");
    set(0xc6, "mkrefany", K::kType);
    set(0xd0, "ldtoken", K::kTok);
    static const char* const kRunD1[] = {"conv.u2",    "conv.u1", "conv.i",     "conv.ovf.i",
                                         "conv.ovf.u", "add.ovf", "add.ovf.un", "mul.ovf",
                                         "mul.ovf.un", "sub.ovf", "sub.ovf.un", "endfinally"};
    for (uint32_t i = 0; i < std::size(kRunD1); ++i) set(0xd1 + i, kRunD1[i]);
    set(0xdd, "leave", K::kBrTarget);
    set(0xde, "leave.s", K::kShortBrTarget);
    set(0xdf, "stind.i");
    set(0xe0, "conv.u");
    static const char* const kPrefix[] = {"prefix7", "prefix6", "prefix5", "prefix4",
                                          "prefix3", "prefix2", "prefix1", "prefixref"};
    for (uint32_t i = 0; i < 8; ++i) set(0xf8 + i, kPrefix[i]);
    // Two-byte opcodes (0xfe xx).
    set(0x100, "arglist");
    set(0x101, "ceq");
    set(0x102, "cgt");
    set(0x103, "cgt.un");
    set(0x104, "clt");
    set(0x105, "clt.un");
    set(0x106, "ldftn", K::kMethod);
    set(0x107, "ldvirtftn", K::kMethod);
    set(0x109, "ldarg", K::kVar);
    set(0x10a, "ldarga", K::kVar);
    set(0x10b, "starg", K::kVar);
    set(0x10c, "ldloc", K::kVar);
    set(0x10d, "ldloca", K::kVar);
    set(0x10e, "stloc", K::kVar);
    set(0x10f, "localloc");
    set(0x111, "endfilter");
    set(0x112, "unaligned.", K::kShortI);
    set(0x113, "volatile.");
    set(0x114, "tail.");
    set(0x115, "initobj", K::kType);
    set(0x116, "constrained.", K::kType);
    set(0x117, "cpblk");
    set(0x118, "initblk");
    set(0x119, "no.", K::kShortI);
    set(0x11a, "rethrow");
    set(0x11c, "sizeof", K::kType);
    set(0x11d, "refanytype");
    set(0x11e, "readonly.");
    set(0x11f, "illegal");
    set(0x120, "endmac");
    set(0x121, "codelabel");
  }
};

const OpCodeTable& Table() {
  static const OpCodeTable* table = new OpCodeTable();
  return *table;
}

// Little-endian reads; bytes past the end are zero.
uint64_t ReadLe(std::span<const uint8_t> b, uint32_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t pos = static_cast<uint64_t>(at) + static_cast<uint64_t>(i);
    const uint64_t byte = pos < b.size() ? b[pos] : 0;
    v |= byte << (8 * i);
  }
  return v;
}

}  // namespace

const OpCodeInfo& OpCodeAt(uint32_t index) {
  static const OpCodeInfo kUnused = {"unused", K::kNone};
  return index < kTableSize ? Table().ops[index] : kUnused;
}

bool IsTokenOperand(OperandKind k) {
  return k == K::kMethod || k == K::kField || k == K::kType || k == K::kTok || k == K::kSig ||
         k == K::kString;
}

Instruction DecodeInstruction(std::span<const uint8_t> code, uint32_t offset) {
  Instruction ins;
  ins.offset = offset;
  uint32_t pos = offset;
  uint32_t op = static_cast<uint32_t>(ReadLe(code, pos++, 1));
  if (op == 0xfe) op = 0x100 | static_cast<uint32_t>(ReadLe(code, pos++, 1));
  ins.opcode = op;
  const OpCodeInfo& info = OpCodeAt(op);
  ins.name = info.name;
  ins.kind = info.kind;
  switch (info.kind) {
    case K::kNone:
      break;
    case K::kShortVar:
    case K::kShortI:
      ins.integer = static_cast<int64_t>(ReadLe(code, pos, 1));
      pos += 1;
      break;
    case K::kVar:
      ins.integer = static_cast<int64_t>(ReadLe(code, pos, 2));
      pos += 2;
      break;
    case K::kI:
      ins.integer = static_cast<int32_t>(ReadLe(code, pos, 4));
      pos += 4;
      break;
    case K::kI8:
      ins.integer = static_cast<int64_t>(ReadLe(code, pos, 8));
      pos += 8;
      break;
    case K::kShortR: {
      const auto bits = static_cast<uint32_t>(ReadLe(code, pos, 4));
      float f = 0;
      std::memcpy(&f, &bits, sizeof(f));
      ins.real = f;
      pos += 4;
      break;
    }
    case K::kR: {
      const uint64_t bits = ReadLe(code, pos, 8);
      double d = 0;
      std::memcpy(&d, &bits, sizeof(d));
      ins.real = d;
      pos += 8;
      break;
    }
    case K::kShortBrTarget: {
      const auto delta = static_cast<uint32_t>(ReadLe(code, pos, 1));
      pos += 1;
      ins.targets.push_back(pos + delta);  // unsigned, as SOS adds it
      break;
    }
    case K::kBrTarget: {
      const auto delta = static_cast<uint32_t>(ReadLe(code, pos, 4));
      pos += 4;
      ins.targets.push_back(pos + delta);
      break;
    }
    case K::kSwitch: {
      const auto count = static_cast<uint32_t>(ReadLe(code, pos, 4));
      pos += 4;
      // A count beyond the code is corrupt; keep what the bytes can hold.
      const uint64_t room = code.size() > pos ? (code.size() - pos) / 4 : 0;
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(count, room));
      std::vector<uint32_t> deltas;
      deltas.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        deltas.push_back(static_cast<uint32_t>(ReadLe(code, pos, 4)));
        pos += 4;
      }
      // In 64 bits, and not past the code: a corrupt count must not wrap `pos` around (the
      // instruction's size would then send the decoder backwards, for ever).
      pos = static_cast<uint32_t>(
          std::min<uint64_t>(uint64_t{pos} + uint64_t{count - n} * 4, code.size()));
      for (uint32_t d : deltas) ins.targets.push_back(pos + d);
      ins.integer = count;
      break;
    }
    default:  // tokens
      ins.token = static_cast<uint32_t>(ReadLe(code, pos, 4));
      pos += 4;
      break;
  }
  ins.size = pos - offset;
  return ins;
}

absl::StatusOr<MethodBody> ParseMethodBody(std::span<const uint8_t> bytes) {
  return ReadMethodBody([&](uint32_t offset, uint8_t* buffer, size_t size) -> size_t {
    if (offset >= bytes.size()) return 0;
    const size_t n = std::min(size, bytes.size() - offset);
    std::memcpy(buffer, bytes.data() + offset, n);
    return n;
  });
}

absl::StatusOr<MethodBody> ReadMethodBody(const ReadFn& read) {
  uint8_t head[12] = {};
  const size_t got = read(0, head, sizeof(head));
  if (got == 0) return absl::NotFoundError("the IL header is unreadable");
  MethodBody body;
  bool more_sections = false;
  if ((head[0] & 3) == 2) {  // tiny
    body.header_size = 1;
    body.code_size = head[0] >> 2;
    body.max_stack = 8;
  } else if ((head[0] & 3) == 3 && got >= 12) {  // fat
    const uint32_t flags = head[0] | ((head[1] & 0x0fu) << 8);
    body.fat = true;
    body.header_size = (head[1] >> 4) * 4u;
    if (body.header_size < 12) return absl::DataLossError("bad fat IL header size");
    body.max_stack = head[2] | (head[3] << 8);
    body.code_size = static_cast<uint32_t>(ReadLe(head, 4, 4));
    body.local_sig_token = static_cast<uint32_t>(ReadLe(head, 8, 4));
    more_sections = (flags & 0x8) != 0;
  } else {
    return absl::DataLossError("not an IL method header");
  }
  if (body.code_size > (64u << 20)) return absl::DataLossError("IL code size is implausible");
  body.code.resize(body.code_size);
  if (body.code_size > 0 &&
      read(body.header_size, body.code.data(), body.code_size) < body.code_size) {
    return absl::DataLossError("the IL code is unreadable");
  }
  uint32_t end = body.header_size + body.code_size;
  bool found_eh = false;
  while (more_sections) {
    end = (end + 3) & ~3u;
    uint8_t sh[4] = {};
    if (read(end, sh, 4) < 4) return absl::DataLossError("an IL section header is unreadable");
    const bool fat = (sh[0] & 0x40) != 0;
    const uint32_t data_size = fat ? static_cast<uint32_t>(ReadLe(sh, 1, 3)) : sh[1];
    more_sections = (sh[0] & 0x80) != 0;
    if (data_size < 4 || data_size > (16u << 20)) return absl::DataLossError("bad IL section");
    if ((sh[0] & 0x3f) == 1 && !found_eh) {  // the exception table
      found_eh = true;
      std::vector<uint8_t> data(data_size);
      if (read(end, data.data(), data_size) < data_size) {
        return absl::DataLossError("the exception clauses are unreadable");
      }
      const uint32_t clause_size = fat ? 24 : 12;
      for (uint32_t at = 4; at + clause_size <= data_size; at += clause_size) {
        ExceptionClause c;
        if (fat) {
          c.flags = static_cast<uint32_t>(ReadLe(data, at, 4));
          c.try_offset = static_cast<uint32_t>(ReadLe(data, at + 4, 4));
          c.try_length = static_cast<uint32_t>(ReadLe(data, at + 8, 4));
          c.handler_offset = static_cast<uint32_t>(ReadLe(data, at + 12, 4));
          c.handler_length = static_cast<uint32_t>(ReadLe(data, at + 16, 4));
          c.class_token_or_filter = static_cast<uint32_t>(ReadLe(data, at + 20, 4));
        } else {
          c.flags = static_cast<uint32_t>(ReadLe(data, at, 2));
          c.try_offset = static_cast<uint32_t>(ReadLe(data, at + 2, 2));
          c.try_length = static_cast<uint32_t>(ReadLe(data, at + 4, 1));
          c.handler_offset = static_cast<uint32_t>(ReadLe(data, at + 5, 2));
          c.handler_length = static_cast<uint32_t>(ReadLe(data, at + 7, 1));
          c.class_token_or_filter = static_cast<uint32_t>(ReadLe(data, at + 8, 4));
        }
        body.clauses.push_back(c);
      }
    }
    end += data_size;
  }
  body.on_disk_size = end;
  return body;
}

std::string OperandText(const Instruction& ins, const TokenTextFn& token_text) {
  switch (ins.kind) {
    case K::kNone:
      return "";
    case K::kShortVar:
    case K::kVar:
      return absl::StrCat("VAR OR ARG ", ins.integer);
    case K::kShortI:
    case K::kI:
      return absl::StrCat(ins.integer);
    case K::kI8:
      // SOS prints it with "%ld", a 32-bit long in its runtime's printf: the low half.
      return absl::StrCat(static_cast<int32_t>(static_cast<uint64_t>(ins.integer)));
    case K::kShortR:
    case K::kR:
      return absl::StrFormat("%f", ins.real);
    case K::kShortBrTarget:
    case K::kBrTarget:
      return absl::StrFormat("IL_%04x", ins.targets.empty() ? 0u : ins.targets[0]);
    case K::kSwitch: {
      std::string s = "(";
      for (size_t i = 0; i < ins.targets.size(); ++i) {
        if (i != 0) s += ", ";
        absl::StrAppendFormat(&s, "IL_%04x", ins.targets[i]);
      }
      return s + ")";
    }
    default:
      return token_text ? token_text(ins.token) : absl::StrFormat("TOKEN %x", ins.token);
  }
}

std::vector<Line> Disassemble(const MethodBody& body, const TokenTextFn& token_text,
                              bool with_clauses) {
  std::vector<Line> lines;
  int indent = 0;
  auto marker = [&](std::string text) { lines.push_back({indent, std::move(text), false, 0}); };
  static const std::vector<ExceptionClause> kNoClauses;
  const std::vector<ExceptionClause>& clauses = with_clauses ? body.clauses : kNoClauses;
  uint32_t pos = 0;
  while (pos < body.code_size) {
    // SOS checks every clause at each instruction: a try (or handler) opening here, else one
    // closing here.
    for (const ExceptionClause& c : clauses) {
      if (c.try_offset == pos) {
        marker(".try");
        marker("{");
        indent += 2;
      } else if (c.try_offset + c.try_length == pos) {
        indent -= 2;
        marker("} // end .try");
      }
      const bool is_finally = c.flags == kClauseFinally;
      if (c.handler_offset == pos) {
        marker(is_finally ? ".finally" : ".catch");
        marker("{");
        indent += 2;
      } else if (c.handler_offset + c.handler_length == pos) {
        indent -= 2;
        marker(is_finally ? "} // end .finally" : "} // end .catch");
      }
    }
    Instruction ins = DecodeInstruction(body.code, pos);
    std::string text =
        absl::StrFormat("IL_%04x: %s %s", pos, ins.name, OperandText(ins, token_text));
    lines.push_back({indent, std::move(text), true, pos});
    pos += ins.size;
  }
  return lines;
}

std::string LinesText(const std::vector<Line>& lines) {
  std::string out;
  for (const Line& l : lines) {
    out.append(static_cast<size_t>(std::max(l.indent, 0)), ' ');
    out += l.text;
    out += '\n';
  }
  return out;
}

}  // namespace clrdiag::sos::il
