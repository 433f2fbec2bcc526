// Rendering of SOS command output in dotnet-dump's formats (column widths, hex case,
// thousands separators), so people's eyes and scripts keep working.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"
#include "core/elf/core_file.h"
#include "core/sos/engine.h"

namespace clrdiag::sos {

// 1234567 → "1,234,567" (.NET's "N0").
std::string N0(uint64_t v);

// `clrthreads`: the thread store summary and one row per managed thread.
std::string FormatClrThreads(const dac::ThreadStore& ts, const elf::CoreFile& core);
// Its JSON form, as a JSON text.
std::string ClrThreadsJson(const dac::ThreadStore& ts, const elf::CoreFile& core);

struct DumpHeapOptions {
  bool stat = false;
  bool short_ = false;
  std::string type;  // substring of the type name
  uint64_t mt = 0;   // 0: any
  uint64_t min = 0;
  uint64_t max = 0;   // 0: no limit
  bool json = false;  // the JSON form (core/sos/json.h)
};

// `dumpheap`: walks the heap, prints matching objects (unless -stat) then statistics.
absl::Status RunDumpHeap(dac::DacProcess& dac, const DumpHeapOptions& o, OutputSink& out,
                         const CancellationToken& cancel);

}  // namespace clrdiag::sos
