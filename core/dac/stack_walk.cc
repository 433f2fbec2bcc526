// DacProcess::WalkStack: SOS's clrstack walk (strike.cpp ClrStackImpl) as data.
#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dac/dac_process.h"
#include "core/dac/thread_context.h"

namespace clrdiag::dac {
namespace {

// Longest argument name accepted (UTF-16 units), as SOS's mdNameLen.
constexpr ULONG32 kMaxValueName = 2048;
// Values and IL maps larger than these are not read (an argument is at most a struct).
constexpr ULONG32 kMaxValueBytes = 1u << 20;
constexpr ULONG32 kMaxIlMapEntries = 1u << 20;
// HRESULT_CODE of HRESULT_FROM_WIN32(ERROR_BUFFER_OVERFLOW): GetBytes' "buffer too small".
constexpr uint32_t kErrorBufferOverflow = 111;
// Control, integer and segment registers plus floating point: what SOS asks for.
constexpr ULONG32 kWalkContextFlags = kContextFull | kContextSegments;
// The largest CONTEXT the DAC may ask for (its PAL CONTEXT with an AVX-512 tail is ~3 KB).
constexpr ULONG32 kMaxContextSize = 64 * 1024;
// On AMD64 a return address is moved back by one byte to land in the call instruction.
constexpr uint64_t kIpAdjust = 1;

template <typename T>
ComPtr<T> AdoptAs(IUnknown* p) {
  return ComPtr<T>::Adopt(static_cast<T*>(p));
}

// The stack walk's current context, in a buffer as large as the DAC's own CONTEXT.
class ContextBuffer {
 public:
  HRESULT Read(IXCLRDataStackWalk* walk) {
    if (buf_.empty()) {
      ULONG32 need = 0;
      (void)walk->GetContext(kWalkContextFlags, 0, &need, nullptr);
      size_t size = std::max<size_t>(std::min(need, kMaxContextSize), kAmd64ContextSize);
      buf_.assign((size + 15) / 16, {});
    }
    ULONG32 size = 0;
    return walk->GetContext(kWalkContextFlags, static_cast<ULONG32>(buf_.size() * 16), &size,
                            reinterpret_cast<BYTE*>(buf_.data()));
  }
  uint64_t Get(size_t offset) const {
    uint64_t v = 0;
    std::memcpy(&v, reinterpret_cast<const uint8_t*>(buf_.data()) + offset, sizeof(v));
    return v;
  }

