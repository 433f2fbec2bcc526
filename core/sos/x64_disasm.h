// x64 instruction decoding for clru, over capstone (Intel syntax).
//
// Decodes one instruction at a time from a byte buffer and reports, next to capstone's text,
// the facts clru's annotations need: whether it is a call or a jump, its immediate operand,
// the absolute address of a rip-relative memory operand, and the general-purpose registers it
// moves between (as indices 0..15 in the encoding's order: rax, rcx, rdx, rbx, rsp, rbp, rsi,
// rdi, r8..r15).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace clrdiag::sos {

inline constexpr int kNoRegister = -1;

struct X64Instruction {
  uint64_t address = 0;
  uint32_t size = 0;
  std::string bytes;     // lower-case hex, two digits a byte
  std::string mnemonic;  // capstone's, prefixes included ("rep stosd")
  std::string operands;  // capstone's Intel operand text
  enum class Kind { kOther, kCall, kJump, kMov, kLea, kPush } kind = Kind::kOther;
  // The first operand as a register (index 0..15 of the register's 64-bit parent), or
  // kNoRegister.
  int dest_register = kNoRegister;
  // The source (second operand; the only one for call/jmp/push):
  std::optional<uint64_t> immediate;     // an immediate value or a direct branch target
  int source_register = kNoRegister;     // a plain register
  std::optional<uint64_t> rip_relative;  // a [rip + d] memory operand's absolute address
  int memory_base = kNoRegister;         // a [reg] memory operand (no index, no displacement)
  bool source_is_memory = false;
};

// One capstone handle (not thread-safe; one per command run).
class X64Disassembler {
 public:
  static absl::StatusOr<std::unique_ptr<X64Disassembler>> Create();
  ~X64Disassembler();
  X64Disassembler(const X64Disassembler&) = delete;
  X64Disassembler& operator=(const X64Disassembler&) = delete;

  // Decodes the instruction at the start of `code` (which sits at `address`); nullopt when the
  // bytes are not a valid instruction.
  std::optional<X64Instruction> Decode(const uint8_t* code, size_t size, uint64_t address);

 private:
  X64Disassembler() = default;
  size_t handle_ = 0;  // csh
  void* insn_ = nullptr;
};

}  // namespace clrdiag::sos
