#include "core/dac/gcinfo_decoder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::dac::gcinfo {
namespace {

// x64 encoding parameters (bases of the variable-length numbers).
constexpr int kCodeLengthBase = 8;
constexpr int kPrologBase = 5, kEpilogBase = 3;
constexpr int kStackSlotHeaderBase = 6;  // GS cookie, PSPSym, generics context, reverse P/Invoke
constexpr int kStackBaseRegisterBase = 3, kStackAreaBase = 3, kEncAreaBase = 4;
constexpr int kNumSafePointsBase = 2, kNumRangesBase = 1;
constexpr int kRangeDelta1Base = 6, kRangeDelta2Base = 6;
constexpr int kNumRegistersBase = 2, kNumStackSlotsBase = 2, kNumUntrackedBase = 1;
constexpr int kRegisterBase = 3, kRegisterDeltaBase = 2;
constexpr int kStackSlotBase = 6, kStackSlotDeltaBase = 4;
constexpr int kPointerSizeBase = 3;
constexpr int kRleRunBase = 2, kRleSkipBase = 4;
constexpr uint32_t kChunkOffsets = 64, kChunkOffsetsLog2 = 6;
constexpr uint32_t kUntrackedOffset = 0xfffffffe;

// Least significant bit first; past the end reads zeros.
class BitReader {
 public:
  explicit BitReader(std::span<const uint8_t> b) : bytes_(b) {}
  size_t pos() const { return pos_; }
  void set_pos(size_t p) { pos_ = p; }
  void Skip(size_t n) { pos_ += n; }
  uint64_t Read(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      size_t byte = (pos_ + i) / 8;
      if (byte < bytes_.size() && (bytes_[byte] >> ((pos_ + i) % 8)) & 1) v |= uint64_t{1} << i;
    }
    pos_ += n;
    return v;
  }
  bool Bit() { return Read(1) != 0; }
  uint64_t VarUnsigned(int base) {
    uint64_t v = 0;
    for (int shift = 0;; shift += base) {
      uint64_t chunk = Read(base + 1);
      v |= (chunk & ((uint64_t{1} << base) - 1)) << shift;
      if (!(chunk & (uint64_t{1} << base)) || shift > 64) return v;
    }
  }
  int64_t VarSigned(int base) {
    uint64_t v = 0;
    for (int shift = 0;; shift += base) {
      uint64_t chunk = Read(base + 1);
      v |= (chunk & ((uint64_t{1} << base) - 1)) << shift;
      if (!(chunk & (uint64_t{1} << base)) || shift > 64) {
        int bits = 64 - (shift + base);
        if (bits <= 0) return static_cast<int64_t>(v);
        return static_cast<int64_t>(v << bits) >> bits;
      }
    }
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

// Bits per safe-point offset: ceil(log2(code length)) as the runtime computes it.
uint32_t CeilLog2(uint32_t x) {
  if (x == 0) return 0;
  uint64_t y = (uint64_t{x} << 1) - 1;
  uint32_t r = 0;
  while (y >>= 1) ++r;
  return r;
}

size_t Align8(size_t p) { return (p + 7) & ~size_t{7}; }

void ReadSlotTable(BitReader& r, GcInfo& info) {
  uint32_t regs = r.Bit() ? static_cast<uint32_t>(r.VarUnsigned(kNumRegistersBase)) : 0;
  uint32_t stack = 0, untracked = 0;
  if (r.Bit()) {
    stack = static_cast<uint32_t>(r.VarUnsigned(kNumStackSlotsBase));
    untracked = static_cast<uint32_t>(r.VarUnsigned(kNumUntrackedBase));
  }
  info.num_registers = regs;
  info.num_tracked = regs + stack;
  uint8_t flags = 0;
  uint32_t reg = 0;
  for (uint32_t i = 0; i < regs; ++i) {
    Slot s;
    s.is_register = true;
    if (i == 0 || flags != 0) {
      reg = static_cast<uint32_t>(r.VarUnsigned(kRegisterBase));
      flags = static_cast<uint8_t>(r.Read(2));
    } else {
      reg += static_cast<uint32_t>(r.VarUnsigned(kRegisterDeltaBase)) + 1;
    }
    s.reg = reg;
    s.flags = flags;
    info.slots.push_back(s);
  }
  // Stack slots, then untracked ones: each group starts with a full entry; an entry after one
  // without flags is a delta from it.
  for (int group = 0; group < 2; ++group) {
    uint32_t n = group == 0 ? stack : untracked;
    int32_t norm = 0;
    flags = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Slot s;
      s.untracked = group == 1;
      s.base = static_cast<SlotBase>(r.Read(2));
      if (i == 0 || flags != 0) {
        norm = static_cast<int32_t>(r.VarSigned(kStackSlotBase));
        flags = static_cast<uint8_t>(r.Read(2));
      } else {
        norm += static_cast<int32_t>(r.VarUnsigned(kStackSlotDeltaBase));
      }
      s.offset = norm * 8;
      s.flags = flags;
      info.slots.push_back(s);
    }
  }
}

void ReadRle(BitReader& r, uint32_t num_slots, std::vector<uint32_t>* out) {
  bool skip = !r.Bit();
  bool report = true;
  uint32_t read = static_cast<uint32_t>(r.VarUnsigned(skip ? kRleSkipBase : kRleRunBase));
  skip = !skip;
  while (read < num_slots) {
    uint32_t cnt = static_cast<uint32_t>(r.VarUnsigned(skip ? kRleSkipBase : kRleRunBase)) + 1;
    if (report) {
      for (uint32_t s = read; s < read + cnt && s < num_slots; ++s) out->push_back(s);
    }
    read += cnt;
    skip = !skip;
    report = !report;
  }
}

}  // namespace

