// Reading exceptions: ISOSDacInterface2 for the exception's fields (or the fields by name when
// the DAC lacks it), the recorded stack trace from target memory, names from the DAC.
#include "core/dac/exception.h"

#include <cstring>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/dac_string.h"

namespace clrdiag::dac {
namespace {

std::string Hex(uint64_t v) { return absl::StrCat("0x", absl::Hex(v)); }

// Named limits against corrupt dumps.
constexpr int kMaxParentDepth = 1024;
constexpr uint32_t kMaxStringChars = 0x200000;  // SOS's limit for printing a string
constexpr uint32_t kMaxNestedExceptions = 4096;

// StackTraceElement on 64-bit targets: ip, sp, MethodDesc*, int flags (+ padding).
constexpr uint64_t kStackTraceElementSize = 32;
// Array object layout on 64-bit: MethodTable*, u32 length (+ padding), then the elements.
constexpr uint64_t kArrayDataOffset = 16;
// The stack trace payload's header: {size_t count, Thread*}, or (.NET 9+) {u32 count,
// u32 keepAliveCount, Thread*}; 16 bytes either way.
constexpr uint64_t kStackTraceHeaderSize = 16;

constexpr uint32_t kExceptionComPlus = 0xE0434352;  // The SEH code of a managed throw.
// HRESULTs of exceptions the runtime maps from hardware faults (SOS treats them as async).
constexpr uint32_t kAsyncHResults[] = {
    0x80070216,  // COR_E_ARITHMETIC
    0x80131516,  // COR_E_OVERFLOW
    0x80020012,  // COR_E_DIVIDEBYZERO
    0x80131537,  // COR_E_FORMAT
    0x80004003,  // COR_E_NULLREFERENCE, E_POINTER
    0x80131541,  // COR_E_DATAMISALIGNED
};

template <typename T>
bool ReadValue(DacProcess& dac, uint64_t address, T* out) {
  return dac.ReadTargetMemory(address, out, sizeof(T)) == sizeof(T);
}

// Offset from the object of the named instance field of `mt` or its parents, or 0.
uint64_t FieldOffset(DacProcess& dac, uint64_t mt, const std::string& name) {
  for (int depth = 0; mt != 0 && depth < kMaxParentDepth; ++depth) {
    auto mtd = dac.GetMethodTableDetails(mt);
    auto fields = dac.GetMethodTableFields(mt);
    if (!mtd.ok() || !fields.ok()) return 0;
    uint64_t fd_addr = fields->first_field;
    for (uint32_t i = 0; fd_addr != 0 && i < 0x10000u; ++i) {
      auto fd = dac.GetFieldDesc(fd_addr);
      if (!fd.ok()) break;
      if (!fd->is_static) {
        auto n = dac.GetMetadataName(mtd->module, fd->token);
        if (n.ok() && *n == name) return fd->offset + 8;
      }
      fd_addr = fd->next;
    }
    mt = mtd->parent;
  }
  return 0;
}

// The exception's fields without ISOSDacInterface2: read by name.
ExceptionObjectFields FieldsByName(DacProcess& dac, uint64_t obj, uint64_t mt) {
  ExceptionObjectFields f;
  f.xcode = kExceptionComPlus;
  auto read_ptr = [&](const char* name, uint64_t* out) {
    if (uint64_t off = FieldOffset(dac, mt, name); off != 0) ReadValue(dac, obj + off, out);
  };
  read_ptr("_message", &f.message);
  read_ptr("_innerException", &f.inner_exception);
  read_ptr("_stackTrace", &f.stack_trace);
  read_ptr("_stackTraceString", &f.stack_trace_string);
  if (uint64_t off = FieldOffset(dac, mt, "_HResult"); off != 0) {
    ReadValue(dac, obj + off, &f.hresult);
  }
  if (uint64_t off = FieldOffset(dac, mt, "_xcode"); off != 0) ReadValue(dac, obj + off, &f.xcode);
  return f;
}

bool IsAsync(const ExceptionObjectFields& f) {
  if (f.xcode != kExceptionComPlus) return true;
  for (uint32_t hr : kAsyncHResults) {
    if (static_cast<uint32_t>(f.hresult) == hr) return true;
  }
  return false;
}

// SOS's StringObjectContent: the characters, or its texts for what it cannot show.
ExceptionString ReadString(DacProcess& dac, uint64_t address) {
  ExceptionString s;
  s.address = address;
  if (address == 0) return s;
  auto obj = dac.GetObjectDetails(address);
  if (!obj.ok()) {
    s.text = "<Invalid Object>";
    return s;
  }
  uint32_t length = 0;
  if (!ReadValue(dac, address + 8, &length)) {
    s.text = "Error getting string data\n";
    return s;
  }
  if (obj->size > kMaxStringChars || length > kMaxStringChars) {
    s.text = "<String is invalid or too large to print>\n";
    return s;
  }
  auto chars = dac.GetObjectString(address, length);
  s.text = chars.ok() ? Utf16ToUtf8(*chars) : "<Invalid Object>";
  return s;
}

// The name SOS gives a MethodTable (NameForMT): the raw DAC name.
std::optional<std::string> TypeName(DacProcess& dac, uint64_t mt) {
  auto name = dac.GetMethodTableName(mt);
  if (!name.ok()) return std::nullopt;
  return *name;
}

// MethodDesc::m_wFlags (offset 6 since .NET Core 3) holds the classification in its low 3
// bits; 7 is mcDynamic (LCG methods and IL stubs).
constexpr uint64_t kMethodDescFlagsOffset = 6;
constexpr uint16_t kMethodDescClassificationMask = 7;
constexpr uint16_t kMethodDescDynamic = 7;

bool IsDynamicMethodDesc(DacProcess& dac, uint64_t md) {
  uint16_t flags = 0;
  return ReadValue(dac, md + kMethodDescFlagsOffset, &flags) &&
         (flags & kMethodDescClassificationMask) == kMethodDescDynamic;
}

// DumpMDInfoBuffer: module and method name of one frame; false if the MethodDesc is unknown
// (SOS then leaves the frame out).
bool ResolveFrame(DacProcess& dac, const ExceptionReadOptions& options, ExceptionFrame* frame) {
  if (!options.runtime_relro_in_dump && IsDynamicMethodDesc(dac, frame->method_desc)) {
    return false;  // GetMethodDescData would kill the process (see ExceptionReadOptions)
  }
  auto md = dac.GetMethodDesc(frame->method_desc);
  if (!md.ok()) return false;
  std::string module;
  if (auto file = dac.GetModuleFileName(md->module); file.ok()) {
    module = file->substr(file->find_last_of('/') + 1);
  }
  auto name = dac.GetMethodDescName(frame->method_desc);
  const size_t bang = name.ok() ? name->find('!') : std::string::npos;
  if (module.empty() && bang != std::string::npos) {
    // The DAC's name carries the module ("Module!Method"): SOS prints it as it is.
    frame->method = *name;
  } else {
    frame->module = module.empty() ? "UNKNOWN" : module;
    frame->method = !name.ok()                  ? "UNKNOWN"
                    : bang != std::string::npos ? name->substr(bang + 1)
                                                : *name;
  }
  frame->offset = static_cast<uint32_t>(frame->ip - md->native_code);
  return true;
}

// GetStackTraceArray + the decoding of FormatException.
void ReadStackTrace(DacProcess& dac, const ExceptionReadOptions& options, uint64_t stack_trace,
                    bool async, ExceptionInfo* info) {
  if (stack_trace == 0) {
    info->stack_state = StackTraceState::kNone;
    return;
  }
  // .NET 9+: an object[] whose first element is the byte[].
  if (auto arr = dac.GetObjectDetails(stack_trace); arr.ok() && arr->kind == kObjArray) {
    auto globals = dac.GetUsefulGlobals();
    if (globals.ok() && arr->element_type_handle == globals->object_mt) {
      uint64_t first = 0;
      ReadValue(dac, stack_trace + kArrayDataOffset, &first);
      stack_trace = first;
    }
  }
  uint32_t length = 0;
  if (stack_trace == 0 || !ReadValue(dac, stack_trace + 8, &length) || length == 0) {
    info->stack_state = StackTraceState::kNotAvailable;
    return;
  }
  const uint64_t header = stack_trace + kArrayDataOffset;
  uint64_t count_raw = 0;
  ReadValue(dac, header, &count_raw);
  if (count_raw == 0) {
    info->stack_state = StackTraceState::kUndecipherable;
    return;
  }
  info->stack_state = StackTraceState::kFrames;
  // SOS keeps the byte count in 32 bits: a count with keepAliveCount in its high half wraps.
  const uint32_t bytes = static_cast<uint32_t>(count_raw * kStackTraceElementSize);
  const uint64_t count = bytes / kStackTraceElementSize;
  const uint64_t elements = header + kStackTraceHeaderSize;
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t raw[kStackTraceElementSize];
    if (dac.ReadTargetMemory(elements + i * kStackTraceElementSize, raw, sizeof(raw)) !=
        sizeof(raw)) {
      break;
    }
    ExceptionFrame f;
    std::memcpy(&f.ip, raw, 8);
    std::memcpy(&f.sp, raw + 8, 8);
    std::memcpy(&f.method_desc, raw + 16, 8);
    if (async) f.ip += 1;
    if (ResolveFrame(dac, options, &f)) info->frames.push_back(std::move(f));
  }
}

}  // namespace

