// Memory and thread-state commands: d/readmemory and its size variants (db, dc, da, du, dw,
// dd, dp, dq), threadstate.
//
// The memory dump follows dotnet-dump's readmemory: the element format (count, length, width,
// the ascii/unicode columns and string modes) and the next address are remembered by the
// session, so a bare `d` goes on where the last dump stopped in the last format; each size
// variant first resets the format to its own defaults. Bytes not in the dump print as `??`.
#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

// A size variant's format, applied before the user's options.
struct MemoryFormat {
  int count, length, width;
  bool ascii, unicode, ascii_string, unicode_string;
};

struct VariantDefaults {
  const char* name;
  const char* summary;
  MemoryFormat format;
};

// From the reference's command table (length -1: the pointer size).
constexpr VariantDefaults kVariants[] = {
    {"db", "Dumps memory as bytes.", {128, 1, 16, true, false, false, false}},
    {"dc", "Dumps memory as chars.", {64, 2, 8, false, true, false, false}},
    {"da", "Dumps memory as zero-terminated byte strings.", {128, 1, 0, false, false, true, false}},
    {"du", "Dumps memory as zero-terminated char strings.", {128, 2, 0, false, false, false, true}},
    {"dw", "Dumps memory as words (ushort).", {128, 2, 0, false, false, false, false}},
    {"dd", "Dumps memory as dwords (uint).", {64, 4, 0, false, false, false, false}},
    {"dp", "Dumps memory as pointers.", {32, -1, 0, false, false, false, false}},
    {"dq", "Dumps memory as qwords (ulong).", {32, 8, 0, false, false, false, false}},
};

constexpr char kMemoryUsage[] =
    "%s [<address>] [options]\n"
    "  <address>             where to start (hex); without it, where the last dump ended\n"
    "  -e, --end <address>   dump up to this address (sets the count)\n"
    "  -c, --count <n>       number of elements\n"
    "  -l, --length <n>      bytes per element: 1, 2, 4 or 8 (-1: pointer size)\n"
    "  -w, --width <n>       elements per row (0: 32 bytes per row)\n"
    "  -a, --ascii           also show each element's first byte as a character\n"
    "  -u, --unicode         also show each element's first char (UTF-16)\n"
    "  --ascii-string        print the zero-terminated byte string at the address\n"
    "  --unicode-string      print the zero-terminated UTF-16 string at the address\n"
    "  -h, --hex-prefix      write 0x before each value\n"
    "  --show-address        start each row with its address (default true)\n"
    "  Options take their value as `-c 16`, `-c:16` or `-c=16`; flags as `-a` or `--ascii:false`.\n"
    "  The format and the next address are remembered: a bare `d` continues.";

bool ParseBool(const std::string& v, bool* out) {
  std::string l = absl::AsciiStrToLower(v);
  if (l == "true") return *out = true, true;
  if (l == "false") return *out = false, true;
  return false;
}

struct ParsedMemoryArgs {
  std::optional<uint64_t> address, end;
  bool hex_prefix = false;
  bool show_address = true;
};

// Parses `args` into `state`'s remembered format and `parsed`; "" or the problem.
std::string ParseMemoryArgs(const std::vector<std::string>& args, MemoryDumpState* state,
                            ParsedMemoryArgs* parsed) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      uint64_t addr;
      if (!ParseHexAddress(a, &addr)) return absl::StrCat("'", a, "' is not a hex address");
      if (parsed->address) return absl::StrCat("unexpected argument '", a, "'");
      parsed->address = addr;
      continue;
    }
    std::string name = a, inline_value;
    bool has_inline = false;
    size_t sep = a.find_first_of(":=");
    if (sep != std::string::npos) {
      name = a.substr(0, sep);
      inline_value = a.substr(sep + 1);
      has_inline = true;
    }
    auto take_value = [&](std::string* v) {
      if (has_inline) return *v = inline_value, true;
      if (i + 1 >= args.size()) return false;
      *v = args[++i];
      return true;
    };
    auto flag = [&](bool* target) -> std::string {
      if (has_inline) {
        if (!ParseBool(inline_value, target)) {
          return absl::StrCat(name, " takes true or false, not '", inline_value, "'");
        }
        return "";
      }
      bool b;
      if (i + 1 < args.size() && ParseBool(args[i + 1], &b)) {
        *target = b;
        ++i;
      } else {
        *target = true;
      }
      return "";
    };
    auto number = [&](int* target) -> std::string {
      std::string v;
      if (!take_value(&v)) return absl::StrCat(name, " needs a number");
      int n;
      if (!absl::SimpleAtoi(v, &n)) return absl::StrCat(name, " needs a number, not '", v, "'");
      *target = n;
      return "";
    };
    std::string problem;
    if (name == "-e" || name == "--end") {
      std::string v;
      uint64_t e;
      if (!take_value(&v) || !ParseHexAddress(v, &e)) return "--end needs a hex address";
      parsed->end = e;
    } else if (name == "-c" || name == "--count") {
      problem = number(&state->count);
    } else if (name == "-l" || name == "--length") {
      problem = number(&state->length);
    } else if (name == "-w" || name == "--width") {
      problem = number(&state->width);
    } else if (name == "-a" || name == "--ascii") {
      problem = flag(&state->ascii);
    } else if (name == "-u" || name == "--unicode") {
      problem = flag(&state->unicode);
    } else if (name == "--ascii-string") {
      problem = flag(&state->ascii_string);
    } else if (name == "--unicode-string") {
      problem = flag(&state->unicode_string);
    } else if (name == "-h" || name == "--hex-prefix") {
      problem = flag(&parsed->hex_prefix);
    } else if (name == "--show-address") {
      problem = flag(&parsed->show_address);
    } else {
      return absl::StrCat("unknown option '", a, "'");
    }
    if (!problem.empty()) return problem;
  }
  return "";
}

