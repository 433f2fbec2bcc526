// Managed exceptions as SOS's printexception (pe) reads them: an exception object's type,
// message, inner exception, the stack trace the runtime recorded while it was thrown, and a
// thread's current and nested exceptions.
//
// The recorded stack trace lives in the exception's _stackTrace field: a byte[] whose payload
// is a header and then `count` StackTraceElements {ip, sp, MethodDesc*, int flags} (32 bytes on
// 64-bit). .NET 9+ may instead store an object[] whose element 0 is that byte[] (the other
// elements keep collectible methods alive), and changed the header from {size_t count,
// Thread*} to {u32 count, u32 keepAliveCount, Thread*}. Like SOS, the count is read as one
// pointer-sized value in both cases (the header is 16 bytes either way).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dac/dac_process.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

// One frame of an exception's recorded stack trace, resolved as SOS prints it.
struct ExceptionFrame {
  uint64_t sp = 0;
  uint64_t ip = 0;  // As recorded, +1 for hardware (async) exceptions on x64 (as SOS shows it).
  uint64_t method_desc = 0;
  std::string module;   // File name of the method's module ("HeapApp.dll"), "UNKNOWN" if none.
  std::string method;   // GetMethodDescName, "UNKNOWN" if that fails.
  uint32_t offset = 0;  // ip - the method's native code start, truncated to 32 bits as SOS.
};

enum class StackTraceState {
  kNone,            // _stackTrace is null
  kNotAvailable,    // the array is empty or unreadable
  kUndecipherable,  // the header's count is 0
  kFrames,          // `frames` holds the resolved frames (may be empty if none resolved)
};

// A string field as SOS prints it: its characters, or one of SOS's own texts for a string it
// cannot show ("<Invalid Object>", ...). `address` 0 means the field is null.
struct ExceptionString {
  uint64_t address = 0;
  std::string text;
};

struct ExceptionInfo {
  uint64_t address = 0;
  uint64_t mt = 0;
  std::optional<std::string> type;  // Raw DAC type name; nullopt if the DAC gave none.
  ExceptionString message;
  uint64_t inner = 0;
  std::optional<std::string> inner_type;  // nullopt: the inner object's MethodTable is unreadable
  StackTraceState stack_state = StackTraceState::kNone;
  std::vector<ExceptionFrame> frames;
  ExceptionString stack_trace_string;
  uint32_t hresult = 0;
  bool async = false;  // A hardware exception (SOS's heuristic on _xcode / _HResult).
};

struct ExceptionReadOptions {
  // Whether every page of libcoreclr's PT_GNU_RELRO segment is in the dump (see
  // RuntimeRelroInDump). Without them (Heap dumps) GetMethodDescData of a dynamic (LCG)
  // method kills the process inside the DAC: it looks up a CoreLib class through name
  // pointers kept in that segment and gets a null name. Such frames are then left out, as
  // SOS leaves out frames whose MethodDesc it cannot read.
  bool runtime_relro_in_dump = true;
};

// Reads the exception object at `address`. Errors: NotFound when the DAC does not know the
// address as an object, InvalidArgument when the object is not a System.Exception.
absl::StatusOr<ExceptionInfo> ReadException(DacProcess& dac, uint64_t address,
                                            const ExceptionReadOptions& options = {});

// Whether every page of the PT_GNU_RELRO segment of the ELF image loaded at `base` is in the
// dump (read from the image's program headers in the dump; false if they are missing).
bool RuntimeRelroInDump(const elf::CoreFile& core, uint64_t base);

// What a managed thread says about exceptions.
struct ThreadExceptions {
  uint64_t thread = 0;        // The runtime's Thread*.
  uint64_t current = 0;       // The object behind the last-thrown handle, 0 if none.
  uint64_t first_nested = 0;  // Head of the nested chain, 0 if none.
};

// The managed thread running on OS thread `os_tid`; NotFound if there is none (an unmanaged
// thread).
absl::StatusOr<ThreadExceptions> ReadThreadExceptions(DacProcess& dac, uint32_t os_tid);

// A thread's last thrown exception as clrthreads shows it: the object behind the handle, the
// name of the MethodTable its first word points to (nullopt if the DAC has none) and whether
// the thread has nested exceptions. nullopt when the thread has no last thrown object or the
// object is unreadable.
struct LastThrown {
  uint64_t object = 0;
  std::optional<std::string> type;
  bool nested = false;
};
std::optional<LastThrown> ReadLastThrown(DacProcess& dac, const ManagedThread& thread);

// The exception objects of a nested chain starting at `first_nested`, outermost link first.
// On a broken link, returns what was read and sets *error (the link that failed).
std::vector<uint64_t> ReadNestedExceptions(DacProcess& dac, uint64_t first_nested,
                                           std::optional<uint64_t>* error);

}  // namespace clrdiag::dac
