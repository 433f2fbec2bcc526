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
    // SOS prints the heading before it asks for the first argument, even if that fails.
    if (f.argument_count > 0) *out += "    PARAMETERS:\n";
    bool printed_location = false;  // SOS never resets it between arguments
    for (const dac::FrameValue& v : f.arguments) {
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
    if (f.local_count > 0) *out += "    LOCALS:\n";
    for (const dac::FrameValue& v : f.locals) {
      *out += "        ";
      if (v.location == dac::FrameValue::Location::kRegister) {
        *out += "<CLR reg> = ";
      } else if (v.location == dac::FrameValue::Location::kMemory) {
        absl::StrAppend(out, "0x", Upper(v.address), " = ");
      }
      absl::StrAppend(out, ValueText(v), "\n");
    }
    // SOS indents before it asks for a local: a failed one leaves the indent on its own line.
    if (f.locals_failed && f.local_count > 0) *out += "        ";
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
      absl::StrAppend(&out,
                      "GetFrameContext failed: ", absl::Hex(static_cast<uint32_t>(f.context_error)),
                      "\n");
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

namespace {

Json ValueJson(const dac::FrameValue& v) {
  Json j{{"name", v.name.empty() ? Json() : Json(v.name)}};
  switch (v.location) {
    case dac::FrameValue::Location::kMemory:
      j["location"] = "memory";
      j["address"] = JsonHex(v.address);
      break;
    case dac::FrameValue::Location::kRegister:
      j["location"] = "register";
      j["address"] = nullptr;
      break;
    case dac::FrameValue::Location::kUnknown:
      j["location"] = nullptr;
      j["address"] = nullptr;
      break;
  }
  bool readable = v.has_data && !v.read_failed;
  j["size"] = readable ? Json(v.size) : Json();
  j["value"] = readable ? Json(JsonHex(v.value)) : Json();
  return j;
}

Json ValuesJson(const std::vector<dac::FrameValue>& values) {
  Json a = Json::array();
  for (const auto& v : values) a.push_back(ValueJson(v));
  return a;
}

std::string HResultHex(dac::HRESULT hr) { return JsonHex(static_cast<uint32_t>(hr)); }

}  // namespace

Json ThreadStackJson(const dac::ThreadStack& stack, int index, const ClrStackTextOptions& o) {
  Json frames = Json::array();
  for (const dac::StackFrame& f : stack.frames) {
    if (f.context_error != 0) {
      frames.push_back(Json{{"error", "GetFrameContext failed: " + HResultHex(f.context_error)}});
      continue;
    }
    Json j{{"kind", f.is_runtime_frame() ? "runtime" : "managed"},
           {"child_sp", JsonHex(f.sp)},
           {"ip", JsonHex(f.ip)}};
    if (f.is_runtime_frame()) {
      j["frame_address"] = JsonHex(f.frame_address);
      j["frame_name"] = f.frame_name;
    }
    j["method_desc"] = f.method_desc ? Json(JsonHex(f.method_desc)) : Json();
    j["method"] = f.method_name.empty() ? Json() : Json(f.method_name);
    if (!f.is_runtime_frame()) {
      j["module"] = f.module ? Json(JsonHex(f.module)) : Json();
      j["method_token"] = f.method_token ? Json(JsonHex(f.method_token)) : Json();
      j["il_offset"] = f.has_il_offset ? Json(f.il_offset) : Json();
      j["source"] = o.lines && !f.source_file.empty()
                        ? Json{{"file", f.source_file}, {"line", f.source_line}}
                        : Json();
      if (o.arguments) j["arguments"] = f.values_read ? ValuesJson(f.arguments) : Json();
      if (o.locals) {
        j["locals"] = f.values_read && !f.arguments_failed ? ValuesJson(f.locals) : Json();
      }
    }
    frames.push_back(std::move(j));
  }
  Json t{{"os_thread_id", stack.os_thread_id},
         {"index", index < 0 ? Json() : Json(index)},
         {"managed", !stack.not_managed}};
  if (stack.start_error != 0) {
    t["error"] = (stack.not_managed ? std::string("not a managed thread; ") : std::string()) +
                 "failed to start stack walk: " + HResultHex(stack.start_error);
  } else {
    t["frames"] = std::move(frames);
    t["complete"] = stack.walk_error == 0 && !stack.truncated;
    if (stack.walk_error != 0) t["walk_error"] = HResultHex(stack.walk_error);
  }
  return t;
}

Json ThreadListJson(const std::vector<elf::CoreThread>& threads, int current) {
  Json list = Json::array();
  for (size_t i = 0; i < threads.size(); ++i) {
    const elf::CoreThread& t = threads[i];
    list.push_back(Json{{"index", i},
                        {"os_thread_id", t.tid},
                        {"current", static_cast<int>(i) == current},
                        {"ip", JsonHex(t.regs.rip)},
                        {"sp", JsonHex(t.regs.rsp)},
                        {"fp", JsonHex(t.regs.rbp)}});
  }
  return Json{{"current", current}, {"threads", list}};
}

}  // namespace clrdiag::sos