// One character the way the reference shows it: '?' unreadable, '.' unprintable; `zero` is
// returned as 0 when `zero_ok` (the string modes' terminator).
char ReadDisplayChar(const elf::CoreFile& core, uint64_t addr, bool unicode, bool zero_ok,
                     bool* readable = nullptr) {
  uint8_t buf[2] = {0, 0};
  size_t size = unicode ? 2 : 1;
  bool ok = core.ReadDumpedMemory(addr, buf, size) == size;
  if (readable) *readable = ok;
  if (!ok) return '?';
  unsigned value = unicode ? (buf[0] | (buf[1] << 8)) : buf[0];
  if (value == 0 && zero_ok) return 0;
  if (value < 0x20 || value > 0x7e) return '.';
  return static_cast<char>(value);
}

CommandResult DumpMemory(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args, const MemoryFormat* defaults) {
  MemoryDumpState& st = ctx.state.memory;
  MemoryDumpState saved = st;
  if (defaults) {
    st.count = defaults->count;
    st.length = defaults->length;
    st.width = defaults->width;
    st.ascii = defaults->ascii;
    st.unicode = defaults->unicode;
    st.ascii_string = defaults->ascii_string;
    st.unicode_string = defaults->unicode_string;
  }
  ParsedMemoryArgs parsed;
  std::string problem = ParseMemoryArgs(args, &st, &parsed);
  if (!problem.empty()) {
    st = saved;  // a mistyped command changes nothing
    return UsageError(spec, problem);
  }
  if (parsed.address) {
    st.next_address = *parsed.address;
  } else if (saved.next_address == 0 && st.next_address == 0) {
    st = saved;
    return UsageError(spec, "give an address: there is no earlier dump to continue from");
  }
  int length = st.length < 0 ? 8 : st.length;
  if (length != 1 && length != 2 && length != 4 && length != 8) length = 4;
  st.length = length;
  if (parsed.end) {
    if (*parsed.end <= st.next_address) {
      st = saved;
      return Failure("Cannot dump a negative range: --end must be above the start address");
    }
    st.count = static_cast<int>((*parsed.end - st.next_address) / length);
  }

  const elf::CoreFile& core = ctx.core;
  if (st.ascii_string || st.unicode_string) {
    const bool unicode = st.unicode_string;
    const uint64_t start = st.next_address;
    std::string text;
    bool readable = true;
    while (!ctx.cancel.cancelled()) {
      char ch = ReadDisplayChar(core, st.next_address, unicode, true, &readable);
      if (!readable) break;  // the reference would read '?' forever here
      st.next_address += unicode ? 2 : 1;
      if (ch == 0) break;
      text += ch;
    }
    if (ctx.json) {
      Json j{{"address", JsonHex(start)},
             {"encoding", unicode ? "utf-16" : "ascii"},
             {"text", text},
             {"terminated", readable},
             {"next_address", JsonHex(st.next_address)}};
      WriteJson(ctx, j);
    } else {
      std::string out = absl::StrCat("Text: '", text, "'\n");
      if (!readable) {
        absl::StrAppendFormat(&out, "(the string runs into memory not in the dump at %016x)\n",
                              st.next_address);
      }
      ctx.out.Write(out);
    }
    return {};
  }

  int count = st.count > 0 ? st.count : 32;
  st.count = count;
  int width = st.width > 0 ? st.width : 32 / length;
  st.width = width;
  int64_t remaining = static_cast<int64_t>(count) * length;
  uint64_t address = st.next_address;
  std::string out, line;
  Json values = Json::array();
  const uint64_t start = address;
  while (remaining > 0) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    line.clear();
    if (parsed.show_address) absl::StrAppendFormat(&line, "%016x:", address);
    for (int column = 0; column < width; ++column) {
      int64_t offset = static_cast<int64_t>(column) * length;
      line += ' ';
      if (offset >= remaining) {
        if (parsed.hex_prefix) line += "  ";
        line.append(length * 2, ' ');
        continue;
      }
      uint8_t data[8] = {};
      if (core.ReadDumpedMemory(address + offset, data, length) != static_cast<size_t>(length)) {
        if (parsed.hex_prefix) line += "  ";
        line.append(length * 2, '?');
        values.push_back(nullptr);
        continue;
      }
      uint64_t v = 0;
      std::memcpy(&v, data, length);  // little-endian target and host
      if (parsed.hex_prefix) line += "0x";
      absl::StrAppendFormat(&line, "%0*x", length * 2, v);
      values.push_back(JsonHex(v));
    }
    if (st.ascii || st.unicode) {
      line += "  ";
      for (int column = 0; column < width; ++column) {
        int64_t offset = static_cast<int64_t>(column) * length;
        if (offset < remaining) line += ReadDisplayChar(core, address + offset, st.unicode, false);
      }
    }
    address += static_cast<uint64_t>(width) * length;
    remaining -= static_cast<int64_t>(width) * length;
    if (!ctx.json) {
      out += line;
      out += '\n';
      if (out.size() > 64 * 1024) {
        ctx.out.Write(out);
        out.clear();
      }
    }
  }
  st.next_address = address;
  if (ctx.json) {
    WriteJson(ctx, Json{{"address", JsonHex(start)},
                        {"element_size", length},
                        {"count", count},
                        {"values", values},
                        {"next_address", JsonHex(address)}});
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// The thread state bits clrthreads shows, by name (strike.cpp's table).
struct ThreadStateBit {
  uint32_t bit;
  const char* name;
};
constexpr ThreadStateBit kThreadStates[] = {
    {0x1, "Thread Abort Requested"},
    {0x2, "GC Suspend Pending"},
    {0x4, "User Suspend Pending"},
    {0x8, "Debug Suspend Pending"},
    {0x10, "GC On Transitions"},
    {0x20, "Legal to Join"},
    {0x40, "Yield Requested"},
    {0x80, "Hijacked by the GC"},
    {0x100, "Blocking GC for Stack Overflow"},
    {0x200, "Background"},
    {0x400, "Unstarted"},
    {0x800, "Dead"},
    {0x1000, "CLR Owns"},
    {0x2000, "CoInitialized"},
    {0x4000, "In Single Threaded Apartment"},
    {0x8000, "In Multi Threaded Apartment"},
    {0x10000, "Reported Dead"},
    {0x20000, "Fully initialized"},
    {0x40000, "Task Reset"},
    {0x80000, "Sync Suspended"},
    {0x100000, "Debug Will Sync"},
    {0x200000, "Stack Crawl Needed"},
    {0x400000, "Suspend Unstarted"},
    {0x800000, "Aborted"},
    {0x1000000, "Thread Pool Worker Thread"},
    {0x2000000, "Interruptible"},
    {0x4000000, "Interrupted"},
    {0x8000000, "Completion Port Thread"},
    {0x10000000, "Abort Initiated"},
    {0x20000000, "Finalized"},
    {0x40000000, "Failed to Start"},
    {0x80000000, "Detached"},
};

CommandResult ThreadState(CommandContext& ctx, const CommandSpec& spec,
                          const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError(spec, "give one thread state value (hex)");
  uint64_t state;
  if (!ParseHexAddress(args[0], &state)) {
    return UsageError(spec, absl::StrCat("'", args[0], "' is not a hex number"));
  }
  std::vector<std::string> names;
  for (const ThreadStateBit& b : kThreadStates) {
    if (state & b.bit) names.emplace_back(b.name);
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"state", JsonHex(state)}, {"flags", names}});
    return {};
  }
  std::string out;
  for (const std::string& n : names) absl::StrAppend(&out, "    ", n, "\n");
  if (names.empty()) absl::StrAppend(&out, "    No thread states for '", args[0], "'\n");
  ctx.out.Write(out);
  return {};
}

