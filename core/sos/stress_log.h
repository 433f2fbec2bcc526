// The runtime's in-memory stress log (DOTNET_StressLog=1) read from a dump: the log header, the
// per-thread circular buffers of chunks, and their messages merged newest first, the order
// dotnet-dump's dumplog and histinit use. The layout is the 64-bit one shared by .NET 8, 9 and
// 10 (StressLog, ThreadStressLog, StressLogChunk with 32 KiB buffers, 16-byte StressMsg headers
// with large format offsets resolved through the log's module table).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/dac_process.h"

namespace clrdiag::sos {

// StressLog::theLog's fields that dumplog prints.
struct StressLogHeader {
  uint64_t address = 0;        // of StressLog::theLog
  uint64_t module_offset = 0;  // base of the module whose format strings the log holds
  uint32_t facilities_to_log = 0;
  uint32_t level_to_log = 0;
  uint32_t max_size_per_thread = 0;
  uint32_t max_size_total = 0;
  int32_t total_chunks = 0;
  int threads_with_logs = 0;
  uint64_t tick_frequency = 0;   // ticks per second
  uint64_t start_timestamp = 0;  // ticks
  uint64_t start_filetime = 0;   // 100 ns units since 1601 (UTC)
  uint64_t last_timestamp = 0;   // ticks of the newest message
  double elapsed_seconds() const;
  uint64_t end_filetime() const;  // start_filetime + elapsed
};

// One message as the dump holds it.
struct StressLogMessage {
  uint32_t thread_id = 0;    // OS thread id (low 32 bits), or a task switch's new id
  double seconds = 0;        // since the log started
  uint32_t facility = 0;     // LF_* bits
  bool format_read = false;  // false: the format string's memory is missing from the dump
  std::string format;        // at most 256 bytes, as the reference reads it
  std::vector<uint64_t> args;
};

// What a walk reports, in order: each message (newest first, across threads), each thread's
// end (after its oldest message), and a progress tick every 64 counted messages.
struct StressLogVisitor {
  std::function<void(const StressLogMessage&)> message;
  std::function<void(uint32_t thread_id)> thread_end;
  std::function<void(bool newline)> progress;  // a dot; newline every 64 dots
};

// "StressLog TaskSwitch Marker\n" and the GC history formats (the runtime's gcmsg.inl).
inline constexpr const char* kTaskSwitchFormat = "StressLog TaskSwitch Marker\n";
inline constexpr const char* kGcStartFormat =
    "{ =========== BEGINGC %d, (requested generation = %lu, collect_classes = %lu) ==========\n";
inline constexpr const char* kGcRootFormat = "    GC Root %p RELOCATED %p -> %p  MT = %pT\n";
inline constexpr const char* kGcRootPromoteFormat =
    "    IGCHeap::Promote: Promote GC Root *%p = %p MT = %pT\n";
inline constexpr const char* kGcPlugMoveFormat =
    "GC_HEAP RELOCATING Objects in heap within range [%p %p) by -0x%x bytes\n";

// The thread logs read from the dump, ready to walk.
class StressLog {
 public:
  // Reads the header at `address`. NotFound if the log has no thread logs (the stress log is
  // off); other errors say which read failed.
  static absl::StatusOr<StressLog> Read(dac::DacProcess& dac, uint64_t address);

  const StressLogHeader& header() const { return header_; }
  // Merges the thread logs newest first. Returns the number of counted messages (those with a
  // format), or Cancelled. `last_format_read` tells whether the last format string was read.
  absl::StatusOr<uint64_t> Walk(dac::DacProcess& dac, const StressLogVisitor& visitor,
                                const CancellationToken& cancel, bool* last_format_read);

  struct Chunk {
    uint64_t address = 0;
    std::vector<uint8_t> buf;
  };
  struct ThreadLog {
    uint32_t thread_id = 0;
    bool write_has_wrapped = false;
    bool read_has_wrapped = false;
    std::vector<Chunk> chunks;  // from chunkListHead along next; the last is the tail
    size_t write_chunk = 0;     // index of curWriteChunk
    size_t cur_offset = 0;      // curPtr's offset in it (adjusted as the reader does)
    size_t read_chunk = 0;
    size_t read_offset = 0;
    bool reading = true;     // readPtr != NULL
    bool past_tail = false;  // readPtr ran past the tail chunk (no message there)
  };

 private:
  StressLogHeader header_;
  std::vector<ThreadLog> threads_;
  struct Module {
    uint64_t base = 0, size = 0;
  };
  std::vector<Module> modules_;
  uint64_t FormatAddress(uint64_t offset) const;
};

// "`GC`GCROOTS`": the names of the facility bits, as the reference writes them.
std::string FacilityName(uint32_t facility);

// Formats a message's text as the reference's dumplog does (printf of the format with the
// message's arguments; %s read from the dump; %pT, %pM, %pV, %pK annotated), without the
// thread/time/facility prefix and the final newline.
std::string FormatStressMessage(dac::DacProcess& dac, const StressLogMessage& m);

// HH:MM:SS of a FILETIME (UTC).
std::string FileTimeClock(uint64_t filetime);

}  // namespace clrdiag::sos