 private:
  struct alignas(16) Chunk {
    uint8_t b[16];
  };
  std::vector<Chunk> buf_;
};

// A name from a (count, buffer, needed) DAC call into one large buffer, as SOS asks for them
// (not every such call can size itself with a null buffer). nullopt if the call failed.
template <typename Call>
std::optional<std::string> FixedDacString(Call call) {
  std::vector<WCHAR> buf(kMaxValueName, u'\0');
  uint32_t need = 0;
  if (Failed(call(kMaxValueName - 1, buf.data(), &need))) return std::nullopt;
  return Utf16ToUtf8(std::u16string_view(buf.data()));
}

std::string MethodDescName(ISOSDacInterface* sos, uint64_t md) {
  return FixedDacString([&](uint32_t n, WCHAR* b, uint32_t* need) {
           return sos->GetMethodDescName(md, n, b, need);
         })
      .value_or("");
}

// The frame's value: name, location and bytes, the way SOS's ShowArgs/ShowLocals ask.
FrameValue ReadValue(IXCLRDataValue* v, const WCHAR* name) {
  FrameValue out;
  if (name) out.name = Utf16ToUtf8(std::u16string_view(name));
  ULONG32 count = 0, flags = 0;
  CLRDATA_ADDRESS where = 0;
  if (Succeeded(v->GetNumLocations(&count)) && count == 1 &&
      Succeeded(v->GetLocationByIndex(0, &flags, &where))) {
    out.location = flags == kClrDataVlocRegister ? FrameValue::Location::kRegister
                                                 : FrameValue::Location::kMemory;
    out.address = where;
  }
  ULONG32 size = 0;
  HRESULT hr = v->GetBytes(0, &size, nullptr);
  if ((static_cast<uint32_t>(hr) & 0xFFFF) != kErrorBufferOverflow || size > kMaxValueBytes) {
    return out;
  }
  out.has_data = true;
  std::vector<BYTE> bytes(size + 1);
  hr = v->GetBytes(size, &size, bytes.data());
  if (Failed(hr)) {
    out.read_failed = true;
    return out;
  }
  out.size = size;
  if (size == 1 || size == 2 || size == 4 || size == 8) std::memcpy(&out.value, bytes.data(), size);
  return out;
}

void ReadValues(IXCLRDataStackWalk* walk, const StackWalkOptions& o, StackFrame* f) {
  ComPtr<IXCLRDataFrame> frame;
  if (Failed(walk->GetFrame(frame.Put())) || !frame) return;
  f->values_read = true;
  std::vector<WCHAR> name(kMaxValueName);
  if (o.arguments) {
    ULONG32 n = 0;
    if (Failed(frame->GetNumArguments(&n))) {
      f->arguments_failed = true;
      return;
    }
    f->argument_count = n;
    for (ULONG32 i = 0; i < n; ++i) {
      ComPtr<IXCLRDataValue> v;
      std::fill(name.begin(), name.end(), u'\0');
      ULONG32 len = 0;
      if (Failed(frame->GetArgumentByIndex(i, v.Put(), kMaxValueName - 1, &len, name.data())) ||
          !v) {
        f->arguments_failed = true;
        return;
      }
      f->arguments.push_back(ReadValue(v.get(), name.data()));
    }
  }
  if (o.locals) {
    ULONG32 n = 0;
    if (Failed(frame->GetNumLocalVariables(&n))) {
      f->locals_failed = true;
      return;
    }
    f->local_count = n;
    for (ULONG32 i = 0; i < n; ++i) {
      ComPtr<IXCLRDataValue> v;
      std::fill(name.begin(), name.end(), u'\0');
      if (Failed(frame->GetLocalVariableByIndex(i, v.Put(), kMaxValueName - 1, nullptr,
                                                name.data())) ||
          !v) {
        f->locals_failed = true;
        return;
      }
      f->locals.push_back(ReadValue(v.get(), nullptr));  // SOS never prints local names
    }
  }
}

// The highest real IL offset of the method's IL-to-native map (for an IP in the epilog).
bool LastIlOffset(IXCLRDataMethodInstance* m, uint32_t* out) {
  ULONG32 need = 0;
  if (Failed(m->GetILAddressMap(0, &need, nullptr)) || need == 0 || need > kMaxIlMapEntries)
    return false;
  std::vector<CLRDATA_IL_ADDRESS_MAP> map(need);
  if (Failed(m->GetILAddressMap(need, &need, map.data()))) return false;
  uint32_t best = 0;
  for (size_t i = 0; i < std::min<size_t>(need, map.size()); ++i) {
    uint32_t il = map[i].ilOffset;
    if (il != kClrDataIlOffsetNoMapping && il != kClrDataIlOffsetProlog &&
        il != kClrDataIlOffsetEpilog && il > best) {
      best = il;
    }
  }
  *out = best;
  return true;
}

// The IL offset for `ip`, as SOS's ConvertNativeToIlOffset computes it for source lines.
void FindIlOffset(IXCLRDataProcess* process, uint64_t ip, bool adjust, StackFrame* f) {
  CLRDATA_ENUM handle = 0;
  if (process->StartEnumMethodInstancesByAddress(ip, nullptr, &handle) != kS_OK) return;
  IUnknown* raw = nullptr;
  HRESULT hr = process->EnumMethodInstanceByAddress(&handle, &raw);
  process->EndEnumMethodInstancesByAddress(handle);
  if (hr != kS_OK || !raw) return;
  auto method = AdoptAs<IXCLRDataMethodInstance>(raw);
  uint64_t at = ip;
  CLRDATA_ADDRESS start = 0;
  if (adjust && method->GetRepresentativeEntryAddress(&start) == kS_OK && at >= start + kIpAdjust) {
    at -= kIpAdjust;
  }
  ULONG32 il = 0;
  if (method->GetILOffsetsByAddress(at, 1, nullptr, &il) != kS_OK) il = 0;
  if (il == kClrDataIlOffsetNoMapping) return;
  if (il == kClrDataIlOffsetProlog) il = 0;
  if (il == kClrDataIlOffsetEpilog && !LastIlOffset(method.get(), &il)) return;
  uint32_t token = 0;
  ComPtr<IUnknown> module;
  if (Failed(method->GetTokenAndScope(&token, module.Put()))) return;
  f->has_il_offset = true;
  f->il_offset = il;
  if (f->method_token == 0) f->method_token = token;
}

}  // namespace

void DacProcess::FindIlOffsetAt(uint64_t ip, StackFrame* f) {
  std::lock_guard<std::mutex> lock(DacMutex());
  FindIlOffset(process_.get(), ip, false, f);
}

absl::StatusOr<std::vector<IlAddressMapEntry>> DacProcess::GetIlAddressMap(uint64_t code_start) {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ENUM handle = 0;
  HRESULT hr = process_->StartEnumMethodInstancesByAddress(code_start, nullptr, &handle);
  if (hr != kS_OK) return DacError("StartEnumMethodInstancesByAddress", hr);
  IUnknown* raw = nullptr;
  hr = process_->EnumMethodInstanceByAddress(&handle, &raw);
  process_->EndEnumMethodInstancesByAddress(handle);
  auto method = AdoptAs<IXCLRDataMethodInstance>(raw);
  if (hr != kS_OK || !method) {
    return DacError("EnumMethodInstanceByAddress", hr);
  }
  ULONG32 need = 0;
  hr = method->GetILAddressMap(0, &need, nullptr);
  if (hr != kS_OK) return DacError("GetILAddressMap", hr);
  if (need > kMaxIlMapEntries) {
    return absl::ResourceExhaustedError(
        absl::StrCat("GetILAddressMap: ", need, " entries, more than ", kMaxIlMapEntries));
  }
  std::vector<CLRDATA_IL_ADDRESS_MAP> map(need);
  hr = method->GetILAddressMap(need, &need, map.data());
  if (hr != kS_OK) return DacError("GetILAddressMap", hr);
  std::vector<IlAddressMapEntry> out;
  out.reserve(std::min<size_t>(need, map.size()));
  for (size_t i = 0; i < std::min<size_t>(need, map.size()); ++i) {
    out.push_back({map[i].ilOffset, map[i].startAddress, map[i].endAddress});
  }
  return out;
}

absl::StatusOr<ThreadStack> DacProcess::WalkStack(uint32_t os_thread_id,
                                                  const StackWalkOptions& options,
                                                  const CancellationToken& cancel) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ThreadStack out;
  out.os_thread_id = os_thread_id;
  IUnknown* raw_task = nullptr;
  HRESULT hr = process_->GetTaskByOSThreadID(os_thread_id, &raw_task);
  auto task = AdoptAs<IXCLRDataTask>(raw_task);
  if (hr != kS_OK || !task) {
    out.not_managed = true;
    out.start_error = hr == kS_OK ? kE_FAIL : hr;
    return out;
  }
  ComPtr<IXCLRDataStackWalk> walk;
  hr = task->CreateStackWalk(kClrDataSimpFrameAll, walk.Put());
  if (Failed(hr) || !walk) {
    out.start_error = Failed(hr) ? hr : kE_FAIL;
    return out;
  }