absl::StatusOr<GcInfo> Decode(std::span<const uint8_t> bytes, uint32_t version) {
  if (bytes.empty()) return absl::InvalidArgumentError("no GC info bytes");
  if (version < 3 || version > 4) {
    return absl::UnimplementedError(absl::StrCat("GC info version ", version, " is not supported"));
  }
  GcInfo info;
  info.version = version;
  info.bytes.assign(bytes.begin(), bytes.end());
  BitReader r(bytes);
  Header& h = info.header;
  h.slim = !r.Bit();
  if (h.slim) {
    if (r.Bit()) {
      h.flags = 0x40;
      h.frame_register = 5;  // rbp
    }
    if (version < 4) h.return_kind = static_cast<int32_t>(r.Read(2));
    h.code_length = static_cast<uint32_t>(r.VarUnsigned(kCodeLengthBase));
  } else {
    h.flags = static_cast<uint32_t>(r.Read(10));
    if (version < 4) h.return_kind = static_cast<int32_t>(r.Read(4));
    h.code_length = static_cast<uint32_t>(r.VarUnsigned(kCodeLengthBase));
    const bool gs = h.flags & 0x4;
    const uint32_t generics = (h.flags >> 4) & 3;
    if (gs) {
      h.prolog_size = static_cast<uint32_t>(r.VarUnsigned(kPrologBase)) + 1;
      uint32_t epilog = static_cast<uint32_t>(r.VarUnsigned(kEpilogBase));
      h.valid_range_end = h.code_length - epilog;
    } else if (generics != 0) {
      h.prolog_size = static_cast<uint32_t>(r.VarUnsigned(kPrologBase)) + 1;
      h.valid_range_end = h.prolog_size + 1;
    }
    if (gs) h.gs_cookie = static_cast<int32_t>(r.VarSigned(kStackSlotHeaderBase) * 8);
    if (version < 4 && (h.flags & 0x8)) {
      h.psp_sym = static_cast<int32_t>(r.VarSigned(kStackSlotHeaderBase) * 8);
    }
    if (generics != 0) {
      h.generics_context = static_cast<int32_t>(r.VarSigned(kStackSlotHeaderBase) * 8);
      h.generics_kind = static_cast<int>(generics);
    }
    if (h.flags & 0x40) {
      h.frame_register = static_cast<uint32_t>(r.VarUnsigned(kStackBaseRegisterBase)) ^ 5;
    }
    if (h.flags & 0x100)
      h.edit_and_continue_area = static_cast<uint32_t>(r.VarUnsigned(kEncAreaBase));
    if (h.flags & 0x200) {
      h.reverse_pinvoke_frame = static_cast<int32_t>(r.VarSigned(kStackSlotHeaderBase) * 8);
    }
    h.stack_parameter_area = static_cast<uint32_t>(r.VarUnsigned(kStackAreaBase)) * 8;
  }
  if (h.code_length == 0) return absl::DataLossError("GC info with a code length of 0");
  if (h.code_length > (64u << 20)) {
    return absl::DataLossError(
        absl::StrCat("GC info code length ", h.code_length, " is implausible"));
  }
  uint32_t num_safe_points = static_cast<uint32_t>(r.VarUnsigned(kNumSafePointsBase));
  uint32_t num_ranges = h.slim ? 0 : static_cast<uint32_t>(r.VarUnsigned(kNumRangesBase));
  if (num_safe_points > h.code_length + 1 || num_ranges > h.code_length + 1) {
    return absl::DataLossError("GC info with more safe points or ranges than code bytes");
  }
  const uint32_t bits = CeilLog2(h.code_length);
  for (uint32_t i = 0; i < num_safe_points; ++i) {
    info.safe_points.push_back(static_cast<uint32_t>(r.Read(static_cast<int>(bits))));
  }
  uint32_t last_stop = 0;
  for (uint32_t i = 0; i < num_ranges; ++i) {
    uint32_t start = last_stop + static_cast<uint32_t>(r.VarUnsigned(kRangeDelta1Base));
    uint32_t stop = start + static_cast<uint32_t>(r.VarUnsigned(kRangeDelta2Base)) + 1;
    info.interruptible_ranges.push_back({start, stop});
    last_stop = stop;
  }
  ReadSlotTable(r, info);
  if (info.slots.size() > 100000) return absl::DataLossError("GC info with too many slots");
  info.live_state_pos = r.pos();
  return info;
}

