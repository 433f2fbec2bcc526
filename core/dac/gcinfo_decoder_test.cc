// The GC info decoder on blobs copied from dumps of the HeapApp fixture (dotnet-dump's `db` at
// the address `gcinfo` prints), checked against the text dotnet-dump's `gcinfo` printed for the
// same methods.
#include "core/dac/gcinfo_decoder.h"

#include <gtest/gtest.h>

#include <sstream>

namespace clrdiag::dac::gcinfo {
namespace {

std::vector<uint8_t> Bytes(const std::string& hex) {
  std::vector<uint8_t> out;
  std::istringstream in(hex);
  std::string b;
  while (in >> b) out.push_back(static_cast<uint8_t>(std::stoul(b, nullptr, 16)));
  return out;
}

// .NET 10, Fixture.HeapProgram.ThrowOuter(): fully interruptible ranges, untracked and tracked
// registers.
const char* kNet10ThrowOuter =
    "81 b1 03 00 a3 28 06 d3 40 26 34 20 83 3c 0c 06 43 85 0f b2 93 cb 90 87 95 cf ca 63 e5 b2 9a "
    "f5 00 00 00 00 00 00 00 00 00 79 06 09 45 02 41 6a 78 5c 01 a0 11 08 94 cc c2 b7 a1 94 1c 34 "
    "a5 01";
// .NET 10, System.String.Concat(String, String) (ReadyToRun): safe points only.
const char* kNet10Concat =
    "b2 63 a4 d8 10 d7 6f 00 74 a9 c3 29 03 00 00 00 19 0e 07 00 0e 22 0a 30 09 c0 07 d0 05 e0 03 "
    "f0 01 50 00 00 20 c8 66 00 81 90 1a 00 00 1b 27 39 58 40 1a 90 06 a4 61 68 15 d1 64 5d 80 04 "
    "07 e2";
// .NET 8 (format 3), Fixture.HeapProgram.ThrowOuter(): PSPSym and a return kind.
const char* kNet8ThrowOuter =
    "91 01 47 00 00 58 e7 60 91 06 32 a1 01 19 e4 61 30 18 2c 78 01 3a 47 91 a3 50 8f 87 91 cb c8 "
    "61 e4 31 5a d5 00 00 00 00 00 2a 06 09 10 b2 35 92 a0 27 00 62 21 0a 29 90 94 23 5f 6a 00 b1 "
    "95 0e";

TEST(GcInfoDecoder, Net10FullyInterruptible) {
  auto info = Decode(Bytes(kNet10ThrowOuter), VersionForRuntime(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->header.code_length, 0x76u);
  EXPECT_EQ(info->header.frame_register, 5u);
  EXPECT_EQ(FormatLikeSos(*info),
            "Prolog size: 0\n"
            "GS cookie: <none>\n"
            "PSPSym: <none>\n"
            "Generics inst context: <none>\n"
            "PSP slot: <none>\n"
            "GenericInst slot: <none>\n"
            "Varargs: 0\n"
            "Frame pointer: rbp\n"
            "Wants Report Only Leaf: 1\n"
            "Size of parameter area: 0\n"
            "Code size: 76\n"
            "Untracked: +rbp-8 +rbp-10 +rbp-18 +rbp-20\n"
            "00000014 interruptible\n"
            "0000001f not interruptible\n"
            "00000022 interruptible\n"
            "00000022 +rdi\n"
            "0000002a +rax\n"
            "00000038 -rdi\n"
            "0000005e +rsi\n"
            "00000062 +rdi\n"
            "00000066 +rdx\n"
            "0000006c -rdi -rsi -rdx -rax\n"
            "00000070 +rdi\n"
            "00000075 -rdi\n"
            "00000076 not interruptible\n");
}

TEST(GcInfoDecoder, Net10SafePoints) {
  auto info = Decode(Bytes(kNet10Concat), 4);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(FormatLikeSos(*info),
            "Prolog size: 0\n"
            "GS cookie: <none>\n"
            "PSPSym: <none>\n"
            "Generics inst context: <none>\n"
            "PSP slot: <none>\n"
            "GenericInst slot: <none>\n"
            "Varargs: 0\n"
            "Frame pointer: rbp\n"
            "Wants Report Only Leaf: 0\n"
            "Size of parameter area: 0\n"
            "Code size: ec\n"
            "00000052 is a safepoint:  +r15 +rbx +rax\n"
            "0000006c is a safepoint:  +rbp-30 +rbx\n"
            "00000088 is a safepoint:  +rbp-30 +r15\n"
            "000000eb is a safepoint: \n");
}

TEST(GcInfoDecoder, Net8Format3) {
  auto info = Decode(Bytes(kNet8ThrowOuter), VersionForRuntime(8));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(FormatLikeSos(*info),
            "Prolog size: 0\n"
            "GS cookie: <none>\n"
            "PSPSym: initial.sp+0\n"
            "Generics inst context: <none>\n"
            "PSP slot: caller.sp+0\n"
            "GenericInst slot: <none>\n"
            "Varargs: 0\n"
            "Frame pointer: rbp\n"
            "Wants Report Only Leaf: 1\n"
            "Size of parameter area: 0\n"
            "Return Kind: Scalar\n"
            "Code size: 8e\n"
            "Untracked: +rbp-8 +rbp-10 +rbp-18 +rbp-20\n"
            "0000001d interruptible\n"
            "00000025 not interruptible\n"
            "0000003b interruptible\n"
            "0000003b +rsi\n"
            "00000043 +rdi\n"
            "00000051 -rdi\n"
            "00000056 -rsi +rax\n"
            "00000076 +rsi\n"
            "0000007a +rdi\n"
            "0000007e +rdx\n"
            "00000084 -rdi -rsi -rdx -rax\n"
            "00000088 +rdi\n"
            "0000008d -rdi\n"
            "0000008e not interruptible\n");
}

TEST(GcInfoDecoder, BadInput) {
  EXPECT_FALSE(Decode({}, 4).ok());
  std::vector<uint8_t> one = {0x81};
  EXPECT_FALSE(Decode(one, 7).ok());
  // A fat header whose code length is 0.
  std::vector<uint8_t> zeros(16, 0);
  zeros[0] = 1;
  EXPECT_FALSE(Decode(zeros, 4).ok());
}

}  // namespace
}  // namespace clrdiag::dac::gcinfo
