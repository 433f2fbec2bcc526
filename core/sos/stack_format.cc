#include "core/sos/stack_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos {
namespace {

// SOS's %p: 16 upper-case hex digits; its WString pointers and native IPs are lower case.
std::string Upper(uint64_t v) { return absl::StrFormat("%016X", v); }
std::string Lower(uint64_t v) { return absl::StrFormat("%016x", v); }

std::string ValueText(const dac::FrameValue& v) {
  if (!v.has_data) return "<no data>";
  if (v.read_failed) return "<unable to retrieve data>";
  return "0x" + Lower(v.value);
}

void AppendValues(const dac::StackFrame& f, const ClrStackTextOptions& o, std::string* out) {
  if (f.values_read && o.arguments) {
    bool printed_location = false;  // SOS never resets it between arguments
    for (size_t i = 0; i < f.arguments.size(); ++i) {
      const dac::FrameValue& v = f.arguments[i];
      if (i == 0) *out += "    PARAMETERS:\n";
      *out += "        ";
      if (!v.name.empty()) absl::StrAppend(out, v.name, " ");
      if (v.location == dac::FrameValue::Location::kRegister) {
        *out += "(<CLR reg>) ";
        printed_location = true;
      } else if (v.location == dac::FrameValue::Location::kMemory) {
        absl::StrAppend(out, "(0x", Upper(v.address), ") ");
        printed_location = true;
      }
      if (!v.name.empty() || printed_location) *out += "= ";
      absl::StrAppend(out, ValueText(v), "\n");
    }
  }
  if (f.values_read && o.locals && !f.arguments_failed) {
    for (size_t i = 0; i < f.locals.size(); ++i) {
      const dac::FrameValue& v = f.locals[i];
      if (i == 0) *out += "    LOCALS:\n";
      *out += "        ";
      if (v.location == dac::FrameValue::Location::kRegister) {
        *out += "<CLR reg> = ";
      } else if (v.location == dac::FrameValue::Location::kMemory) {
        absl::StrAppend(out, "0x", Upper(v.address), " = ");
      }
      absl::StrAppend(out, ValueText(v), "\n");
    }
  }
  *out += "\n";
}

}  // namespace

std::string FormatStackHeader(uint32_t os_thread_id, int index) {
  return index < 0 ? absl::StrFormat("OS Thread Id: 0x%x\n", os_thread_id)
                   : absl::StrFormat("OS Thread Id: 0x%x (%d)\n", os_thread_id, index);
}

std::string FormatThreadStack(const dac::ThreadStack& stack, const ClrStackTextOptions& o) {
  std::string out;
  if (stack.not_managed) {
    out +=
        "Unable to walk the managed stack. The current thread is likely not a \n"
        "managed thread. You can run clrthreads to get a list of managed threads in\n"
        "the process\n";
  }
  if (stack.start_error != 0) {
    absl::StrAppend(&out, "Failed to start stack walk: ",
                    absl::Hex(static_cast<uint32_t>(stack.start_error)), "\n");
    return out;
  }
  out += absl::StrFormat("%16s %16s %s\n", "Child SP", "IP", "Call Site");
  for (const dac::StackFrame& f : stack.frames) {
    if (f.context_error != 0) {
      absl::StrAppend(&out, "GetFrameContext failed: ",
                      absl::Hex(static_cast<uint32_t>(f.context_error)), "\n");
      continue;
    }
    absl::StrAppend(&out, Upper(f.sp), " ");
    if (f.is_runtime_frame()) {
      absl::StrAppend(&out, Lower(f.ip), " [", f.frame_name, ": ", Lower(f.frame_address), "] ");
      if (f.method_desc != 0) {
        out += f.method_name.empty() ? "<unknown method>" : f.method_name;
      } else {
        out += f.method_name;
      }
      out += "\n";
      continue;
    }
    absl::StrAppend(&out, Upper(f.ip), " ");
    if (f.method_desc == 0) {
      out += "<unknown>";
    } else {
      out += f.method_name.empty() ? "<unknown method>" : f.method_name;
      if (o.lines && !f.source_file.empty()) {
        absl::StrAppend(&out, " [", f.source_file, " @ ", f.source_line, "]");
      }
    }
    out += "\n";
    if (o.arguments || o.locals) AppendValues(f, o, &out);
  }
  if (stack.walk_error != 0) out += "<failed>\nStack Walk failed. Reported stack incomplete.\n";
  return out;
}

std::string FormatThreadList(const std::vector<elf::CoreThread>& threads, int current,
                             bool verbose) {
  std::string out;
  for (size_t i = 0; i < threads.size(); ++i) {
    const elf::CoreThread& t = threads[i];
    absl::StrAppend(&out, static_cast<int>(i) == current ? "*" : " ", i,
                    absl::StrFormat(" 0x%04X (%u)\n", t.tid, t.tid));
    if (verbose) {
      absl::StrAppend(&out, "    IP  0x", Upper(t.regs.rip), "\n", "    SP  0x", Upper(t.regs.rsp),
                      "\n", "    FP  0x", Upper(t.regs.rbp), "\n", "    TEB 0x", Upper(0), "\n");
    }
  }
  return out;
}

}  // namespace clrdiag::sos