std::vector<uint32_t> LiveSlotsAt(const GcInfo& info, uint32_t offset, bool active) {
  std::vector<uint32_t> live;
  const bool aborted =
      active && !std::any_of(info.interruptible_ranges.begin(), info.interruptible_ranges.end(),
                             [&](const InterruptibleRange& x) {
                               return offset >= x.start && offset < x.stop;
                             });
  // The runtime marks a non-interruptible leaf offset "execution aborted".
  const uint32_t num_sp = static_cast<uint32_t>(info.safe_points.size());
  uint32_t sp_index = num_sp;
  for (uint32_t i = 0; i < num_sp; ++i) {
    if (info.safe_points[i] == offset) {
      sp_index = i;
      break;
    }
    if (info.safe_points[i] > offset) break;
  }
  uint32_t pseudo = 0, interruptible_length = 0;
  bool in_range = false;
  if (!(sp_index < num_sp && !aborted)) {
    for (const InterruptibleRange& x : info.interruptible_ranges) {
      if (offset >= x.start && offset < x.stop) {
        in_range = true;
        pseudo = interruptible_length + offset - x.start;
      }
      interruptible_length += x.stop - x.start;
    }
    if (!in_range && aborted) return live;
  }
  const uint32_t num_slots = info.num_tracked;
  if (num_slots == 0) return live;
  BitReader r(info.bytes);
  r.set_pos(info.live_state_pos);
  uint32_t bits_per_offset = 0;
  if (num_sp > 0 && r.Bit())
    bits_per_offset = static_cast<uint32_t>(r.VarUnsigned(kPointerSizeBase)) + 1;
  if (!aborted && sp_index != num_sp) {
    if (bits_per_offset) {
      size_t table = r.pos();
      r.Skip(size_t{sp_index} * bits_per_offset);
      size_t state = r.Read(static_cast<int>(bits_per_offset));
      r.set_pos(Align8(table + size_t{num_sp} * bits_per_offset) + state);
      if (r.Bit()) {
        ReadRle(r, num_slots, &live);
        return live;
      }
    } else {
      r.Skip(size_t{sp_index} * num_slots);
    }
    for (uint32_t s = 0; s < num_slots; ++s) {
      if (r.Bit()) live.push_back(s);
    }
    return live;
  }
  r.Skip(size_t{num_sp} * num_slots);
  if (info.interruptible_ranges.empty()) return live;

  const uint32_t num_chunks = (interruptible_length + kChunkOffsets - 1) / kChunkOffsets;
  const uint32_t break_chunk = pseudo / kChunkOffsets;
  const uint32_t bits_per_pointer = static_cast<uint32_t>(r.VarUnsigned(kPointerSizeBase));
  if (bits_per_pointer == 0 || bits_per_pointer > 64) return live;
  const size_t pointer_table = r.pos();
  uint32_t chunk = break_chunk;
  uint64_t chunk_pointer = 0;
  for (;;) {
    r.set_pos(pointer_table + size_t{chunk} * bits_per_pointer);
    chunk_pointer = r.Read(static_cast<int>(bits_per_pointer));
    if (chunk_pointer) break;
    if (chunk-- == 0) return live;
  }
  r.set_pos(Align8(pointer_table + size_t{num_chunks} * bits_per_pointer) + chunk_pointer - 1);
  // Which slots could be live in the chunk (a bit vector, or run lengths), then their states at
  // the chunk's start, then each one's transitions.
  BitReader could(r);
  uint32_t num_could = 0;
  if (r.Bit()) {
    std::vector<uint32_t> tmp;
    ReadRle(r, num_slots, &tmp);
    num_could = static_cast<uint32_t>(tmp.size());
  } else {
    for (uint32_t i = 0; i < num_slots; ++i) num_could += r.Bit() ? 1 : 0;
  }
  BitReader final_state(r);
  r.Skip(num_could);
  uint32_t slot = 0;
  const bool simple = !could.Bit();
  bool skip_first = false;
  uint32_t cnt = 0;
  if (!simple) {
    skip_first = !could.Bit();
    slot = static_cast<uint32_t>(-1);
  }
  for (uint32_t i = 0; i < num_could; ++i) {
    if (simple) {
      while (!could.Bit()) {
        ++slot;
        if (slot > num_slots) return live;  // corrupt: no set bit
      }
    } else if (cnt > 0) {
      --cnt;
    } else if (skip_first) {
      slot += static_cast<uint32_t>(could.VarUnsigned(kRleSkipBase)) + 1;
      cnt = static_cast<uint32_t>(could.VarUnsigned(kRleRunBase));
    } else {
      slot += static_cast<uint32_t>(could.VarUnsigned(kRleRunBase)) + 1;
      cnt = static_cast<uint32_t>(could.VarUnsigned(kRleSkipBase));
    }
    bool is_live = final_state.Bit();
    if (chunk == break_chunk) {
      const uint32_t delta = pseudo % kChunkOffsets;
      while (r.Bit()) {
        if (r.Read(kChunkOffsetsLog2) > delta) is_live = !is_live;
      }
    }
    if (is_live && slot < num_slots) live.push_back(slot);
    ++slot;
  }
  return live;
}

