// A CIL (ECMA-335 partition III) method body decoder and disassembler: the method header
// (tiny or fat), the code, the exception clauses, and one instruction at a time with its
// operand. Text comes out the way SOS's dumpil prints it (its quirks included, see
// docs/dumpil-notes.md); the decoded form is reusable (clru -il).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::sos::il {

// ECMA-335 operand kinds (the "InlineXxx" classes of the runtime's opcode table).
enum class OperandKind {
  kNone,
  kShortVar,  // uint8 local or argument index
  kVar,       // uint16 local or argument index
  kShortI,    // int8 (SOS prints the byte unsigned)
  kI,         // int32
  kI8,        // int64
  kShortR,    // float32
  kR,         // float64
  kShortBrTarget,
  kBrTarget,
  kSwitch,
  kMethod,  // tokens ...
  kField,
  kType,
  kTok,
  kSig,
  kString,
};

struct OpCodeInfo {
  const char* name;
  OperandKind kind;
};

// The opcode at `index`: 0x00..0xff for one-byte opcodes, 0x100 | b for the two-byte 0xfe b.
const OpCodeInfo& OpCodeAt(uint32_t index);
bool IsTokenOperand(OperandKind k);

struct Instruction {
  uint32_t offset = 0;
  uint32_t opcode = 0;  // OpCodeAt index
  const char* name = "";
  OperandKind kind = OperandKind::kNone;
  uint32_t size = 0;  // bytes, opcode and operand
  // The operand, by kind: var index / integers in `integer`; floats in `real`; tokens in
  // `token`; branch targets (computed as SOS does, see DecodeInstruction) in `targets`.
  int64_t integer = 0;
  double real = 0;
  uint32_t token = 0;
  std::vector<uint32_t> targets;
};

// Decodes the instruction at `offset` of `code`. Bytes past the end read as zero (SOS reads
// past its buffer). A short branch's offset byte is added unsigned, as SOS does (so a backward
// short branch lands 256 too high); long branch and switch targets wrap at 32 bits.
Instruction DecodeInstruction(std::span<const uint8_t> code, uint32_t offset);

// One exception clause (ECMA-335 II.25.4.6), fat or small, widened.
struct ExceptionClause {
  uint32_t flags = 0;  // 0 catch, 1 filter, 2 finally, 4 fault
  uint32_t try_offset = 0, try_length = 0;
  uint32_t handler_offset = 0, handler_length = 0;
  uint32_t class_token_or_filter = 0;
};
inline constexpr uint32_t kClauseFinally = 2;

struct MethodBody {
  bool fat = false;
  uint32_t header_size = 0;
  uint32_t max_stack = 0;
  uint32_t local_sig_token = 0;
  uint32_t code_size = 0;
  uint32_t on_disk_size = 0;  // header, code and exception sections
  std::vector<uint8_t> code;
  std::vector<ExceptionClause> clauses;
};

// The bytes a method body at some address needs (header, code and sections), read through
// `read` (which returns how many bytes it could read at an offset from the body's start).
using ReadFn = std::function<size_t(uint32_t offset, uint8_t* buffer, size_t size)>;
absl::StatusOr<MethodBody> ReadMethodBody(const ReadFn& read);
// The same on bytes already in hand.
absl::StatusOr<MethodBody> ParseMethodBody(std::span<const uint8_t> bytes);

// The text of one instruction's operand, SOS's way; `token_text` names tokens.
using TokenTextFn = std::function<std::string(uint32_t token)>;
std::string OperandText(const Instruction& ins, const TokenTextFn& token_text);

// One printed line of a disassembly: an instruction, or an exception block marker.
struct Line {
  int indent = 0;
  std::string text;  // without the indent
  bool is_instruction = false;
  uint32_t offset = 0;  // the instruction's
};

// The method's instructions with its exception blocks (".try", "{", "} // end .try", ...)
// the way SOS's DecodeIL lays them out. Without `with_clauses` (dynamic IL), no blocks.
std::vector<Line> Disassemble(const MethodBody& body, const TokenTextFn& token_text,
                              bool with_clauses = true);
// Lines as text: each indented, "\n" after each.
std::string LinesText(const std::vector<Line>& lines);

}  // namespace clrdiag::sos::il
