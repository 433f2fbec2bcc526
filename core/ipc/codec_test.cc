#include "core/ipc/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace clrdiag::ipc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

std::vector<uint8_t> HeaderBytes(uint16_t size, uint8_t set, uint8_t id) {
  std::vector<uint8_t> out(reinterpret_cast<const uint8_t*>("DOTNET_IPC_V1"),
                           reinterpret_cast<const uint8_t*>("DOTNET_IPC_V1") + 14);
  for (int b : {size & 0xFF, size >> 8, int{set}, int{id}, 0, 0}) out.push_back(b);
  return out;
}

void Append(std::vector<uint8_t>& out, const std::vector<uint8_t>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

std::vector<uint8_t> Str(const std::string& s) {
  PayloadWriter w;
  w.String(s);
  return w.bytes();
}

// ---- Header -------------------------------------------------------------------------

TEST(EncodeMessageTest, LaysOutHeaderThenPayload) {
  auto msg = EncodeMessage(0x04, 0x08, Bytes({0xAA, 0xBB}));
  ASSERT_TRUE(msg.ok()) << msg.status();
  std::vector<uint8_t> want = HeaderBytes(22, 0x04, 0x08);
  Append(want, Bytes({0xAA, 0xBB}));
  EXPECT_EQ(*msg, want);
  EXPECT_EQ((*msg)[13], 0) << "magic must carry its NUL";
}

TEST(EncodeMessageTest, EmptyPayloadIsJustTheHeader) {
  auto msg = EncodeMessage(0x04, 0x00, {});
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(*msg, HeaderBytes(20, 0x04, 0x00));
}

TEST(EncodeMessageTest, LargestPayloadFitsAndOneMoreIsRejected) {
  std::vector<uint8_t> payload(kMaxPayloadSize, 0x11);
  auto msg = EncodeMessage(0x01, 0x03, payload);
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->size(), kMaxMessageSize);
  EXPECT_EQ((*msg)[14], 0xFF);
  EXPECT_EQ((*msg)[15], 0xFF);

  payload.push_back(0);
  auto too_big = EncodeMessage(0x01, 0x03, payload);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DecodeHeaderTest, RoundTripsEncodedHeader) {
  auto msg = EncodeMessage(0x01, 0x02, Bytes({1, 2, 3, 4, 5}));
  ASSERT_TRUE(msg.ok());
  auto h = DecodeHeader(std::span(*msg).first(kHeaderSize));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->size, 25);
  EXPECT_EQ(h->command_set, 0x01);
  EXPECT_EQ(h->command_id, 0x02);
  EXPECT_EQ(h->reserved, 0);
}

TEST(DecodeHeaderTest, ReadsLittleEndianSizeAndReserved) {
  std::vector<uint8_t> b = HeaderBytes(0x1234, 0xFF, 0xFF);
  b[18] = 0x01;
  b[19] = 0x02;
  auto h = DecodeHeader(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size, 0x1234);
  EXPECT_EQ(h->reserved, 0x0201);
}

TEST(DecodeHeaderTest, RejectsWrongLength) {
  std::vector<uint8_t> b = HeaderBytes(20, 0xFF, 0);
  EXPECT_FALSE(DecodeHeader(std::span(b).first(19)).ok());
  EXPECT_FALSE(DecodeHeader({}).ok());
  b.push_back(0);
  EXPECT_FALSE(DecodeHeader(b).ok());
}

TEST(DecodeHeaderTest, RejectsBadMagic) {
  std::vector<uint8_t> b = HeaderBytes(20, 0xFF, 0);
  b[0] = 'X';
  EXPECT_EQ(DecodeHeader(b).status().code(), absl::StatusCode::kDataLoss);
}

TEST(DecodeHeaderTest, RejectsMagicWithoutItsNul) {
  std::vector<uint8_t> b = HeaderBytes(20, 0xFF, 0);
  b[13] = '!';
  EXPECT_EQ(DecodeHeader(b).status().code(), absl::StatusCode::kDataLoss);
}

TEST(DecodeHeaderTest, RejectsSizeSmallerThanHeader) {
  for (uint16_t size : {0, 1, 19}) {
    auto h = DecodeHeader(HeaderBytes(size, 0xFF, 0));
    EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss) << size;
  }
  EXPECT_TRUE(DecodeHeader(HeaderBytes(20, 0xFF, 0)).ok());
  EXPECT_TRUE(DecodeHeader(HeaderBytes(0xFFFF, 0xFF, 0)).ok());
}