Listing ListChanges(const GcInfo& info) {
  Listing out;
  const Header& h = info.header;
  // A reported location: registers by number; stack slots by base and offset (the dumper
  // tells them apart by address), with their interior/pinned flags.
  auto same = [&](uint32_t a, uint32_t b) {
    const Slot& x = info.slots[a];
    const Slot& y = info.slots[b];
    if (x.flags != y.flags || x.is_register != y.is_register) return false;
    if (x.is_register) return x.reg == y.reg;
    return x.base == y.base && x.offset == y.offset;
  };
  // What the dumper checks before printing a slot.
  auto check = [&](uint32_t s) -> bool {
    const Slot& x = info.slots[s];
    if (x.is_register) {
      if (x.reg == 4 || x.reg == h.frame_register) {
        out.error = "reported frame register";
        return false;
      }
      if (x.reg > 15) {
        out.error = "reported invalid pointer";
        return false;
      }
    } else if (x.base == SlotBase::kFrameReg && (h.frame_register > 15)) {
      out.error = "reported invalid pointer";
      return false;
    }
    return true;
  };
  // Differences between two reported lists, each in report order; the dumper keeps records
  // newest first, so both are walked backwards.
  auto diff = [&](uint32_t offset, const std::vector<uint32_t>& before,
                  const std::vector<uint32_t>& now) -> bool {
    for (size_t i = before.size(); i-- > 0;) {
      bool kept =
          std::any_of(now.begin(), now.end(), [&](uint32_t n) { return same(n, before[i]); });
      if (kept) continue;
      if (!check(before[i])) return false;
      out.events.push_back({Event::kDead, offset, before[i]});
    }
    for (size_t i = now.size(); i-- > 0;) {
      bool kept =
          std::any_of(before.begin(), before.end(), [&](uint32_t b) { return same(b, now[i]); });
      if (kept) continue;
      if (!check(now[i])) return false;
      out.events.push_back({Event::kLive, offset, now[i]});
    }
    return true;
  };
  std::vector<uint32_t> untracked;
  for (uint32_t s = info.num_tracked; s < info.slots.size(); ++s) untracked.push_back(s);
  if (!diff(kUntrackedOffset, {}, untracked)) return out;

  std::vector<uint32_t> last;
  bool prev_interruptible = false;
  for (uint32_t offset = 0; offset <= h.code_length; ++offset) {
    bool interruptible = std::any_of(
        info.interruptible_ranges.begin(), info.interruptible_ranges.end(),
        [&](const InterruptibleRange& x) { return offset >= x.start && offset < x.stop; });
    if (interruptible != prev_interruptible) {
      out.events.push_back(
          {interruptible ? Event::kInterruptible : Event::kNotInterruptible, offset, 0});
      prev_interruptible = interruptible;
    }
    bool active = true;
    if (std::find(info.safe_points.begin(), info.safe_points.end(), offset) !=
        info.safe_points.end()) {
      out.events.push_back({Event::kSafePoint, info.version < 4 ? offset + 1 : offset, 0});
      active = false;
    }
    std::vector<uint32_t> now = LiveSlotsAt(info, offset, active);
    if (!diff(offset, last, now)) return out;
    last = std::move(now);
  }
  return out;
}

