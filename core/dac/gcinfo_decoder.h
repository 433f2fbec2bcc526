// A decoder of the x64 GC info the CoreCLR JIT writes beside each method's code (the runtime's
// "GcInfo" bit stream), and the text SOS's `gcinfo` prints for it.
//
// Pure: bytes in, a decoded structure (or text) out; no DAC, no target memory. Versions: 3 is
// the format of .NET 8 and 9 (and older), 4 that of .NET 10 (no return kind in the header, no
// PSPSym, safe points recorded at the return address instead of one byte before it).
//
// Use:
//   auto info = gcinfo::Decode(bytes, gcinfo::VersionForRuntime(10));
//   std::string text = gcinfo::FormatLikeSos(*info);   // "Prolog size: ..." to the end
// `bytes` should extend past the end of the blob (SOS reads 40 + 2 x code size bytes); bits
// read past the end of `bytes` are zero, as in SOS's zero-filled buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::dac::gcinfo {

// The GC info format version SOS assumes for a runtime's major version.
inline uint32_t VersionForRuntime(int major) { return major >= 10 ? 4 : 3; }

enum class SlotBase : uint8_t { kCallerSp = 0, kSp = 1, kFrameReg = 2 };
constexpr uint8_t kSlotInterior = 1;
constexpr uint8_t kSlotPinned = 2;
constexpr uint32_t kNoRegister = 0xffffffff;

// One GC slot: a register (x64 numbering: rax rcx rdx rbx rsp rbp rsi rdi r8..r15) or a stack
// location (base + offset). Tracked slots come first (registers, then stack), then untracked.
struct Slot {
  bool is_register = false;
  uint32_t reg = 0;
  SlotBase base = SlotBase::kSp;
  int32_t offset = 0;
  uint8_t flags = 0;  // kSlotInterior | kSlotPinned
  bool untracked = false;
};

struct Header {
  bool slim = false;
  uint32_t flags = 0;        // GcInfoHeaderFlags (10 bits); slim: only 0x40 (frame pointer rbp)
  int32_t return_kind = -1;  // version 3 only
  uint32_t code_length = 0;
  uint32_t prolog_size = 0;  // the start of the GS cookie's / generic context's valid range
  uint32_t valid_range_end = 0;
  std::optional<int32_t> gs_cookie;         // caller.sp relative
  std::optional<int32_t> psp_sym;           // version 3
  std::optional<int32_t> generics_context;  // caller.sp relative
  int generics_kind = 0;                    // 1 MethodTable, 2 MethodDesc, 3 this
  uint32_t frame_register = kNoRegister;    // the stack base register
  std::optional<uint32_t> edit_and_continue_area;
  std::optional<int32_t> reverse_pinvoke_frame;
  uint32_t stack_parameter_area = 0;
  bool varargs() const { return flags & 0x1; }
  bool wants_report_only_leaf() const { return flags & 0x80; }
};

struct InterruptibleRange {
  uint32_t start = 0, stop = 0;  // [start, stop)
};

struct GcInfo {
  uint32_t version = 4;
  Header header;
  // Safe points as encoded: version 3 records the offset one byte before the return address.
  std::vector<uint32_t> safe_points;
  std::vector<InterruptibleRange> interruptible_ranges;
  std::vector<Slot> slots;
  uint32_t num_registers = 0, num_tracked = 0;
  // Where the live-state data starts (bit position), and the blob itself, for LiveSlotsAt.
  size_t live_state_pos = 0;
  std::vector<uint8_t> bytes;
};

absl::StatusOr<GcInfo> Decode(std::span<const uint8_t> bytes, uint32_t version);

// The tracked slots (indices into slots) the runtime reports at `offset`, in its order:
// `active` for the leaf frame (an interruptible offset; other offsets report nothing), else as
// a caller frame stopped at a safe point. Untracked slots are not included.
std::vector<uint32_t> LiveSlotsAt(const GcInfo& info, uint32_t offset, bool active);

// One change in SOS's listing: an interruptibility change, a safe point, or a slot becoming
// live or dead at `offset` (untracked slots: offset 0xfffffffe, all live).
struct Event {
  enum Kind { kInterruptible, kNotInterruptible, kSafePoint, kLive, kDead } kind;
  uint32_t offset = 0;
  uint32_t slot = 0;  // kLive / kDead
};
struct Listing {
  std::vector<Event> events;
  std::string error;  // "" or SOS's message, e.g. "reported frame register"
};
// The events in SOS's order (its GcInfoDumper walks every offset 0..code length).
Listing ListChanges(const GcInfo& info);

// x64 register name, lower case ("rax").
const char* RegisterName(uint32_t reg);
// A slot as SOS prints it after +/-: "rbx", "rbp-10", "sp+20", "caller.sp+8", then "(pinned)"
// / "(interior)".
std::string SlotText(const GcInfo& info, const Slot& slot);

// SOS's text from "Prolog size:" (or "GS cookie:") to the end, "\n" ended lines.
std::string FormatLikeSos(const GcInfo& info);

}  // namespace clrdiag::dac::gcinfo