// ---- Integers -----------------------------------------------------------------------

TEST(PayloadTest, IntegersRoundTripLittleEndian) {
  PayloadWriter w;
  w.U16(0x1234);
  w.U32(0xDEADBEEF);
  w.U64(0x0102030405060708);
  EXPECT_THAT(w.bytes(), ElementsAre(0x34, 0x12, 0xEF, 0xBE, 0xAD, 0xDE, 8, 7, 6, 5, 4, 3, 2, 1));
  PayloadReader r(w.bytes());
  EXPECT_EQ(*r.U16(), 0x1234);
  EXPECT_EQ(*r.U32(), 0xDEADBEEF);
  EXPECT_EQ(*r.U64(), 0x0102030405060708u);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(PayloadTest, ShortReadsFailWithoutConsuming) {
  const std::vector<uint8_t> three = Bytes({1, 2, 3});
  PayloadReader r(three);
  EXPECT_EQ(r.U32().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(r.U64().ok());
  EXPECT_FALSE(r.Bytes16().ok());
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(*r.U16(), 0x0201);
  EXPECT_FALSE(r.U16().ok());
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(PayloadTest, Bytes16) {
  std::vector<uint8_t> b(17);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i);
  PayloadReader r(b);
  auto cookie = r.Bytes16();
  ASSERT_TRUE(cookie.ok());
  EXPECT_EQ((*cookie)[0], 0);
  EXPECT_EQ((*cookie)[15], 15);
  EXPECT_EQ(r.remaining(), 1u);
}

// ---- Strings ------------------------------------------------------------------------

TEST(StringTest, AsciiWireFormatCountsTheNul) {
  EXPECT_THAT(Str("ab"), ElementsAre(3, 0, 0, 0, 'a', 0, 'b', 0, 0, 0));
}

TEST(StringTest, EmptyStringIsLengthOneNotNull) {
  EXPECT_THAT(Str(""), ElementsAre(1, 0, 0, 0, 0, 0));
  const std::vector<uint8_t> b = Str("");
  PayloadReader r(b);
  EXPECT_EQ(*r.String(), "");
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(StringTest, NullStringReadsAsEmpty) {
  const std::vector<uint8_t> b = Bytes({0, 0, 0, 0, 0x7F});
  PayloadReader r(b);
  auto s = r.String();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "");
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(StringTest, NonAsciiRoundTrips) {
  // 2-, 3- and 4-byte UTF-8 (the last one a surrogate pair on the wire).
  const std::string text = "/tmp/d\xC3\xBCmp-\xE6\x97\xA5\xE6\x9C\xAC-\xF0\x9F\x90\x9B.core";
  const std::vector<uint8_t> b = Str(text);
  PayloadReader r(b);
  EXPECT_EQ(*r.String(), text);
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(StringTest, SupplementaryCharacterIsASurrogatePair) {
  // U+1F41B → D83D DC1B.
  EXPECT_THAT(Str("\xF0\x9F\x90\x9B"), ElementsAre(3, 0, 0, 0, 0x3D, 0xD8, 0x1B, 0xDC, 0, 0));
}

TEST(StringTest, InvalidUtf8BecomesReplacementCharacter) {
  // A stray continuation byte, an overlong '/', a UTF-8-encoded surrogate, a truncated
  // sequence: each ill-formed byte becomes U+FFFD.
  for (const std::string& bad : {std::string("\x80"), std::string("\xC0\xAF"),
                                 std::string("\xED\xA0\x80"), std::string("\xE6\x97")}) {
    const std::vector<uint8_t> b = Str("a" + bad);
    PayloadReader r(b);
    auto s = r.String();
    ASSERT_TRUE(s.ok());
    std::string want = "a";
    for (size_t i = 0; i < bad.size(); ++i) want += "\xEF\xBF\xBD";
    EXPECT_EQ(*s, want);
  }
}

TEST(StringTest, UnpairedSurrogatesDecodeToReplacementCharacter) {
  // "a", lone high surrogate, "b", lone low surrogate, high surrogate right before the NUL.
  const std::vector<uint8_t> b =
      Bytes({6, 0, 0, 0, 'a', 0, 0x00, 0xD8, 'b', 0, 0x00, 0xDC, 0x00, 0xD8, 0, 0});
  PayloadReader r(b);
  EXPECT_EQ(*r.String(),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StringTest, StopsAtEmbeddedNul) {
  const std::vector<uint8_t> b = Bytes({4, 0, 0, 0, 'a', 0, 0, 0, 'b', 0, 0, 0, 0xEE});
  PayloadReader r(b);
  EXPECT_EQ(*r.String(), "a");
  EXPECT_EQ(r.remaining(), 1u) << "the whole declared length is consumed";
}

TEST(StringTest, LengthOverrunningPayloadFails) {
  const std::vector<uint8_t> b = Bytes({3, 0, 0, 0, 'a', 0, 0, 0});
  PayloadReader r(b);
  auto s = r.String();
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("overruns"));
  EXPECT_EQ(r.remaining(), b.size()) << "a failed read consumes nothing";
}

TEST(StringTest, OddByteCountFails) {
  // Two units declared, three bytes present.
  const std::vector<uint8_t> b = Bytes({2, 0, 0, 0, 'a', 0, 0});
  PayloadReader r(b);
  EXPECT_FALSE(r.String().ok());
}

TEST(StringTest, HugeLengthDoesNotOverflow) {
  const std::vector<uint8_t> b = Bytes({0xFF, 0xFF, 0xFF, 0xFF, 'a', 0, 0, 0});
  PayloadReader r(b);
  EXPECT_FALSE(r.String().ok());
  const std::vector<uint8_t> b2 = Bytes({0x00, 0x00, 0x00, 0x80, 0, 0});
  PayloadReader r2(b2);
  EXPECT_FALSE(r2.String().ok());
}

TEST(StringTest, MissingTerminatorFails) {
  const std::vector<uint8_t> b = Bytes({2, 0, 0, 0, 'a', 0, 'b', 0});
  PayloadReader r(b);
  EXPECT_EQ(r.String().status().code(), absl::StatusCode::kDataLoss);
}

TEST(StringTest, TruncatedLengthFails) {
  const std::vector<uint8_t> b = Bytes({1, 0});
  PayloadReader r(b);
  EXPECT_FALSE(r.String().ok());
}

// ---- ProcessInfo --------------------------------------------------------------------

std::vector<uint8_t> ProcessInfoBytes(int version, uint32_t payload_version = 1) {
  PayloadWriter w;
  if (version == 3) w.U32(payload_version);
  w.U64(4242);
  std::vector<uint8_t> out = w.bytes();
  for (int i = 0; i < 16; ++i) out.push_back(static_cast<uint8_t>(0xA0 + i));
  Append(out, Str("/usr/bin/dotnet app.dll --flag"));
  Append(out, Str("Linux"));
  Append(out, Str("x64"));
  if (version >= 2) {
    Append(out, Str("MyApp"));
    Append(out, Str("8.0.5+abc"));
  }
  if (version == 3 && payload_version >= 1) Append(out, Str("linux-musl-x64"));
  return out;
}

TEST(ProcessInfoTest, ParsesV1) {
  auto info = ParseProcessInfo(1, ProcessInfoBytes(1));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 1);
  EXPECT_EQ(info->pid, 4242u);
  EXPECT_EQ(info->cookie[0], 0xA0);
  EXPECT_EQ(info->cookie[15], 0xAF);
  EXPECT_EQ(info->command_line, "/usr/bin/dotnet app.dll --flag");
  EXPECT_EQ(info->os, "Linux");
  EXPECT_EQ(info->arch, "x64");
  EXPECT_EQ(info->entry_assembly, "");
  EXPECT_EQ(info->runtime_version, "");
  EXPECT_EQ(info->runtime_id, "");
}

TEST(ProcessInfoTest, ParsesV2) {
  auto info = ParseProcessInfo(2, ProcessInfoBytes(2));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 2);
  EXPECT_EQ(info->entry_assembly, "MyApp");
  EXPECT_EQ(info->runtime_version, "8.0.5+abc");
  EXPECT_EQ(info->runtime_id, "");
}

TEST(ProcessInfoTest, ParsesV3) {
  auto info = ParseProcessInfo(3, ProcessInfoBytes(3));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(info->pid, 4242u);
  EXPECT_EQ(info->entry_assembly, "MyApp");
  EXPECT_EQ(info->runtime_id, "linux-musl-x64");
}

TEST(ProcessInfoTest, V3PayloadVersionZeroHasNoRuntimeId) {
  auto info = ParseProcessInfo(3, ProcessInfoBytes(3, /*payload_version=*/0));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->runtime_version, "8.0.5+abc");
  EXPECT_EQ(info->runtime_id, "");
}

TEST(ProcessInfoTest, IgnoresTrailingBytes) {
  for (int version : {1, 2, 3}) {
    std::vector<uint8_t> b = ProcessInfoBytes(version, /*payload_version=*/2);
    Append(b, Str("a field from the future"));
    b.push_back(0x99);
    auto info = ParseProcessInfo(version, b);
    ASSERT_TRUE(info.ok()) << version << ": " << info.status();
    EXPECT_EQ(info->arch, "x64");
  }
}

TEST(ProcessInfoTest, EveryTruncationFails) {
  for (int version : {1, 2, 3}) {
    const std::vector<uint8_t> full = ProcessInfoBytes(version);
    for (size_t len = 0; len < full.size(); ++len) {
      auto info = ParseProcessInfo(version, std::span(full).first(len));
      EXPECT_FALSE(info.ok()) << "version " << version << " truncated to " << len;
    }
    EXPECT_TRUE(ParseProcessInfo(version, full).ok());
  }
}

TEST(ProcessInfoTest, V2ReplyIsTooShortForV3) {
  // Reading a v2 payload as v3 shifts everything by four bytes; it must fail, not crash.
  EXPECT_FALSE(ParseProcessInfo(3, ProcessInfoBytes(2)).ok());
}

TEST(ProcessInfoTest, RejectsUnknownVersion) {
  EXPECT_EQ(ParseProcessInfo(0, ProcessInfoBytes(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseProcessInfo(4, ProcessInfoBytes(3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Error replies ------------------------------------------------------------------

TEST(ErrorReplyTest, BareHresult) {
  auto e = ParseErrorReply(Bytes({0x85, 0x13, 0x13, 0x80}));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->hresult, hresult::kUnknownCommand);
  EXPECT_EQ(e->message, "");
}

TEST(ErrorReplyTest, V3Message) {
  std::vector<uint8_t> b = Bytes({0x05, 0x40, 0x00, 0x80});
  Append(b, Str("[createdump] ptrace failed\n"));
  auto e = ParseErrorReply(b);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->hresult, hresult::kFail);
  EXPECT_EQ(e->message, "[createdump] ptrace failed\n");
}

TEST(ErrorReplyTest, V3EmptyMessage) {
  std::vector<uint8_t> b = Bytes({0x15, 0x15, 0x13, 0x80});
  Append(b, Str(""));
  ASSERT_EQ(b.size(), 10u);
  auto e = ParseErrorReply(b);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->hresult, hresult::kNotSupported);
  EXPECT_EQ(e->message, "");
}

TEST(ErrorReplyTest, TooShort) {
  EXPECT_EQ(ParseErrorReply(Bytes({1, 2, 3})).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(ParseErrorReply({}).ok());
}

TEST(ErrorReplyTest, MalformedMessageKeepsHresult) {
  // The message length overruns the payload: the HRESULT still comes through.
  std::vector<uint8_t> b = Bytes({0x05, 0x40, 0x00, 0x80, 50, 0, 0, 0, 'x', 0});
  auto e = ParseErrorReply(b);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->hresult, hresult::kFail);
  EXPECT_EQ(e->message, "");
}

// ---- Dump request -------------------------------------------------------------------

TEST(DumpRequestTest, Layout) {
  const std::vector<uint8_t> b =
      EncodeDumpRequestPayload("/d", DumpType::kWithHeap, dump_flags::kCrashReport);
  EXPECT_THAT(b, ElementsAre(3, 0, 0, 0, '/', 0, 'd', 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0));
  PayloadReader r(b);
  EXPECT_EQ(*r.String(), "/d");
  EXPECT_EQ(*r.U32(), 2u);
  EXPECT_EQ(*r.U32(), 4u);
}

TEST(DumpRequestTest, WholeMessageRoundTrip) {
  const std::string path = "/var/tmp/\xE2\x82\xAC/core";
  auto msg = EncodeMessage(0x01, 0x03, EncodeDumpRequestPayload(path, DumpType::kFull, 0x05));
  ASSERT_TRUE(msg.ok());
  auto h = DecodeHeader(std::span(*msg).first(kHeaderSize));
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size, msg->size());
  PayloadReader r{std::span(*msg).subspan(kHeaderSize)};
  EXPECT_EQ(*r.String(), path);
  EXPECT_EQ(*r.U32(), 4u);
  EXPECT_EQ(*r.U32(), 5u);
  EXPECT_EQ(r.remaining(), 0u);
}

}  // namespace
}  // namespace clrdiag::ipc
