#include "core/dac/thread_context.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace clrdiag::dac {
namespace {

template <typename T>
void Put(std::span<uint8_t> out, size_t offset, T value) {
  if (offset + sizeof(T) <= out.size()) std::memcpy(out.data() + offset, &value, sizeof(T));
}

}  // namespace

absl::Status FillAmd64Context(const elf::CoreThread& thread, std::span<uint8_t> out) {
  namespace c = amd64_context;
  if (out.size() < c::kRip + 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("context buffer of ", out.size(), " bytes is too small for AMD64"));
  }
  std::fill(out.begin(), out.end(), 0);
  const elf::X64Registers& r = thread.regs;
  uint32_t flags = kContextControl | kContextInteger | kContextSegments;
  Put<uint16_t>(out, c::kSegCs, static_cast<uint16_t>(r.cs));
  Put<uint16_t>(out, c::kSegDs, static_cast<uint16_t>(r.ds));
  Put<uint16_t>(out, c::kSegEs, static_cast<uint16_t>(r.es));
  Put<uint16_t>(out, c::kSegFs, static_cast<uint16_t>(r.fs));
  Put<uint16_t>(out, c::kSegGs, static_cast<uint16_t>(r.gs));
  Put<uint16_t>(out, c::kSegSs, static_cast<uint16_t>(r.ss));
  Put<uint32_t>(out, c::kEFlags, static_cast<uint32_t>(r.eflags));
  Put(out, c::kRax, r.rax);
  Put(out, c::kRcx, r.rcx);
  Put(out, c::kRdx, r.rdx);
  Put(out, c::kRbx, r.rbx);
  Put(out, c::kRsp, r.rsp);
  Put(out, c::kRbp, r.rbp);
  Put(out, c::kRsi, r.rsi);
  Put(out, c::kRdi, r.rdi);
  Put(out, c::kR8, r.r8);
  Put(out, c::kR9, r.r9);
  Put(out, c::kR10, r.r10);
  Put(out, c::kR11, r.r11);
  Put(out, c::kR12, r.r12);
  Put(out, c::kR13, r.r13);
  Put(out, c::kR14, r.r14);
  Put(out, c::kR15, r.r15);
  Put(out, c::kRip, r.rip);
  // NT_FPREGSET on x86-64 is the 512-byte fxsave image, which is exactly XMM_SAVE_AREA32.
  if (thread.fpregs.size() >= c::kFltSaveSize && out.size() >= c::kFltSave + c::kFltSaveSize) {
    std::memcpy(out.data() + c::kFltSave, thread.fpregs.data(), c::kFltSaveSize);
    uint32_t mxcsr = 0;
    std::memcpy(&mxcsr, thread.fpregs.data() + 24, sizeof(mxcsr));  // fxsave.mxcsr
    Put(out, c::kMxCsr, mxcsr);
    flags |= kContextFloatingPoint;
  }
  Put(out, c::kContextFlags, flags);
  return absl::OkStatus();
}

}  // namespace clrdiag::dac
