// printexception / pe: an exception object, or the current thread's last thrown exception,
// and the thread's nested exceptions, in SOS's format (strike.cpp PrintException /
// FormatException). The data comes from core/dac/exception.h; this file only renders it, as
// text or as JSON.
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/exception.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

constexpr char kNestedSeparator[] =
    "\nNested exception -------------------------------------------------------------\n";

// The text of one exception as dotnet-dump shows SOS's output.
class TextWriter {
 public:
  // One ExtOut of SOS: dropped whole when it does not fit SOS's 8 KiB buffer; dotnet-dump's
  // console keeps only tabs, newlines and printable ASCII.
  void Emit(const std::string& piece) {
    if (piece.size() >= 8192) return;
    for (char c : piece) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u == '\n' || u == '\t' || (u >= 0x20 && u <= 0x7f)) text_.push_back(c);
    }
  }

  void Exception(const dac::ExceptionInfo& e) {
    Emit(absl::StrFormat("Exception object: %016x\n", e.address));
    Emit(absl::StrCat("Exception type:   ", e.type.value_or("<Unknown>"), "\n"));
    Emit("Message:          ");
    Emit(e.message.address != 0 ? e.message.text : "<none>");
    Emit("\n");
    Emit("InnerException:   ");
    if (e.inner == 0) {
      Emit("<none>\n");
    } else if (!e.inner_type) {
      Emit("<invalid MethodTable of inner exception>");  // SOS ends no line here
    } else {
      Emit(absl::StrCat(*e.inner_type, ", "));
      Emit(absl::StrFormat("Use printexception %016X to see more.\n", e.inner));
    }
    Emit("StackTrace (generated):\n");
    switch (e.stack_state) {
      case dac::StackTraceState::kNone:
        Emit("<none>\n");
        break;
      case dac::StackTraceState::kNotAvailable:
        Emit("<Not Available>\n");
        break;
      case dac::StackTraceState::kUndecipherable:
        Emit("Unable to decipher generated stack trace\n");
        break;
      case dac::StackTraceState::kFrames: {
        // SOS prints the table in 2048-character chunks: each fits its buffer.
        std::string table = "    SP               IP               Function\n";
        for (const dac::ExceptionFrame& f : e.frames) {
          table += absl::StrFormat("    %016X %016X ", f.sp, f.ip);
          table += f.module.empty() ? f.method : absl::StrCat(f.module, "!", f.method);
          if (f.offset != 0) table += absl::StrFormat("+%#x", f.offset);
          table += "\n";
        }
        for (size_t pos = 0; pos < table.size(); pos += 2048) Emit(table.substr(pos, 2048));
        Emit("\n");
        break;
      }
    }
    Emit("StackTraceString: ");
    if (e.stack_trace_string.address != 0) {
      Emit(e.stack_trace_string.text);
      Emit("\n\n");
    } else {
      Emit("<none>\n");
    }
    Emit(absl::StrFormat("HResult: %x\n", e.hresult));
  }

  std::string& text() { return text_; }

 private:
  std::string text_;
};

const char* StackStateName(dac::StackTraceState s) {
  switch (s) {
    case dac::StackTraceState::kNone:
      return "none";
    case dac::StackTraceState::kNotAvailable:
      return "not_available";
    case dac::StackTraceState::kUndecipherable:
      return "undecipherable";
    case dac::StackTraceState::kFrames:
      return "frames";
  }
  return "none";
}

Json ExceptionJson(const dac::ExceptionInfo& e) {
  Json j{{"address", JsonHex(e.address)},
         {"method_table", JsonHex(e.mt)},
         {"type", e.type ? Json(*e.type) : Json(nullptr)}};
  j["message"] = e.message.address != 0 ? Json(e.message.text) : Json(nullptr);
  if (e.inner != 0) {
    j["inner_exception"] = Json{{"address", JsonHex(e.inner)},
                                {"type", e.inner_type ? Json(*e.inner_type) : Json(nullptr)}};
  } else {
    j["inner_exception"] = nullptr;
  }
  j["stack_trace_state"] = StackStateName(e.stack_state);
  Json frames = Json::array();
  for (const dac::ExceptionFrame& f : e.frames) {
    frames.push_back(Json{{"sp", JsonHex(f.sp)},
                          {"ip", JsonHex(f.ip)},
                          {"method_desc", JsonHex(f.method_desc)},
                          {"module", f.module},
                          {"method", f.method},
                          {"offset", f.offset}});
  }
  j["stack_trace"] = e.stack_state == dac::StackTraceState::kFrames ? frames : Json(nullptr);
  j["stack_trace_string"] =
      e.stack_trace_string.address != 0 ? Json(e.stack_trace_string.text) : Json(nullptr);
  j["hresult"] = JsonHex(e.hresult);
  return j;
}

