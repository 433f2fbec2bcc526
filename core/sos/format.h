// Rendering of SOS command output in dotnet-dump's formats (column widths, hex case,
// thousands separators), so people's eyes and scripts keep working.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"
#include "core/elf/core_file.h"
#include "core/sos/engine.h"
#include "core/sos/json.h"

namespace clrdiag::sos {

// 1234567 → "1,234,567" (.NET's "N0").
std::string N0(uint64_t v);

// `clrthreads`: the thread store summary and one row per managed thread.
// `exceptions`, if given, holds each thread's Exception column text (after the
// "(Finalizer) "-style markers), in ts.threads order.
std::string FormatClrThreads(const dac::ThreadStore& ts, const elf::CoreFile& core,
                             const std::vector<std::string>& exceptions = {});
// Its JSON form, as a JSON text.
// `exceptions`, if given, holds each thread's "exception" value, in ts.threads order.
// The debugger's thread number of a managed thread (its index among the dump's threads), or -1
// when it has no OS thread in the dump.
int DebuggerThreadIndex(const dac::ManagedThread& t, const elf::CoreFile& core);

std::string ClrThreadsJson(const dac::ThreadStore& ts, const elf::CoreFile& core,
                           const std::vector<Json>& exceptions = {});

struct DumpHeapOptions {
  bool stat = false;
  bool short_ = false;
  std::string type;  // substring of the type name
  uint64_t mt = 0;   // 0: any
  uint64_t min = 0;
  uint64_t max = 0;   // 0: no limit
  bool json = false;  // the JSON form (core/sos/json.h)
  // Only objects reachable from the GC roots (-live), or only unreachable ones (-dead);
  // at most one of them (core/dac/gc_roots.h).
  bool live = false;
  bool dead = false;
  // -strings: statistics per string value (and size) instead of per type; only strings.
  bool strings = false;
  // -thinlock: the objects whose header holds a thin lock (owner thread, recursion) only.
  bool thinlock = false;
  bool bycount = false;  // -bycount: statistics ordered by count instead of total size
  int heap = -1;         // -heap N: only GC heap N's segments; -1: all
  uint64_t segment = 0;  // -segment: the segment with this address or containing it; 0: all
  // -gen: only objects of this generation (kGen0/kGen1/kGen2/kLarge/kPinned/kFrozen).
  std::optional<dac::SegmentKind> generation;
  // The memory range [range_start, range_end): only objects starting inside it.
  bool has_range = false;
  uint64_t range_start = 0;
  uint64_t range_end = UINT64_MAX;
  int runtime_major = 0;  // the runtime's major version (thin lock header layout); 0: unknown
};

// A string's value as -strings statistics show it (dumpheap, objsize): all of it when it is only
// letters and digits, else at most `max_len` characters with the unprintable ones as '.'.
std::string SanitizedStringValue(const std::u16string& s, size_t max_len);
// UTF-16 to UTF-8 (lone surrogates as U+FFFD), for JSON.
std::string Utf8Value(const std::u16string& s);

// -gen's value ("gen0".."gen2", "loh"/"large", "poh"/"pinned", "foh"/"frozen"), as the
// reference spells them, case-insensitive; nullopt if unknown.
std::optional<dac::SegmentKind> ParseGeneration(const std::string& text);

// Per-MethodTable totals of the whole heap, in first-seen order, with the type names: enough
// to answer `dumpheap -stat` (also with -type/-mt) without walking the heap again. ~100 bytes
// per distinct type.
struct HeapIndex {
  struct Type {
    uint64_t mt = 0;
    uint64_t count = 0;
    uint64_t size = 0;
  };
  std::vector<Type> types;  // first-seen order (ties in the statistics keep it)
  std::unordered_map<uint64_t, std::string> names;
  std::vector<std::string> warnings;
  // Free blocks of at least 0.5 MB directly followed by an object (not on the large object
  // heap), over the whole heap: dumpheap's fragmentation report.
  struct FragmentedBlock {
    uint64_t address = 0, size = 0, next = 0, next_mt = 0;
  };
  std::vector<FragmentedBlock> fragmentation;
};

// `dumpheap`: walks the heap, prints matching objects (unless -stat) then statistics. With
// `index`: a -stat without -min/-max/-live/-dead is answered from *index when it is set, and
// a complete walk without -live/-dead sets it.
absl::Status RunDumpHeap(dac::DacProcess& dac, const DumpHeapOptions& o, OutputSink& out,
                         const CancellationToken& cancel,
                         std::shared_ptr<HeapIndex>* index = nullptr);

}  // namespace clrdiag::sos