const char* RegisterName(uint32_t reg) {
  static const char* const kNames[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                       "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  return reg < 16 ? kNames[reg] : "???";
}

std::string SlotText(const GcInfo& info, const Slot& slot) {
  std::string text;
  if (slot.is_register) {
    text = RegisterName(slot.reg);
  } else {
    // The dumper guesses the base from the address and then corrects the two impossible
    // combinations: a negative offset from sp is the caller's sp, a positive one from the
    // caller's sp is sp.
    SlotBase base = slot.base;
    int64_t offset = slot.offset;
    char sign = '+';
    if (offset < 0) {
      offset = -offset;
      sign = '-';
      if (base == SlotBase::kSp) base = SlotBase::kCallerSp;
    } else if (base == SlotBase::kCallerSp) {
      base = SlotBase::kSp;
    }
    const char* name = base == SlotBase::kCallerSp ? "caller.sp"
                       : base == SlotBase::kSp     ? "sp"
                                                   : RegisterName(info.header.frame_register);
    text = absl::StrFormat("%s%c%x", name, sign, offset);
  }
  if (slot.flags & kSlotPinned) text += "(pinned)";
  if (slot.flags & kSlotInterior) text += "(interior)";
  return text;
}

namespace {

std::string SignedHex(int32_t v) {
  int64_t x = v;
  return absl::StrFormat("%c%x", x < 0 ? '-' : '+', x < 0 ? -x : x);
}

const char* ReturnKindName(int32_t k) {
  // Two-register returns: the second register's kind in bits 2-3.
  switch (k) {
    case 0:
      return "Scalar";
    case 1:
      return "Object";
    case 2:
      return "ByRef";
    case 3:
      return "UNSET";
    case 4:
      return "{Scalar, Object}";
    case 8:
      return "{Scalar, ByRef}";
    case 5:
      return "{Object, Object}";
    case 9:
      return "{Object, ByRef}";
    case 6:
      return "{ByRef, Object}";
    case 10:
      return "{ByRef, ByRef}";
    default:
      return "!Impossible!";
  }
}

}  // namespace

std::string FormatLikeSos(const GcInfo& info) {
  const Header& h = info.header;
  std::string o;
  if (h.generics_context || !h.gs_cookie)
    absl::StrAppendFormat(&o, "Prolog size: %d\n", h.prolog_size);
  o += "GS cookie: ";
  if (!h.gs_cookie) {
    o += "<none>\n";
  } else {
    absl::StrAppend(&o, "caller.sp", SignedHex(*h.gs_cookie), "\n");
    absl::StrAppendFormat(&o, "GS cookie valid range: [%x;%x)\n", h.prolog_size, h.valid_range_end);
  }
  o += "PSPSym: ";
  o += h.psp_sym ? absl::StrCat("initial.sp", SignedHex(*h.psp_sym), "\n") : "<none>\n";
  o += "Generics inst context: ";
  o += h.generics_context ? absl::StrCat("caller.sp", SignedHex(*h.generics_context), "\n")
                          : "<none>\n";
  o += "PSP slot: ";
  o += h.psp_sym ? absl::StrCat("caller.sp", SignedHex(*h.psp_sym), "\n") : "<none>\n";
  o += "GenericInst slot: ";
  if (!h.generics_context) {
    o += "<none>\n";
  } else {
    absl::StrAppend(&o, "caller.sp", SignedHex(*h.generics_context), " ",
                    h.generics_kind == 2   ? "(GENERIC_PARAM_CONTEXT_METHODDESC)\n"
                    : h.generics_kind == 1 ? "(GENERIC_PARAM_CONTEXT_METHODHANDLE)\n"
                                           : "(GENERIC_PARAM_CONTEXT_THIS)\n");
  }
  absl::StrAppendFormat(&o, "Varargs: %u\n", h.varargs() ? 1 : 0);
  absl::StrAppendFormat(
      &o, "Frame pointer: %s\n",
      h.frame_register == kNoRegister ? "<none>" : RegisterName(h.frame_register));
  absl::StrAppendFormat(&o, "Wants Report Only Leaf: %u\n", h.wants_report_only_leaf() ? 1 : 0);
  absl::StrAppendFormat(&o, "Size of parameter area: %x\n", h.stack_parameter_area);
  if (info.version < 4)
    absl::StrAppendFormat(&o, "Return Kind: %s\n", ReturnKindName(h.return_kind));
  absl::StrAppendFormat(&o, "Code size: %x\n", h.code_length);

  // SOS's printer: a line per offset, untracked slots first; deaths are not shown once a safe
  // point has been seen, until the next interruptibility change.
  Listing listing = ListChanges(info);
  uint32_t last_offset = 0xffffffff;
  bool printed = false, safe_point = false;
  for (const Event& e : listing.events) {
    switch (e.kind) {
      case Event::kInterruptible:
      case Event::kNotInterruptible:
        if (printed) {
          o += "\n";
          printed = false;
          safe_point = false;
        }
        absl::StrAppendFormat(&o, "%08x%s interruptible\n", e.offset,
                              e.kind == Event::kInterruptible ? "" : " not");
        last_offset = 0xffffffff;
        break;
      case Event::kSafePoint:
        if (printed) o += "\n";
        absl::StrAppendFormat(&o, "%08x is a safepoint: ", e.offset);
        last_offset = e.offset;
        printed = true;
        safe_point = true;
        break;
      case Event::kLive:
      case Event::kDead: {
        if (safe_point && e.kind == Event::kDead) break;
        if (last_offset != e.offset) {
          if (printed) o += "\n";
          if (e.offset == kUntrackedOffset && !printed) {
            o += "Untracked:";
          } else {
            absl::StrAppendFormat(&o, "%08x", e.offset);
          }
          last_offset = e.offset;
        }
        absl::StrAppend(&o, " ", e.kind == Event::kLive ? "+" : "-",
                        SlotText(info, info.slots[e.slot]));
        printed = true;
        break;
      }
    }
  }
  if (printed) o += "\n";
  if (!listing.error.empty()) absl::StrAppend(&o, listing.error, "\n");
  return o;
}

}  // namespace clrdiag::dac::gcinfo
