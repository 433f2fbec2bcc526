// Text forms of clrstack and threads in dotnet-dump's formats (SOS strike.cpp ClrStackImpl and
// the managed ThreadsCommand): what is printed is decided from the collected data alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dac/dac_process.h"
#include "core/dac/stack_walk.h"
#include "core/elf/core_file.h"
#include "core/sos/json.h"

namespace clrdiag::sos {

struct ClrStackTextOptions {
  bool arguments = false;  // -p
  bool locals = false;     // -l
  bool lines = true;       // source lines (off with -n)
};

// "OS Thread Id: 0x1f2e (3)" for the current thread; without the index for -all.
std::string FormatStackHeader(uint32_t os_thread_id, int index);

// The walk of one thread: the column header, one row per frame (and -p/-l values), the
// walk's errors as SOS words them.
std::string FormatThreadStack(const dac::ThreadStack& stack, const ClrStackTextOptions& o);

// `threads` without arguments: " 3 0x1F2E (7982)" per dump thread, '*' marking `current`;
// with `verbose` the thread's IP, SP, FP and TEB (0 on Linux) follow each line.
std::string FormatThreadList(const std::vector<elf::CoreThread>& threads, int current,
                             bool verbose);

// JSON forms (docs/json-output.md). One thread's walk: `index` is its position in `threads`
// (-1 when listed by -all).
Json ThreadStackJson(const dac::ThreadStack& stack, int index, const ClrStackTextOptions& o);
// `threads`: every dump thread with its registers and whether it is current.
Json ThreadListJson(const std::vector<elf::CoreThread>& threads, int current);

// Fills `f`'s source file and line from a portable PDB beside its module's assembly (if any
// matches the loaded build); `f` needs module, method_token and il_offset (cmd_stack.cc).
void ResolveSourceLine(dac::DacProcess& dac, dac::StackFrame* f);

}  // namespace clrdiag::sos