absl::StatusOr<ExceptionObjectFields> DacProcess::GetExceptionObjectData(uint64_t obj) {
  std::lock_guard<std::mutex> lock(DacMutex());
  ComPtr<ISOSDacInterface2> sos2;
  HRESULT hr = sos_->QueryInterface(kIID_ISOSDacInterface2, sos2.PutVoid());
  if (Failed(hr) || !sos2) {
    return absl::UnimplementedError("the DAC does not offer ISOSDacInterface2");
  }
  DacpExceptionObjectData d{};
  hr = sos2->GetObjectExceptionData(obj, &d);
  if (Failed(hr)) return DacError(absl::StrCat("GetObjectExceptionData(", Hex(obj), ")"), hr);
  ExceptionObjectFields f;
  f.message = d.Message;
  f.inner_exception = d.InnerException;
  f.stack_trace = d.StackTrace;
  f.watson_buckets = d.WatsonBuckets;
  f.stack_trace_string = d.StackTraceString;
  f.remote_stack_trace_string = d.RemoteStackTraceString;
  f.hresult = d.HResult;
  f.xcode = static_cast<uint32_t>(d.XCode);
  return f;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> DacProcess::GetNestedException(uint64_t nested) {
  std::lock_guard<std::mutex> lock(DacMutex());
  CLRDATA_ADDRESS obj = 0, next = 0;
  HRESULT hr = sos_->GetNestedExceptionData(nested, &obj, &next);
  if (hr != kS_OK) return DacError(absl::StrCat("GetNestedExceptionData(", Hex(nested), ")"), hr);
  return std::make_pair(static_cast<uint64_t>(obj), static_cast<uint64_t>(next));
}

absl::StatusOr<ExceptionInfo> ReadException(DacProcess& dac, uint64_t address,
                                            const ExceptionReadOptions& options) {
  auto obj = dac.GetObjectDetails(address);
  if (!obj.ok()) {
    return absl::NotFoundError(absl::StrFormat("Invalid exception object: %016x", address));
  }
  auto globals = dac.GetUsefulGlobals();
  if (!globals.ok()) return globals.status();
  // isExceptionObj: System.Exception among the MethodTable and its parents.
  bool is_exception = false;
  uint64_t mt = obj->mt;
  for (int depth = 0; mt != 0 && depth < kMaxParentDepth; ++depth) {
    auto mtd = dac.GetMethodTableDetails(mt);
    if (!mtd.ok()) break;
    if (mt == globals->exception_mt) {
      is_exception = true;
      break;
    }
    mt = mtd->parent;
  }
  if (!is_exception) return absl::InvalidArgumentError("Not a valid exception object");

  ExceptionInfo info;
  info.address = address;
  info.mt = obj->mt;
  info.type = TypeName(dac, obj->mt);
  auto data = dac.GetExceptionObjectData(address);
  const ExceptionObjectFields fields = data.ok() ? *data : FieldsByName(dac, address, obj->mt);
  info.message = ReadString(dac, fields.message);
  info.inner = fields.inner_exception;
  if (info.inner != 0) {
    uint64_t inner_mt = 0;
    if (ReadValue(dac, info.inner, &inner_mt)) {
      // SOS prints whatever name it has for the pointer it read (empty if none).
      info.inner_type = TypeName(dac, inner_mt & ~uint64_t{3}).value_or("");
    }
  }
  info.async = IsAsync(fields);
  ReadStackTrace(dac, options, fields.stack_trace, info.async, &info);
  info.stack_trace_string = ReadString(dac, fields.stack_trace_string);
  info.hresult = static_cast<uint32_t>(fields.hresult);
  return info;
}

absl::StatusOr<ThreadExceptions> ReadThreadExceptions(DacProcess& dac, uint32_t os_tid) {
  auto ts = dac.GetThreadStore();
  if (!ts.ok()) return ts.status();
  for (const ManagedThread& t : ts->threads) {
    if (t.os_id == 0 || t.os_id != os_tid) continue;
    ThreadExceptions e;
    e.thread = t.address;
    if (t.last_thrown_handle != 0) ReadValue(dac, t.last_thrown_handle, &e.current);
    e.first_nested = t.first_nested_exception;
    return e;
  }
  return absl::NotFoundError("The current thread is unmanaged");
}

bool RuntimeRelroInDump(const elf::CoreFile& core, uint64_t base) {
  auto read = [&](uint64_t addr, void* buf, size_t n) {
    return core.ReadDumpedMemory(addr, buf, n) == n;
  };
  uint8_t ehdr[64];
  if (base == 0 || !read(base, ehdr, sizeof(ehdr)) ||
      std::memcmp(ehdr,
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return false;
  }
  uint64_t phoff = 0;
  uint16_t phentsize = 0, phnum = 0;
  std::memcpy(&phoff, ehdr + 0x20, 8);
  std::memcpy(&phentsize, ehdr + 0x36, 2);
  std::memcpy(&phnum, ehdr + 0x38, 2);
  if (phentsize < 56 || phnum > 256) return false;
  bool found = false;
  for (uint16_t i = 0; i < phnum; ++i) {
    uint8_t ph[56];
    if (!read(base + phoff + uint64_t{i} * phentsize, ph, sizeof(ph))) return false;
    uint32_t type = 0;
    uint64_t vaddr = 0, memsz = 0;
    std::memcpy(&type, ph, 4);
    std::memcpy(&vaddr, ph + 16, 8);
    std::memcpy(&memsz, ph + 40, 8);
    if (type != 0x6474e552) continue;  // PT_GNU_RELRO
    if (memsz > (uint64_t{1} << 32)) return false;
    for (uint64_t page = (base + vaddr) & ~uint64_t{0xfff}; page < base + vaddr + memsz;
         page += 0x1000) {
      if (!core.Contains(page)) return false;
    }
    found = true;
  }
  return found;
}

std::optional<LastThrown> ReadLastThrown(DacProcess& dac, const ManagedThread& thread) {
  LastThrown last;
  uint64_t mt = 0;
  if (thread.last_thrown_handle == 0 || !ReadValue(dac, thread.last_thrown_handle, &last.object) ||
      last.object == 0 || !ReadValue(dac, last.object, &mt)) {
    return std::nullopt;
  }
  last.type = TypeName(dac, mt);
  last.nested = thread.first_nested_exception != 0;
  return last;
}

std::vector<uint64_t> ReadNestedExceptions(DacProcess& dac, uint64_t first_nested,
                                           std::optional<uint64_t>* error) {
  std::vector<uint64_t> out;
  std::unordered_set<uint64_t> seen;
  for (uint64_t link = first_nested;
       link != 0 && seen.insert(link).second && out.size() < kMaxNestedExceptions;) {
    auto n = dac.GetNestedException(link);
    if (!n.ok()) {
      *error = link;
      return out;
    }
    out.push_back(n->first);
    link = n->second;
  }
  return out;
}

}  // namespace clrdiag::dac