// The current thread's registers in the reference's order (its AMD64 CONTEXT: index, offset
// and size shown by -v). With register names as arguments, only those.
struct RegisterRow {
  const char* name;
  size_t offset, size;
  uint64_t elf::X64Registers::*value;
};
constexpr RegisterRow kRegisters[] = {
    {"cs", 0x38, 2, &elf::X64Registers::cs},         {"ds", 0x3A, 2, &elf::X64Registers::ds},
    {"es", 0x3C, 2, &elf::X64Registers::es},         {"fs", 0x3E, 2, &elf::X64Registers::fs},
    {"gs", 0x40, 2, &elf::X64Registers::gs},         {"ss", 0x42, 2, &elf::X64Registers::ss},
    {"eflags", 0x44, 4, &elf::X64Registers::eflags}, {"rax", 0x78, 8, &elf::X64Registers::rax},
    {"rcx", 0x80, 8, &elf::X64Registers::rcx},       {"rdx", 0x88, 8, &elf::X64Registers::rdx},
    {"rbx", 0x90, 8, &elf::X64Registers::rbx},       {"rsp", 0x98, 8, &elf::X64Registers::rsp},
    {"rbp", 0xA0, 8, &elf::X64Registers::rbp},       {"rsi", 0xA8, 8, &elf::X64Registers::rsi},
    {"rdi", 0xB0, 8, &elf::X64Registers::rdi},       {"r8", 0xB8, 8, &elf::X64Registers::r8},
    {"r9", 0xC0, 8, &elf::X64Registers::r9},         {"r10", 0xC8, 8, &elf::X64Registers::r10},
    {"r11", 0xD0, 8, &elf::X64Registers::r11},       {"r12", 0xD8, 8, &elf::X64Registers::r12},
    {"r13", 0xE0, 8, &elf::X64Registers::r13},       {"r14", 0xE8, 8, &elf::X64Registers::r14},
    {"r15", 0xF0, 8, &elf::X64Registers::r15},       {"rip", 0xF8, 8, &elf::X64Registers::rip},
};

