// libFuzzer target: CoreFile over arbitrary bytes. Opening must fail cleanly or succeed, and
// every read must stay inside the input (ASan sees the exact-size buffer libFuzzer passes).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/elf/core_file.h"

namespace {

// Reads at `addr` through both entry points and checks that they agree with each other.
void Probe(const clrdiag::elf::CoreFile& core, uint64_t addr, size_t size) {
  static std::vector<uint8_t> a(1 << 16), b(1 << 16);
  size = std::min(size, a.size());
  const size_t got = core.ReadMemory(addr, a.data(), size);
  const size_t dumped = core.ReadDumpedMemory(addr, b.data(), size);
  if (got > size || dumped > got) __builtin_trap();
  if (std::memcmp(a.data(), b.data(), dumped) != 0) __builtin_trap();
  // Contains() is exactly "a dumped read of one byte succeeds".
  if (size > 0 && core.Contains(addr) != (dumped > 0)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto core = clrdiag::elf::CoreFile::OpenBytes(std::span<const uint8_t>(data, size));
  if (!core.ok()) return 0;
  const clrdiag::elf::CoreFile& c = **core;
  for (const auto& t : c.threads()) {
    Probe(c, t.regs.rsp, 4096);
    Probe(c, t.regs.rip - 16, 64);
    for (uint8_t byte : t.fpregs) (void)byte;
  }
  for (const auto& m : c.modules()) {
    Probe(c, m.base, 64);
    Probe(c, m.end - 1, 2);
  }
  for (const auto& f : c.mapped_files()) Probe(c, f.start, 256);
  // Addresses taken from the input itself hit segment starts and ends often.
  for (size_t off = 0; off + 8 <= size && off < 4096; off += 8) {
    uint64_t addr = 0;
    std::memcpy(&addr, data + off, sizeof(addr));
    Probe(c, addr, 1 + (addr & 0x3fff));
    Probe(c, addr - 1, 3);
  }
  return 0;
}
