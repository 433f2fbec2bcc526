// libFuzzer target: the nettrace parser and the payload decoders on hostile stream bytes. The
// input is fed twice: whole, and in pieces whose sizes come from the input itself; both runs
// must agree (the parser is incremental, so chunking must not change what it decodes).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/eventpipe/decoders.h"
#include "core/eventpipe/nettrace.h"

namespace {

struct Outcome {
  bool ok = true;
  uint64_t events = 0;
  double value_sum = 0;
};

Outcome Run(std::span<const uint8_t> bytes, bool chunked) {
  namespace ep = clrdiag::eventpipe;
  Outcome out;
  ep::NettraceParser* self = nullptr;
  ep::NettraceParser parser({.on_trace = nullptr, .on_event = [&](const ep::Event& e) {
                               const ep::TraceInfo& t = self->trace();
                               (void)ep::DecodePayload(e.metadata->fields, e.payload,
                                                       t.pointer_size);
                               if (auto s = ep::DecodeCounter(e, t); s.ok()) {
                                 (void)ep::SeriesIntervalMs(s->series);
                                 if (s->value == s->value) out.value_sum += 1;
                               }
                               (void)ep::DecodeExceptionThrown(e, t);
                             }});
  self = &parser;
  size_t i = 0;
  while (i < bytes.size() && out.ok) {
    // Chunk sizes 1..64 taken from the byte at the chunk's start.
    const size_t n = chunked ? std::min<size_t>(bytes.size() - i, 1 + bytes[i] % 64) : bytes.size();
    out.ok = parser.Feed(bytes.subspan(i, n)).ok();
    i += n;
  }
  (void)parser.AtEof();
  out.events = parser.events();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  const Outcome whole = Run(bytes, false);
  const Outcome pieces = Run(bytes, true);
  // An error can surface earlier or later in chunked mode (after fewer events), but a clean
  // parse must decode the same events either way.
  if (whole.ok && pieces.ok &&
      (whole.events != pieces.events || whole.value_sum != pieces.value_sum)) {
    __builtin_trap();
  }
  return 0;
}
