// Managed stack walks through the DAC (IXCLRDataTask / IXCLRDataStackWalk), the data behind
// SOS's clrstack: per frame the stack and instruction pointers, the runtime Frame (clr!Frame)
// the walk stands on if any, the method, its IL position (for source lines) and, on request,
// its arguments and locals as the DAC describes them.
//
// Walks run under the process-wide DacMutex() like every other DacProcess call; the COM objects
// of a walk (task, walk, frames, values) never outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dac/com.h"

namespace clrdiag::dac {

// A guard against a corrupt stack turning a walk into an endless loop.
inline constexpr size_t kMaxStackFrames = 100000;

struct StackWalkOptions {
  bool arguments = false;  // clrstack -p
  bool locals = false;     // clrstack -l
  size_t max_frames = 0;   // clrstack -c N: stop after N frames; 0 = all
};

// An argument or local of a managed frame (IXCLRDataValue).
struct FrameValue {
  enum class Location { kUnknown, kMemory, kRegister };
  std::string name;                        // "" when the DAC knows none (locals never have one)
  Location location = Location::kUnknown;  // known only when the value has exactly one
  uint64_t address = 0;                    // kMemory: where it lives
  bool has_data = false;                   // the DAC can produce the bytes
  bool read_failed = false;                // ... but reading them failed
  uint32_t size = 0;                       // bytes the DAC returned
  uint64_t value = 0;                      // those bytes (sizes 1, 2, 4, 8), zero-extended; else 0
};

struct StackFrame {
  // Stack pointer and instruction pointer of the walk's context at this frame. For a runtime
  // Frame, `sp` is the Frame's address (as SOS prints it).
  uint64_t sp = 0;
  uint64_t ip = 0;
  // The runtime Frame (clr!Frame) the walk stands on; 0 for a frame of managed code.
  uint64_t frame_address = 0;
  std::string frame_name;  // e.g. "InlinedCallFrame"; "Frame" when the DAC cannot name it
  // The frame's method: for managed code from the IP, for a runtime Frame from the Frame.
  uint64_t method_desc = 0;   // 0 if none
  std::string method_name;    // DAC's name (GetMethodDescName), "" if it failed
  uint64_t module = 0;        // Module* of the method, 0 if unknown
  uint32_t method_token = 0;  // mdMethodDef
  // Managed code: the IL offset the IP maps to (prolog as 0, epilog as the last IL offset),
  // with SOS's adjustment of return addresses (IP - 1 unless this is the first frame).
  bool has_il_offset = false;
  uint32_t il_offset = 0;
  // Filled by the caller from the method's symbols (see portable_pdb.h); empty if none.
  std::string source_file;
  uint32_t source_line = 0;
  // Managed code with StackWalkOptions::arguments/locals.
  bool values_read = false;     // false: the DAC gave no IXCLRDataFrame for this frame
  uint32_t argument_count = 0;  // as the frame reports it (GetNumArguments)
  std::vector<FrameValue> arguments;
  bool arguments_failed = false;  // an argument could not be read: it and the rest are missing
  uint32_t local_count = 0;       // GetNumLocalVariables
  std::vector<FrameValue> locals;
  bool locals_failed = false;
  // GetContext failed at this position (SOS: "GetFrameContext failed: <hr>"); nothing else
  // is valid then.
  HRESULT context_error = 0;

  bool is_runtime_frame() const { return frame_address != 0; }
};

struct ThreadStack {
  uint32_t os_thread_id = 0;
  // The runtime does not know the thread (GetTaskByOSThreadID failed): not a managed thread.
  bool not_managed = false;
  // Creating the walk failed (also set with not_managed): the HRESULT SOS prints.
  HRESULT start_error = 0;
  std::vector<StackFrame> frames;
  // Next() failed: the frames are incomplete.
  HRESULT walk_error = 0;
  bool truncated = false;  // stopped at kMaxStackFrames
};

}  // namespace clrdiag::dac
