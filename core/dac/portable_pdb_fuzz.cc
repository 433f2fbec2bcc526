// libFuzzer target: PortablePdb over arbitrary bytes. Parsing must fail cleanly or succeed, and
// every lookup must stay inside the input.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dac/portable_pdb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto pdb = clrdiag::dac::PortablePdb::Parse(std::vector<uint8_t>(data, data + size));
  if (!pdb.ok()) return 0;
  const uint32_t methods = pdb->method_count() < 64 ? pdb->method_count() : 64;
  for (uint32_t row = 0; row <= methods + 1; ++row) {
    for (uint32_t il : {0u, 1u, 17u, 0xFFFFFFFFu}) (void)pdb->LineForIlOffset(0x06000000 | row, il);
  }
  return 0;
}
