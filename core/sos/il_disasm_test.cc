// The IL decoder on hand-made method bodies: every operand kind, tiny and fat headers,
// exception clauses (small and fat sections), and SOS's printing quirks.
#include "core/sos/il_disasm.h"

#include <gtest/gtest.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos::il {
namespace {

std::string Tok(uint32_t t) { return absl::StrFormat("T%08x", t); }

// The text of the one instruction `bytes` hold.
std::string One(const std::vector<uint8_t>& bytes, uint32_t* size = nullptr) {
  Instruction ins = DecodeInstruction(bytes, 0);
  if (size) *size = ins.size;
  return absl::StrCat(ins.name, " ", OperandText(ins, Tok));
}

TEST(IlDisasmTest, NoOperand) {
  uint32_t size = 0;
  EXPECT_EQ(One({0x2a}, &size), "ret ");
  EXPECT_EQ(size, 1u);
  EXPECT_EQ(One({0x00}), "nop ");
  EXPECT_EQ(One({0x16}), "ldc.i4.0 ");
  EXPECT_EQ(One({0x15}), "ldc.i4.m1 ");
  EXPECT_EQ(One({0xfe, 0x01}, &size), "ceq ");
  EXPECT_EQ(size, 2u);
  EXPECT_EQ(One({0xdc}), "endfinally ");
  EXPECT_EQ(One({0xfe, 0x1a}), "rethrow ");
  EXPECT_EQ(One({0x24}), "unused ");  // no opcode 0x24
}

TEST(IlDisasmTest, Integers) {
  uint32_t size = 0;
  // ldc.i4.s: SOS prints the byte unsigned.
  EXPECT_EQ(One({0x1f, 0x0a}, &size), "ldc.i4.s 10");
  EXPECT_EQ(size, 2u);
  EXPECT_EQ(One({0x1f, 0xff}), "ldc.i4.s 255");
  EXPECT_EQ(One({0x20, 0x90, 0x01, 0x00, 0x00}, &size), "ldc.i4 400");
  EXPECT_EQ(size, 5u);
  EXPECT_EQ(One({0x20, 0xff, 0xff, 0xff, 0xff}), "ldc.i4 -1");
  // ldc.i8: SOS prints only the low 32 bits, signed (its "%ld" is 32-bit).
  EXPECT_EQ(One({0x21, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, &size), "ldc.i8 1");
  EXPECT_EQ(size, 9u);
  Instruction wide = DecodeInstruction(
      std::vector<uint8_t>{0x21, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, 0);
  EXPECT_EQ(wide.integer, 0x100000001);
  EXPECT_EQ(One({0x21, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), "ldc.i8 -2");
  EXPECT_EQ(One({0xfe, 0x12, 0x04}), "unaligned. 4");
}

TEST(IlDisasmTest, Reals) {
  uint32_t size = 0;
  EXPECT_EQ(One({0x22, 0x00, 0x00, 0xc0, 0x3f}, &size), "ldc.r4 1.500000");  // 1.5f
  EXPECT_EQ(size, 5u);
  EXPECT_EQ(One({0x23, 0, 0, 0, 0, 0, 0, 0x04, 0xc0}, &size), "ldc.r8 -2.500000");  // -2.5
  EXPECT_EQ(size, 9u);
}

TEST(IlDisasmTest, Branches) {
  // br.s +2 from offset 0: target 4.
  EXPECT_EQ(One({0x2b, 0x02}), "br.s IL_0004");
  // A backward short branch: the byte is added unsigned (SOS): 2 + 0xfe = 0x100.
  EXPECT_EQ(One({0x2b, 0xfe}), "br.s IL_0100");
  // Long branches are signed: 5 - 5 = 0.
  EXPECT_EQ(One({0x38, 0xfb, 0xff, 0xff, 0xff}), "br IL_0000");
  EXPECT_EQ(One({0x3f, 0x10, 0x00, 0x00, 0x00}), "blt IL_0015");
  EXPECT_EQ(One({0xde, 0x03}), "leave.s IL_0005");
  EXPECT_EQ(One({0xdd, 0x00, 0x01, 0x00, 0x00}), "leave IL_0105");
}

TEST(IlDisasmTest, Switch) {
  uint32_t size = 0;
  // Three targets relative to the end of the instruction (1 + 4 + 12 = 17).
  EXPECT_EQ(One({0x45, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, &size),
            "switch (IL_0011, IL_0016, IL_0010)");
  EXPECT_EQ(size, 17u);
  EXPECT_EQ(One({0x45, 0, 0, 0, 0}), "switch ()");
}

// A corrupt switch count (0x3fffff00 targets in a few bytes) must not wrap the 32-bit offset:
// the instruction ends at the end of the code, so a disassembly moves forward and ends (with
// the wrapped size it went back about 0x3fb bytes and decoded the same switch for ever).
TEST(IlDisasmTest, SwitchWithACorruptCountEndsAtTheEndOfTheCode) {
  std::vector<uint8_t> code(0x410, 0x00);  // nops
  const std::vector<uint8_t> sw = {0x45, 0x00, 0xff, 0xff, 0x3f, 1, 0, 0, 0};
  std::copy(sw.begin(), sw.end(), code.begin() + 0x400);
  Instruction ins = DecodeInstruction(code, 0x400);
  EXPECT_EQ(ins.offset + ins.size, code.size());
  EXPECT_EQ(ins.integer, 0x3fffff00);
}

TEST(IlDisasmTest, Tokens) {
  uint32_t size = 0;
  EXPECT_EQ(One({0x28, 0x01, 0x00, 0x00, 0x06}, &size), "call T06000001");  // MethodDef
  EXPECT_EQ(size, 5u);
  EXPECT_EQ(One({0x6f, 0x10, 0x00, 0x00, 0x0a}), "callvirt T0a000010");   // MemberRef
  EXPECT_EQ(One({0x28, 0x02, 0x00, 0x00, 0x2b}), "call T2b000002");       // MethodSpec
  EXPECT_EQ(One({0x7e, 0x03, 0x00, 0x00, 0x04}), "ldsfld T04000003");     // FieldDef
  EXPECT_EQ(One({0x8c, 0x05, 0x00, 0x00, 0x01}), "box T01000005");        // TypeRef
  EXPECT_EQ(One({0x8d, 0x07, 0x00, 0x00, 0x02}), "newarr T02000007");     // TypeDef
  EXPECT_EQ(One({0x74, 0x01, 0x00, 0x00, 0x1b}), "castclass T1b000001");  // TypeSpec
  EXPECT_EQ(One({0xd0, 0x09, 0x00, 0x00, 0x02}), "ldtoken T02000009");
  EXPECT_EQ(One({0x29, 0x04, 0x00, 0x00, 0x11}), "calli T11000004");  // StandAloneSig
  EXPECT_EQ(One({0x72, 0x01, 0x00, 0x00, 0x70}), "ldstr T70000001");  // user string
  EXPECT_EQ(One({0xfe, 0x06, 0x01, 0x00, 0x00, 0x06}, &size), "ldftn T06000001");
  EXPECT_EQ(size, 6u);
  EXPECT_EQ(One({0xfe, 0x16, 0x01, 0x00, 0x00, 0x1b}), "constrained. T1b000001");
  // Without a namer, SOS's no-metadata form.
  Instruction ins = DecodeInstruction(std::vector<uint8_t>{0x28, 0x01, 0x00, 0x00, 0x06}, 0);
  EXPECT_EQ(OperandText(ins, nullptr), "TOKEN 6000001");
  EXPECT_TRUE(IsTokenOperand(ins.kind));
}

TEST(IlDisasmTest, VarsAndArgs) {
  uint32_t size = 0;
  EXPECT_EQ(One({0x11, 0x04}, &size), "ldloc.s VAR OR ARG 4");
  EXPECT_EQ(size, 2u);
  EXPECT_EQ(One({0x10, 0x01}), "starg.s VAR OR ARG 1");
  EXPECT_EQ(One({0x12, 0xff}), "ldloca.s VAR OR ARG 255");
  EXPECT_EQ(One({0xfe, 0x0c, 0x00, 0x01}, &size), "ldloc VAR OR ARG 256");
  EXPECT_EQ(size, 4u);
  EXPECT_EQ(One({0xfe, 0x09, 0x02, 0x00}), "ldarg VAR OR ARG 2");
}

TEST(IlDisasmTest, TruncatedOperandReadsZeros) {
  uint32_t size = 0;
  EXPECT_EQ(One({0x20, 0x01}, &size), "ldc.i4 1");
  EXPECT_EQ(size, 5u);
}

TEST(IlDisasmTest, TinyHeader) {
  // Code size 3 (3 << 2 | 2): ldarg.0, pop, ret.
  std::vector<uint8_t> bytes = {0x0e, 0x02, 0x26, 0x2a};
  auto body = ParseMethodBody(bytes);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_FALSE(body->fat);
  EXPECT_EQ(body->code_size, 3u);
  EXPECT_EQ(body->on_disk_size, 4u);
  EXPECT_EQ(LinesText(Disassemble(*body, Tok)),
            "IL_0000: ldarg.0 \nIL_0001: pop \nIL_0002: ret \n");
}

TEST(IlDisasmTest, BadHeader) {
  std::vector<uint8_t> bytes = {0x4d, 0x5a, 0x90, 0x00};  // "MZ": a PE header, not IL
  EXPECT_FALSE(ParseMethodBody(bytes).ok());
  EXPECT_FALSE(ParseMethodBody(std::vector<uint8_t>{}).ok());
}

// A fat header (flags: fat, more sections, init locals), `code`, then a small EH section.
std::vector<uint8_t> FatWithSmallEh(const std::vector<uint8_t>& code,
                                    const std::vector<std::vector<uint8_t>>& clauses) {
  std::vector<uint8_t> b = {0x1b, 0x30, 0x02, 0x00};
  const auto n = static_cast<uint32_t>(code.size());
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(n >> (8 * i)));
  for (uint8_t x : {0x01, 0x00, 0x00, 0x11}) b.push_back(x);  // local sig 0x11000001
  b.insert(b.end(), code.begin(), code.end());
  while (b.size() % 4) b.push_back(0);
  b.push_back(0x01);  // EH table, small
  b.push_back(static_cast<uint8_t>(4 + 12 * clauses.size()));
  b.push_back(0);
  b.push_back(0);
  for (const auto& c : clauses) b.insert(b.end(), c.begin(), c.end());
  return b;
}

TEST(IlDisasmTest, FatHeaderWithTryFinally) {
  // try { nop; leave.s end } finally { endfinally } ret
  std::vector<uint8_t> code = {0x00, 0xde, 0x01, 0xdc, 0x2a};
  // flags 2 (finally), try 0+3, handler 3+1.
  std::vector<uint8_t> clause = {0x02, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x01, 0, 0, 0, 0};
  auto body = ParseMethodBody(FatWithSmallEh(code, {clause}));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_TRUE(body->fat);
  EXPECT_EQ(body->max_stack, 2u);
  EXPECT_EQ(body->local_sig_token, 0x11000001u);
  ASSERT_EQ(body->clauses.size(), 1u);
  EXPECT_EQ(body->clauses[0].flags, kClauseFinally);
  EXPECT_EQ(LinesText(Disassemble(*body, Tok)),
            ".try\n"
            "{\n"
            "  IL_0000: nop \n"
            "  IL_0001: leave.s IL_0004\n"
            "} // end .try\n"
            ".finally\n"
            "{\n"
            "  IL_0003: endfinally \n"
            "} // end .finally\n"
            "IL_0004: ret \n");
  // Dynamic IL has no blocks.
  EXPECT_EQ(LinesText(Disassemble(*body, Tok, false)),
            "IL_0000: nop \nIL_0001: leave.s IL_0004\nIL_0003: endfinally \nIL_0004: ret \n");
}

TEST(IlDisasmTest, FatEhSectionWithCatch) {
  // try { nop; leave.s } catch { pop; leave.s } ret, clause in a fat section.
  std::vector<uint8_t> code = {0x00, 0xde, 0x03, 0x26, 0xde, 0x00, 0x2a};
  std::vector<uint8_t> b = {0x1b, 0x30, 0x08, 0x00, 7, 0, 0, 0, 0, 0, 0, 0};
  b.insert(b.end(), code.begin(), code.end());
  while (b.size() % 4) b.push_back(0);
  b.insert(b.end(), {0x41, 28, 0, 0});  // EH table, fat, 4 + 24 bytes
  for (uint32_t v : {0u, 0u, 3u, 3u, 3u, 0x01000001u}) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  auto body = ParseMethodBody(b);
  ASSERT_TRUE(body.ok()) << body.status();
  ASSERT_EQ(body->clauses.size(), 1u);
  EXPECT_EQ(body->clauses[0].class_token_or_filter, 0x01000001u);
  EXPECT_EQ(body->on_disk_size, b.size());
  EXPECT_EQ(LinesText(Disassemble(*body, Tok)),
            ".try\n{\n  IL_0000: nop \n  IL_0001: leave.s IL_0006\n} // end .try\n"
            ".catch\n{\n  IL_0003: pop \n  IL_0004: leave.s IL_0006\n} // end .catch\n"
            "IL_0006: ret \n");
}

TEST(IlDisasmTest, UnreadableCode) {
  std::vector<uint8_t> bytes = {0x1b, 0x30, 0x02, 0x00, 100, 0, 0, 0, 0, 0, 0, 0, 0x2a};
  EXPECT_FALSE(ParseMethodBody(bytes).ok());
}

}  // namespace
}  // namespace clrdiag::sos::il