  ContextBuffer context;
  int managed_before = 0, runtime_before = 0;
  size_t printed = 0;
  do {
    if (cancel.cancelled()) return absl::CancelledError("cancelled");
    if (out.frames.size() >= kMaxStackFrames) {
      out.truncated = true;
      break;
    }
    StackFrame f;
    hr = context.Read(walk.get());
    if (Failed(hr)) {
      f.context_error = hr;
      out.frames.push_back(std::move(f));
    } else if (hr == kS_OK) {
      namespace c = amd64_context;
      f.ip = context.Get(c::kRip);
      f.sp = context.Get(c::kRsp);
      DacpFrameData fd{};
      if (Succeeded(walk->Request(kDacStackPrivRequestFrameData, 0, nullptr, sizeof(fd),
                                  reinterpret_cast<BYTE*>(&fd))) &&
          fd.frameAddr != 0) {
        ++runtime_before;
        f.frame_address = fd.frameAddr;
        f.sp = fd.frameAddr;
        // A Frame's first pointer identifies its type (vtable, or FrameIdentifier on .NET 10).
        uint64_t id = 0;
        ULONG32 done = 0;
        if (Succeeded(target_->ReadVirtual(fd.frameAddr, reinterpret_cast<BYTE*>(&id), 8, &done)) &&
            done == 8) {
          f.frame_name = FixedDacString([&](uint32_t n, WCHAR* b, uint32_t* need) {
                           return sos_->GetFrameName(id, n, b, need);
                         }).value_or("Frame");
        } else {
          f.frame_name = "Frame";
        }
        CLRDATA_ADDRESS md = 0;
        if (Succeeded(sos_->GetMethodDescPtrFromFrame(fd.frameAddr, &md)) && md != 0) {
          f.method_desc = md;
          f.method_name = MethodDescName(sos_.get(), md);
        } else {
          ComPtr<IXCLRDataFrame> frame;
          ComPtr<IXCLRDataMethodInstance> method;
          if (Succeeded(walk->GetFrame(frame.Put())) && frame &&
              Succeeded(frame->GetMethodInstance(method.Put())) && method) {
            std::vector<WCHAR> name(kMaxValueName);
            ULONG32 len = 0;
            if (method->GetName(0, kMaxValueName - 1, &len, name.data()) == kS_OK) {
              f.method_name = Utf16ToUtf8(std::u16string_view(name.data()));
            }
          }
        }
      } else {
        bool adjust = managed_before > 0 || runtime_before > 0;
        ++managed_before;
        CLRDATA_ADDRESS md = 0;
        if (Succeeded(sos_->GetMethodDescPtrFromIP(f.ip, &md)) && md != 0) {
          f.method_desc = md;
          f.method_name = MethodDescName(sos_.get(), md);
          DacpMethodDescData d{};
          if (Succeeded(sos_->GetMethodDescData(md, 0, &d, 0, nullptr, nullptr))) {
            f.module = d.ModulePtr;
            f.method_token = d.MDToken;
          }
          FindIlOffset(process_.get(), f.ip, adjust, &f);
        }
        if (options.arguments || options.locals) ReadValues(walk.get(), options, &f);
      }
      out.frames.push_back(std::move(f));
      ++printed;
    }
    if (options.max_frames != 0 && printed == options.max_frames) break;
    hr = walk->Next();
  } while (hr == kS_OK);
  if (Failed(hr)) out.walk_error = hr;
  return out;
}

}  // namespace clrdiag::dac