// The managed thread behind the session's current thread, or NotFound.
absl::StatusOr<dac::ThreadExceptions> CurrentThread(CommandContext& ctx) {
  const auto& threads = ctx.core.threads();
  const int index = ctx.state.current_thread;
  if (index < 0 || static_cast<size_t>(index) >= threads.size()) {
    return absl::NotFoundError("The current thread is unmanaged");
  }
  return dac::ReadThreadExceptions(ctx.dac, threads[index].tid);
}

CommandResult PrintException(CommandContext& ctx, const CommandSpec& spec,
                             const std::vector<std::string>& args) {
  bool nested = false;
  std::optional<std::string> address_text;
  for (const std::string& a : args) {
    const std::string lower = absl::AsciiStrToLower(a);
    if (lower == "-nested") {
      nested = true;
    } else if (lower == "/d") {
      // DML output: plain text is printed.
    } else if (lower == "-lines" || lower == "-l") {
      return UsageError(spec, "-lines is not supported yet (source lines need PDB reading)");
    } else if (lower == "-ccw") {
      return UsageError(spec, "-ccw is not supported (COM callable wrappers are Windows-only)");
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("Unknown option: ", a));
    } else if (!address_text) {
      address_text = a;
    } else {
      return UsageError(spec, absl::StrCat("Incorrect argument: ", a));
    }
  }

  TextWriter text;
  Json result{{"exception", nullptr}};
  auto flush = [&] {
    if (!ctx.json && !text.text().empty()) ctx.out.Write(text.text());
    text.text().clear();
  };
  // Whatever was gathered is written before an error, as SOS prints before it fails.
  auto fail = [&](const std::string& message) {
    if (ctx.json) {
      WriteJson(ctx, result);
    } else {
      flush();
    }
    return Failure(message);
  };

  dac::ExceptionReadOptions read_options;
  read_options.runtime_relro_in_dump = dac::RuntimeRelroInDump(ctx.core, ctx.runtime.base);
  auto thread = CurrentThread(ctx);
  uint64_t object = 0;
  if (address_text) {
    if (!ParseHexAddress(*address_text, &object) || object == 0) {
      return Failure(absl::StrCat("Invalid exception object ", *address_text));
    }
  } else {
    if (!thread.ok()) return fail(std::string(thread.status().message()));
    object = thread->current;
    if (object == 0) {
      result["no_current_exception"] = true;
      text.Emit("There is no current managed exception on this thread\n");
    }
  }
  if (object != 0) {
    auto e = dac::ReadException(ctx.dac, object, read_options);
    if (!e.ok()) return fail(std::string(e.status().message()));
    result["exception"] = ExceptionJson(*e);
    text.Exception(*e);
  }

  // The current thread's nested exceptions.
  if (!thread.ok()) return fail(std::string(thread.status().message()));
  result["has_nested_exceptions"] = thread->first_nested != 0;
  if (thread->first_nested != 0) {
    if (!nested) {
      text.Emit("There are nested exceptions on this thread. Run with -nested for details\n");
    } else {
      Json list = Json::array();
      std::optional<uint64_t> broken;
      for (uint64_t obj : dac::ReadNestedExceptions(ctx.dac, thread->first_nested, &broken)) {
        if (ctx.cancel.cancelled()) return fail("cancelled");
        text.Emit(kNestedSeparator);
        auto e = dac::ReadException(ctx.dac, obj, read_options);
        if (!e.ok()) {
          result["nested_exceptions"] = list;
          return fail(std::string(e.status().message()));
        }
        list.push_back(ExceptionJson(*e));
        text.Exception(*e);
        flush();
      }
      result["nested_exceptions"] = list;
      if (broken) {
        return fail(absl::StrFormat("Error retrieving nested exception info %016X", *broken));
      }
    }
  }
  if (ctx.json) {
    WriteJson(ctx, result);
  } else {
    flush();
  }
  return {};
}

}  // namespace

void RegisterExceptionCommands(CommandRegistry& r) {
  r.Add({{"printexception", "pe", "PrintException"},
         "<arguments>",
         "Displays and formats fields of any object derived from the Exception class at the "
         "specified address.",
         "printexception [-nested] [<exception object address>]\n"
         "  The exception's type, message, inner exception, the stack trace recorded when it\n"
         "  was thrown (SP, IP, module!method+offset), its stack trace string and HResult.\n"
         "  Without an address: the current thread's last thrown exception (threads/setthread\n"
         "  choose the thread). Then says whether the thread has nested exceptions.\n"
         "  -nested  also print each nested exception of the current thread",
         PrintException});
}

}  // namespace clrdiag::sos