CommandResult Registers(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  bool verbose = false;
  std::vector<const RegisterRow*> rows;
  for (const std::string& a : args) {
    std::string l = absl::AsciiStrToLower(a);
    if (l == "-v" || l == "--verbose") {
      verbose = true;
      continue;
    }
    const RegisterRow* found = nullptr;
    for (const RegisterRow& r : kRegisters) {
      if (l == r.name) found = &r;
    }
    if (!found) return UsageError(spec, absl::StrCat("unknown register or option '", a, "'"));
    rows.push_back(found);
  }
  if (rows.empty()) {
    for (const RegisterRow& r : kRegisters) rows.push_back(&r);
  }
  const auto& threads = ctx.core.threads();
  const int index = ctx.state.current_thread;
  if (index < 0 || static_cast<size_t>(index) >= threads.size()) {
    return Failure("no current thread: choose one with `threads <n>`");
  }
  const elf::X64Registers& regs = threads[index].regs;
  std::string out;
  Json j{{"thread", index}, {"os_thread_id", threads[index].tid}};
  Json values = Json::object();
  for (size_t i = 0; i < std::size(kRegisters); ++i) {
    const RegisterRow& r = kRegisters[i];
    if (std::find(rows.begin(), rows.end(), &r) == rows.end()) continue;
    uint64_t v = regs.*r.value;
    if (r.size < 8) v &= (uint64_t{1} << (r.size * 8)) - 1;
    if (verbose) {
      absl::StrAppendFormat(&out, "%s Index = %d Offset = %d Size = %d\n", r.name, i, r.offset,
                            r.size);
    }
    absl::StrAppendFormat(&out, "%s = 0x%0*X\n", r.name, static_cast<int>(r.size * 2), v);
    values[r.name] = JsonHex(v);
  }
  if (ctx.json) {
    j["registers"] = values;
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterMemoryCommands(CommandRegistry& r) {
  r.Add({{"d", "readmemory"},
         "<address>",
         "Dumps memory contents.",
         absl::StrFormat(kMemoryUsage, "d"),
         [](CommandContext& ctx, const CommandSpec& spec, const std::vector<std::string>& args) {
           return DumpMemory(ctx, spec, args, nullptr);
         }});
  for (const VariantDefaults& v : kVariants) {
    const MemoryFormat* format = &v.format;
    r.Add({{v.name},
           "<address>",
           v.summary,
           absl::StrFormat(kMemoryUsage, v.name),
           [format](CommandContext& ctx, const CommandSpec& spec,
                    const std::vector<std::string>& args) {
             return DumpMemory(ctx, spec, args, format);
           }});
  }
  r.Add({{"threadstate"},
         "<arguments>",
         "Pretty prints the meaning of a threads state.",
         "threadstate <state>\n"
         "  Names the bits of a thread state value (hex, as clrthreads' State column shows it).",
         ThreadState});
  r.Add({{"registers", "r"},
         "",
         "Displays the thread's registers.",
         "registers [-v] [<register>...]\n"
         "  The current thread's registers (choose the thread with `threads <n>`). -v adds each\n"
         "  register's index, offset and size in the AMD64 CONTEXT; names (rip, rsp, ...) show\n"
         "  only those.",
         Registers});
}

}  // namespace clrdiag::sos
