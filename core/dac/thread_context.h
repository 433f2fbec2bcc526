// Register state of a dumped thread in the layout the DAC expects from
// ICLRDataTarget::GetThreadContext: the Windows AMD64 CONTEXT without its XSTATE tail
// (DT_CONTEXT, 0x4D0 bytes), whatever the host OS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

inline constexpr size_t kAmd64ContextSize = 0x4D0;

// CONTEXT_* flags for AMD64.
inline constexpr uint32_t kContextAmd64 = 0x100000;
inline constexpr uint32_t kContextControl = kContextAmd64 | 0x1;   // Rip, Rsp, SegCs/Ss, EFlags
inline constexpr uint32_t kContextInteger = kContextAmd64 | 0x2;   // Rax..R15 except Rsp
inline constexpr uint32_t kContextSegments = kContextAmd64 | 0x4;  // Ds, Es, Fs, Gs
inline constexpr uint32_t kContextFloatingPoint = kContextAmd64 | 0x8;  // MxCsr, FltSave
inline constexpr uint32_t kContextFull = kContextControl | kContextInteger | kContextFloatingPoint;

// Field offsets in the AMD64 CONTEXT.
namespace amd64_context {
inline constexpr size_t kContextFlags = 0x30, kMxCsr = 0x34, kSegCs = 0x38, kSegDs = 0x3A,
                        kSegEs = 0x3C, kSegFs = 0x3E, kSegGs = 0x40, kSegSs = 0x42, kEFlags = 0x44,
                        kRax = 0x78, kRcx = 0x80, kRdx = 0x88, kRbx = 0x90, kRsp = 0x98,
                        kRbp = 0xA0, kRsi = 0xA8, kRdi = 0xB0, kR8 = 0xB8, kR9 = 0xC0, kR10 = 0xC8,
                        kR11 = 0xD0, kR12 = 0xD8, kR13 = 0xE0, kR14 = 0xE8, kR15 = 0xF0,
                        kRip = 0xF8, kFltSave = 0x100, kFltSaveSize = 512;
}  // namespace amd64_context

// Writes `thread`'s registers into `out` (zero-filled first; at most kAmd64ContextSize bytes
// are written, the rest of a larger buffer is zeroed). ContextFlags says what was filled:
// control, integer and segment registers always, floating point (the fxsave image from
// NT_FPREGSET) when the core has it. InvalidArgument if `out` cannot hold the integer and
// control registers (up to Rip).
absl::Status FillAmd64Context(const elf::CoreThread& thread, std::span<uint8_t> out);

}  // namespace clrdiag::dac
