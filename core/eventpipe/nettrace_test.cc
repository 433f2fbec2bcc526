// The nettrace parser and decoders on streams recorded from real runtimes (tests/data/eventpipe,
// see its README), fed whole, in small pieces, truncated and corrupted; plus a stream written
// here with uncompressed event headers and V2 metadata (arrays), which the runtime never sends.
#include "core/eventpipe/nettrace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "core/eventpipe/decoders.h"

namespace clrdiag::eventpipe {
namespace {

std::vector<uint8_t> ReadData(const std::string& name) {
  std::ifstream in(std::string(CLRDIAG_TEST_DATA_DIR) + "/eventpipe/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

// What a stream decodes to.
struct Decoded {
  absl::Status feed_status;
  absl::Status eof_status;
  uint64_t events = 0;
  std::vector<CounterSample> counters;
  std::vector<ExceptionThrown> exceptions;
  std::map<int32_t, int> runtime_event_ids;  // Microsoft-Windows-DotNETRuntime id -> count
  TraceInfo trace;
  int decode_errors = 0;
};

Decoded Parse(std::span<const uint8_t> bytes, size_t chunk) {
  Decoded d;
  NettraceParser* self = nullptr;
  NettraceParser parser({.on_trace = nullptr, .on_event = [&](const Event& e) {
                           const TraceInfo& t = self->trace();
                           if (IsCounterEvent(*e.metadata)) {
                             absl::StatusOr<CounterSample> s = DecodeCounter(e, t);
                             if (s.ok())
                               d.counters.push_back(*s);
                             else
                               ++d.decode_errors;
                           } else if (IsExceptionThrownEvent(*e.metadata)) {
                             absl::StatusOr<ExceptionThrown> x = DecodeExceptionThrown(e, t);
                             if (x.ok())
                               d.exceptions.push_back(*x);
                             else
                               ++d.decode_errors;
                           }
                           if (e.metadata->provider == kRuntimeProvider) {
                             ++d.runtime_event_ids[e.metadata->event_id];
                           }
                         }});
  self = &parser;
  for (size_t i = 0; i < bytes.size() && d.feed_status.ok(); i += chunk) {
    d.feed_status = parser.Feed(bytes.subspan(i, std::min(chunk, bytes.size() - i)));
  }
  d.eof_status = parser.AtEof();
  d.events = parser.events();
  d.trace = parser.trace();
  return d;
}

TEST(NettraceRecorded, CountersAndExceptionsFromDotnet10) {
  const std::vector<uint8_t> bytes = ReadData("counters-exceptions-net10.nettrace");
  ASSERT_FALSE(bytes.empty());
  Decoded d = Parse(bytes, bytes.size());
  ASSERT_TRUE(d.feed_status.ok()) << d.feed_status;
  EXPECT_TRUE(d.eof_status.ok()) << d.eof_status;  // stopped with StopTracing: end tag
  EXPECT_EQ(d.decode_errors, 0);
  EXPECT_EQ(d.trace.pointer_size, 8);
  EXPECT_GT(d.trace.process_id, 0);
  EXPECT_EQ(d.trace.qpc_frequency, 1000000000);  // Linux: nanoseconds

  // Exceptions: one "throw System.InvalidOperationException hello", then 50 from throwloop.
  ASSERT_EQ(d.exceptions.size(), 51u);
  EXPECT_EQ(d.exceptions[0].type, "System.InvalidOperationException");
  EXPECT_EQ(d.exceptions[0].message, "hello");
  EXPECT_EQ(d.exceptions[0].hresult, 0x80131509u);  // COR_E_INVALIDOPERATION
  for (size_t i = 1; i < d.exceptions.size(); ++i) {
    EXPECT_EQ(d.exceptions[i].type, "System.ArgumentException");
    EXPECT_EQ(d.exceptions[i].message, "clrdiag behaviour exception");
    EXPECT_EQ(d.exceptions[i].hresult, 0x80070057u);
  }
  // Level 4 also brought the filter, catch and ThrownStop events: each thrown one was caught.
  EXPECT_EQ(d.runtime_event_ids[kExceptionThrownEventId], 51);
  EXPECT_EQ(d.runtime_event_ids[250], 51);  // ExceptionCatchStart
  EXPECT_EQ(d.runtime_event_ids[256], 51);  // ExceptionThrownStop

  // Counters: every System.Runtime counter once a second, Series "Interval=1000".
  std::map<std::string, std::vector<CounterSample>> by_name;
  for (const CounterSample& s : d.counters) {
    EXPECT_EQ(s.provider, "System.Runtime");
    EXPECT_EQ(s.series, "Interval=1000");
    EXPECT_EQ(SeriesIntervalMs(s.series), 1000);
    EXPECT_NEAR(s.interval_sec, 1.0, 0.5) << s.name;  // the measured interval
    by_name[s.name].push_back(s);
  }
  for (const char* name : {"cpu-usage", "working-set", "gc-heap-size", "exception-count",
                           "alloc-rate", "threadpool-queue-length", "gen-0-gc-count"}) {
    EXPECT_EQ(by_name[name].size(), 6u) << name;
  }
  EXPECT_FALSE(by_name["cpu-usage"][0].incrementing);
  EXPECT_TRUE(by_name["exception-count"][0].incrementing);
  EXPECT_EQ(by_name["gc-heap-size"][0].display_units, "MB");
  // Samples a second apart.
  const auto& heap = by_name["gc-heap-size"];
  for (size_t i = 1; i < heap.size(); ++i) {
    const absl::Duration gap = heap[i].timestamp - heap[i - 1].timestamp;
    EXPECT_GT(gap, absl::Milliseconds(800));
    EXPECT_LT(gap, absl::Milliseconds(1200));
  }
  // `alloc 100` kept 100 MiB alive: the heap grew from under 10 MB to over 100 MB.
  EXPECT_LT(heap.front().value, 10);
  EXPECT_GT(heap.back().value, 100);
  // The increments of exception-count add up to the 51 exceptions thrown.
  double thrown = 0;
  for (const CounterSample& s : by_name["exception-count"]) thrown += s.value;
  EXPECT_DOUBLE_EQ(thrown, 51);
  // Event times fall within the session (it lasted about 6 s).
  EXPECT_GE(heap.front().timestamp, d.trace.start_time);
  EXPECT_LT(heap.back().timestamp, d.trace.start_time + absl::Seconds(10));
}

TEST(NettraceRecorded, SameResultWhateverTheChunkSize) {
  const std::vector<uint8_t> bytes = ReadData("counters-exceptions-net10.nettrace");
  const Decoded whole = Parse(bytes, bytes.size());
  for (size_t chunk : {1u, 3u, 7u, 64u, 1000u, 4096u, 65536u}) {
    Decoded d = Parse(bytes, chunk);
    EXPECT_TRUE(d.feed_status.ok()) << chunk << ": " << d.feed_status;
    EXPECT_TRUE(d.eof_status.ok()) << chunk;
    EXPECT_EQ(d.events, whole.events) << chunk;
    ASSERT_EQ(d.counters.size(), whole.counters.size()) << chunk;
    for (size_t i = 0; i < d.counters.size(); ++i) {
      EXPECT_EQ(d.counters[i].name, whole.counters[i].name);
      EXPECT_EQ(d.counters[i].value, whole.counters[i].value);
      EXPECT_EQ(d.counters[i].timestamp, whole.counters[i].timestamp);
    }
    EXPECT_EQ(d.exceptions.size(), whole.exceptions.size()) << chunk;
  }
}

TEST(NettraceRecorded, CrashStreamsAreCutAfterTheThrownEvent) {
  for (const char* name : {"crash-net10.nettrace", "crash-net8.nettrace"}) {
    Decoded d = Parse(ReadData(name), 4096);
    EXPECT_TRUE(d.feed_status.ok()) << name << ": " << d.feed_status;
    EXPECT_TRUE(absl::IsOutOfRange(d.eof_status)) << name << ": " << d.eof_status;
    EXPECT_THAT(std::string(d.eof_status.message()), ::testing::HasSubstr("without its end tag"));
    ASSERT_EQ(d.exceptions.size(), 1u) << name;
    EXPECT_EQ(d.exceptions[0].type, "System.InvalidOperationException");
    EXPECT_EQ(d.exceptions[0].message, "boom");
    // No catch: the exception was unhandled.
    EXPECT_EQ(d.runtime_event_ids.count(250), 0u) << name;
  }
}

// Every prefix of the stream: never an error while feeding, never more events than the whole,
// and the end is reported as a cut stream.
TEST(NettraceRecorded, TruncatedCopies) {
  const std::vector<uint8_t> bytes = ReadData("counters-exceptions-net10.nettrace");
  const Decoded whole = Parse(bytes, bytes.size());
  uint64_t last_events = 0;
  for (size_t len = 0; len < bytes.size(); len += (len < 4096 ? 1 : 331)) {
    Decoded d = Parse(std::span(bytes.data(), len), 997);
    ASSERT_TRUE(d.feed_status.ok()) << len << ": " << d.feed_status;
    ASSERT_TRUE(absl::IsOutOfRange(d.eof_status)) << len << ": " << d.eof_status;
    EXPECT_LE(d.events, whole.events);
    EXPECT_GE(d.events, last_events);  // a longer prefix never decodes fewer events
    last_events = d.events;
  }
}

// Flipped bytes: an error status or a (possibly different) clean parse, never a crash (this
// test runs under ASan/UBSan in the sanitizer build; the fuzz target goes further).
TEST(NettraceRecorded, CorruptedCopies) {
  const std::vector<uint8_t> bytes = ReadData("counters-exceptions-net10.nettrace");
  int errors = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += 37) {
    for (uint8_t x : {0x01, 0x80, 0xFF}) {
      std::vector<uint8_t> bad = bytes;
      bad[pos] ^= x;
      Decoded d = Parse(bad, 4096);
      if (!d.feed_status.ok()) {
        ++errors;
        EXPECT_TRUE(absl::IsDataLoss(d.feed_status) || absl::IsUnimplemented(d.feed_status))
            << d.feed_status;
        EXPECT_EQ(d.eof_status, d.feed_status);  // the parser stays failed
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(NettraceErrors, NotANettraceStream) {
  NettraceParser p({});
  const std::string junk = "GET / HTTP/1.1\r\n\r\n and more bytes to pass the header size";
  absl::Status s = p.Feed(std::span(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("Nettrace"));
  // Wrong from the first bytes: no need to wait for more.
  NettraceParser q({});
  const uint8_t two[] = {'N', 'x'};
  EXPECT_TRUE(absl::IsDataLoss(q.Feed(two)));
}

TEST(NettraceErrors, BytesAfterTheEndTag) {
  std::vector<uint8_t> bytes = ReadData("counters-exceptions-net10.nettrace");
  bytes.push_back(0x05);
  NettraceParser p({});
  absl::Status s = p.Feed(bytes);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("after the end"));
}

// --- A stream written here: uncompressed headers, V2 metadata with an array field. ---

class Writer {
 public:
  void U8(uint8_t v) { b.push_back(v); }
  void I16(int16_t v) { Raw(&v, 2); }
  void I32(int32_t v) { Raw(&v, 4); }
  void I64(int64_t v) { Raw(&v, 8); }
  void F64(double v) { Raw(&v, 8); }
  void Utf16z(const std::string& ascii) {
    for (char c : ascii) {
      U8(static_cast<uint8_t>(c));
      U8(0);
    }
    U8(0);
    U8(0);
  }
  void Raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
  }
  std::vector<uint8_t> b;
};

void BeginObject(Writer& w, const std::string& type, int version) {
  w.U8(5);
  w.U8(5);
  w.U8(1);
  w.I32(version);
  w.I32(version);
  w.I32(static_cast<int32_t>(type.size()));
  w.Raw(type.data(), type.size());
  w.U8(6);
}

// A block object with `body` (padding to a 4-byte stream offset is added here).
void Block(Writer& w, const std::string& type, const std::vector<uint8_t>& body) {
  BeginObject(w, type, 2);
  w.I32(static_cast<int32_t>(body.size()));
  while (w.b.size() % 4 != 0) w.U8(0);
  w.Raw(body.data(), body.size());
  w.U8(6);
}

// One uncompressed event blob.
void UncompressedEvent(Writer& w, int32_t metadata_id, int64_t ts,
                       const std::vector<uint8_t>& payload) {
  const size_t start = w.b.size();
  w.I32(static_cast<int32_t>(76 + payload.size()));
  w.I32(metadata_id);
  w.I32(1);     // sequence
  w.I64(1234);  // thread
  w.I64(1234);  // capture thread
  w.I32(0);     // processor
  w.I32(0);     // stack
  w.I64(ts);
  for (int i = 0; i < 32; ++i) w.U8(0);  // activity ids
  w.I32(static_cast<int32_t>(payload.size()));
  w.Raw(payload.data(), payload.size());
  while ((w.b.size() - start) % 4 != 0) w.U8(0);
}

std::vector<uint8_t> BlockHeader() {
  Writer h;
  h.I16(20);
  h.I16(0);  // uncompressed
  h.I64(0);
  h.I64(0);
  return h.b;
}

std::vector<uint8_t> HandMadeStream() {
  Writer w;
  w.Raw("Nettrace", 8);
  w.I32(20);
  w.Raw("!FastSerialization.1", 20);
  BeginObject(w, "Trace", 4);
  for (int16_t v : {2026, 11, 5, 27, 12, 0, 0, 500}) w.I16(v);
  w.I64(1000);     // sync QPC
  w.I64(1000000);  // 1 MHz
  w.I32(8);
  w.I32(4242);
  w.I32(2);
  w.I32(0);
  w.U8(6);

  // Metadata 1: an EventCounters-like event with empty V1 fields and V2 params
  // {Name: string, Tags: array of int32, Mean: double, CounterType: string}.
  Writer md;
  md.I32(1);
  md.Utf16z("My.Provider");
  md.I32(7);
  md.Utf16z("EventCounters");
  md.I64(0);
  md.I32(0);
  md.I32(4);
  md.I32(0);  // V1 field count
  Writer v2;
  v2.I32(4);
  auto field = [&](const std::string& name, int32_t type, int32_t element) {
    Writer f;
    f.Utf16z(name);
    f.I32(type);
    if (type == 19) f.I32(element);
    v2.I32(static_cast<int32_t>(4 + f.b.size() + 2));  // 2 bytes of padding
    v2.Raw(f.b.data(), f.b.size());
    v2.U8(0);
    v2.U8(0);
  };
  field("Name", 18, 0);
  field("Tags", 19, 9);
  field("Mean", 14, 0);
  field("CounterType", 18, 0);
  md.I32(1);  // opcode tag
  md.U8(1);
  md.U8(42);
  md.I32(static_cast<int32_t>(v2.b.size()));
  md.U8(2);
  md.Raw(v2.b.data(), v2.b.size());

  Writer mb;
  mb.b = BlockHeader();
  UncompressedEvent(mb, 0, 1000, md.b);
  Block(w, "MetadataBlock", mb.b);

  Writer p;
  p.Utf16z("queue-depth");
  p.I16(3);  // array of 3 int32
  p.I32(1);
  p.I32(2);
  p.I32(3);
  p.F64(12.5);
  p.Utf16z("Mean");
  Writer eb;
  eb.b = BlockHeader();
  UncompressedEvent(eb, 1, 1000 + 2500000, p.b);  // 2.5 s after the sync point
  UncompressedEvent(eb, 1 | static_cast<int32_t>(0x80000000u), 1000 + 3000000, p.b);  // sorted
  Block(w, "EventBlock", eb.b);
  Writer sp;
  sp.I64(1000 + 3000000);
  sp.I32(1);
  sp.I64(1234);
  sp.I32(2);
  Block(w, "SPBlock", sp.b);
  Block(w, "SomeFutureBlock", {1, 2, 3, 4, 5});  // unknown objects are skipped
  w.U8(1);
  return w.b;
}

TEST(NettraceHandMade, UncompressedHeadersAndV2Metadata) {
  const std::vector<uint8_t> bytes = HandMadeStream();
  for (size_t chunk : {size_t{1}, size_t{5}, bytes.size()}) {
    std::vector<CounterSample> samples;
    NettraceParser* self = nullptr;
    NettraceParser parser({.on_trace = nullptr, .on_event = [&](const Event& e) {
                             EXPECT_EQ(e.metadata->opcode, 42);
                             EXPECT_EQ(e.thread_id, 1234u);
                             absl::StatusOr<CounterSample> s = DecodeCounter(e, self->trace());
                             ASSERT_TRUE(s.ok()) << s.status();
                             samples.push_back(*s);
                           }});
    self = &parser;
    for (size_t i = 0; i < bytes.size(); i += chunk) {
      ASSERT_TRUE(parser.Feed(std::span(bytes).subspan(i, std::min(chunk, bytes.size() - i))).ok());
    }
    EXPECT_TRUE(parser.ended());
    EXPECT_TRUE(parser.AtEof().ok());
    EXPECT_EQ(parser.trace().process_id, 4242);
    ASSERT_EQ(samples.size(), 2u);
    EXPECT_EQ(samples[0].provider, "My.Provider");
    EXPECT_EQ(samples[0].name, "queue-depth");
    EXPECT_DOUBLE_EQ(samples[0].value, 12.5);
    const absl::Time start =
        absl::FromCivil(absl::CivilSecond(2026, 11, 27, 12, 0, 0), absl::UTCTimeZone()) +
        absl::Milliseconds(500);
    EXPECT_EQ(parser.trace().start_time, start);
    EXPECT_EQ(samples[0].timestamp, start + absl::Milliseconds(2500));
    EXPECT_EQ(samples[1].timestamp, start + absl::Seconds(3));
  }
}

TEST(NettraceHandMade, EventWithUndefinedMetadataIsAnError) {
  std::vector<uint8_t> bytes = HandMadeStream();
  // The MetadataBlock's defined id (first payload int) 1 -> 9: the events refer to nothing.
  const uint8_t provider[] = {'M', 0, 'y', 0, '.', 0};
  auto it = std::search(bytes.begin(), bytes.end(), std::begin(provider), std::end(provider));
  ASSERT_NE(it, bytes.end());
  *(it - 4) = 9;
  NettraceParser parser({});
  absl::Status s = parser.Feed(bytes);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("undefined metadata id 1"));
}

TEST(NettraceHandMade, HugeBlockSizeIsRefused) {
  std::vector<uint8_t> bytes = HandMadeStream();
  const char name[] = "MetadataBlock";
  auto it = std::search(bytes.begin(), bytes.end(), name, name + 13);
  ASSERT_NE(it, bytes.end());
  const size_t size_at = static_cast<size_t>(it - bytes.begin()) + 13 + 1;  // after the end tag
  const int32_t huge = 0x7FFFFFF0;
  std::memcpy(&bytes[size_at], &huge, 4);
  NettraceParser parser({});
  absl::Status s = parser.Feed(bytes);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("out of range"));
}

TEST(Decoders, SeriesInterval) {
  EXPECT_EQ(SeriesIntervalMs("Interval=1000"), 1000);
  EXPECT_EQ(SeriesIntervalMs("Foo=1;Interval=250"), 250);
  EXPECT_EQ(SeriesIntervalMs(""), std::nullopt);
  EXPECT_EQ(SeriesIntervalMs("Interval=x"), std::nullopt);
}

TEST(Decoders, Utf16) {
  const uint8_t s[] = {'h', 0, 0xE9, 0, 0x3D, 0xD8, 0x00, 0xDE, 0, 0};  // "hé😀"
  absl::StatusOr<std::pair<std::string, size_t>> r = ReadUtf16z(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, "h\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(r->second, sizeof(s));
  const uint8_t unterminated[] = {'h', 0, 'i'};
  EXPECT_TRUE(absl::IsDataLoss(ReadUtf16z(unterminated).status()));
}

}  // namespace
}  // namespace clrdiag::eventpipe
