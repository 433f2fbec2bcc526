#include "core/sos/x64_disasm.h"

#include <capstone/capstone.h>

#include <array>
#include <string_view>

#include "absl/strings/str_format.h"

namespace clrdiag::sos {
namespace {

// The 64-bit parent's index (encoding order) of a general-purpose register name, or
// kNoRegister.
int RegisterIndex(std::string_view name) {
  static constexpr std::array<std::array<std::string_view, 5>, 8> kLegacy = {{
      {"rax", "eax", "ax", "al", "ah"},
      {"rcx", "ecx", "cx", "cl", "ch"},
      {"rdx", "edx", "dx", "dl", "dh"},
      {"rbx", "ebx", "bx", "bl", "bh"},
      {"rsp", "esp", "sp", "spl", ""},
      {"rbp", "ebp", "bp", "bpl", ""},
      {"rsi", "esi", "si", "sil", ""},
      {"rdi", "edi", "di", "dil", ""},
  }};
  for (size_t i = 0; i < kLegacy.size(); ++i) {
    for (std::string_view n : kLegacy[i]) {
      if (!n.empty() && n == name) return static_cast<int>(i);
    }
  }
  // r8..r15 with an optional d/w/b suffix.
  if (name.size() >= 2 && name[0] == 'r' && name[1] >= '0' && name[1] <= '9') {
    int n = 0;
    size_t i = 1;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') n = n * 10 + (name[i++] - '0');
    std::string_view rest = name.substr(i);
    if (n >= 8 && n <= 15 && (rest.empty() || rest == "d" || rest == "w" || rest == "b")) {
      return n;
    }
  }
  return kNoRegister;
}

}  // namespace

absl::StatusOr<std::unique_ptr<X64Disassembler>> X64Disassembler::Create() {
  std::unique_ptr<X64Disassembler> d(new X64Disassembler());
  csh h = 0;
  cs_err err = cs_open(CS_ARCH_X86, CS_MODE_64, &h);
  if (err != CS_ERR_OK) {
    return absl::InternalError(absl::StrFormat("capstone: cs_open: %s", cs_strerror(err)));
  }
  d->handle_ = h;
  cs_option(h, CS_OPT_SYNTAX, CS_OPT_SYNTAX_INTEL);
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  d->insn_ = cs_malloc(h);
  if (d->insn_ == nullptr) return absl::ResourceExhaustedError("capstone: cs_malloc failed");
  return d;
}

X64Disassembler::~X64Disassembler() {
  if (insn_ != nullptr) cs_free(static_cast<cs_insn*>(insn_), 1);
  if (handle_ != 0) {
    csh h = handle_;
    cs_close(&h);
  }
}

std::optional<X64Instruction> X64Disassembler::Decode(const uint8_t* code, size_t size,
                                                      uint64_t address) {
  auto* insn = static_cast<cs_insn*>(insn_);
  const uint8_t* p = code;
  size_t left = size;
  uint64_t at = address;
  if (!cs_disasm_iter(handle_, &p, &left, &at, insn)) return std::nullopt;

  X64Instruction out;
  out.address = insn->address;
  out.size = insn->size;
  for (uint16_t i = 0; i < insn->size; ++i) {
    out.bytes += absl::StrFormat("%02x", insn->bytes[i]);
  }
  out.mnemonic = insn->mnemonic;
  out.operands = insn->op_str;
  switch (insn->id) {
    case X86_INS_CALL:
      out.kind = X64Instruction::Kind::kCall;
      break;
    case X86_INS_JMP:
      out.kind = X64Instruction::Kind::kJump;
      break;
    case X86_INS_MOV:
    case X86_INS_MOVABS:
      out.kind = X64Instruction::Kind::kMov;
      break;
    case X86_INS_LEA:
      out.kind = X64Instruction::Kind::kLea;
      break;
    case X86_INS_PUSH:
      out.kind = X64Instruction::Kind::kPush;
      break;
    default:
      break;
  }
  const cs_x86& x = insn->detail->x86;
  const cs_x86_op* source = nullptr;
  if (x.op_count >= 1 && x.operands[0].type == X86_OP_REG) {
    out.dest_register = RegisterIndex(cs_reg_name(handle_, x.operands[0].reg));
  }
  const bool one_operand = out.kind == X64Instruction::Kind::kCall ||
                           out.kind == X64Instruction::Kind::kJump ||
                           out.kind == X64Instruction::Kind::kPush;
  if (one_operand && x.op_count >= 1) {
    source = &x.operands[0];
  } else if (x.op_count >= 2) {
    source = &x.operands[1];
  }
  if (source != nullptr) {
    switch (source->type) {
      case X86_OP_IMM:
        out.immediate = static_cast<uint64_t>(source->imm);
        break;
      case X86_OP_REG:
        out.source_register = RegisterIndex(cs_reg_name(handle_, source->reg));
        break;
      case X86_OP_MEM: {
        out.source_is_memory = true;
        const x86_op_mem& m = source->mem;
        if (m.base == X86_REG_RIP && m.index == X86_REG_INVALID) {
          out.rip_relative = insn->address + insn->size + static_cast<uint64_t>(m.disp);
        } else if (m.base != X86_REG_INVALID && m.index == X86_REG_INVALID && m.disp == 0 &&
                   m.segment == X86_REG_INVALID) {
          out.memory_base = RegisterIndex(cs_reg_name(handle_, m.base));
        }
        break;
      }
      default:
        break;
    }
  }
  return out;
}

}  // namespace clrdiag::sos
