// clru: annotated disassembly of a managed method's jitted x64 code (SOS's `u`).
//
// The header is SOS's (JIT kind, method name, Begin/size or the hot and cold regions); each
// code line is "address bytes mnemonic operands" laid out as SOS prints it under LLDB (the
// reference host on Linux), with capstone's Intel text. Annotations follow SOS's x64 rules: a
// call names the managed method it reaches (through jumps and precode stubs) with its token,
// or the JIT helper; a constant moved into a register or pushed names the MethodTable, string,
// object, MethodDesc or JIT helper it is. Register values are tracked through mov/lea so that
// calls through a register are resolved too.
//
// Constants are classified without handing the DAC arbitrary addresses: .NET 8's
// GetMethodTableData dies (SIGSEGV) on a readable address that is no MethodTable, e.g. the
// Module pointer the JIT passes to CORINFO_HELP_GETSHARED_NONGCSTATIC_BASE. A value is asked
// about as a MethodTable only when its memory looks like one (its m_pModule at +0x18 is a
// loaded module, its parent at +0x10 null or readable), as an object only inside a GC heap
// segment and with such a MethodTable, as a MethodDesc only when its chunk's MethodTable looks
// like one.
//
// -gcinfo interleaves the `gcinfo` text (core/dac/gcinfo_decoder) as SOS does: the lines
// without an offset first, then each "<offset> ..." line before the first instruction at or
// after that offset (the cold region counts on from the hot region's size).
//
// -il interleaves the method's IL as SOS's `u -il` does (docs/clru-il-notes.md): the DAC's
// IL-to-native map (listed with -map), the whole IL once before "Begin" (dumpil's text, through
// the same decoder and token names), then each instruction's group of IL (il_groups.h) before
// the first native instruction of the range the map gives it. The reference's `sos u` prints
// only up to its first instruction (no disassembler in dotnet-dump), so the groups follow SOS's
// source. A dynamic method (DynamicMethod) stops after its name, as in SOS.
#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/gcinfo_decoder.h"
#include "core/dac/stack_walk.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/il_disasm.h"
#include "core/sos/il_groups.h"
#include "core/sos/il_names.h"
#include "core/sos/json.h"
#include "core/sos/stack_format.h"
#include "core/sos/x64_disasm.h"

namespace clrdiag::sos {
namespace {

constexpr int kTypeJit = 1;   // DacJitType TYPE_JIT
constexpr int kTypePjit = 2;  // TYPE_PJIT (ReadyToRun)
// An instruction is at most 15 bytes.
constexpr size_t kMaxInstruction = 15;
// SOS shows this many instructions at an address outside managed code.
constexpr int kUnmanagedInstructions = 10;
// Jumps followed from a call target before giving up (a loop of stubs must not hang us).
constexpr int kMaxJumpChain = 8;
// Values below this are never pointers worth a DAC question.
constexpr uint64_t kSmallestPointer = 0x10000;

std::string Ptr(uint64_t v) { return absl::StrFormat("%016X", v); }

// A metadata token's row number: 0 in a stub's nil token (0x06000000).
constexpr uint32_t kTokenRidMask = 0x00ffffff;

// What an IL-to-native map entry's IL offset is (CLRDATA_IL_OFFSET_*).
const char* IlOffsetKind(uint32_t il_offset) {
  switch (il_offset) {
    case 0xfffffffe:
      return "prolog";
    case 0xfffffffd:
      return "epilog";
    case 0xffffffff:
      return "no_mapping";
    default:
      return "il";
  }
}

// CoreCLR x64 layouts used to vet a constant before the DAC is asked about it (the same on
// .NET 8, 9 and 10; MethodTables and MethodDescs are vetted by DacProcess::LooksLikeMethodTable
// and LooksLikeMethodDesc).
// System.String: the length (int32) at +8, the characters from +0xc; SOS refuses longer ones.
constexpr uint64_t kStringLengthOffset = 8;
constexpr uint64_t kStringCharsOffset = 12;
constexpr uint32_t kMaxStringChars = 0x200000;

struct ClruOptions {
  bool eh_info = false;
  bool suppress_lines = false;
  bool offsets = false;
  bool gc_info = false;
  bool map = false;
  bool il = false;
};

int RuntimeMajor(const CommandContext& ctx) {
  for (const std::string* s : {&ctx.runtime.version, &ctx.runtime.framework_version,
                               &ctx.runtime.version_string, &ctx.location.version_string}) {
    int major = 0;
    if (!s->empty() && absl::SimpleAtoi(s->substr(0, s->find('.')), &major) && major > 0) {
      return major;
    }
  }
  return 0;
}

// The GC info text, handed out as SOS's disassembler does: a line that starts with a hex
// number followed by white space is due at that code offset; any other line is due at once.
class GcInfoLines {
 public:
  explicit GcInfoLines(const std::string& text) {
    size_t at = 0;
    while (at < text.size()) {
      size_t nl = text.find('\n', at);
      if (nl == std::string::npos) {
        lines_.push_back(text.substr(at));
        break;
      }
      lines_.push_back(text.substr(at, nl - at));
      at = nl + 1;
    }
  }

  // The lines due at or before `offset` not handed out yet.
  std::vector<std::string> Through(uint64_t offset) {
    std::vector<std::string> out;
    while (next_ < lines_.size()) {
      const std::string& l = lines_[next_];
      size_t digits = 0;
      while (digits < l.size() && std::isxdigit(static_cast<unsigned char>(l[digits]))) ++digits;
      if (digits > 0 && digits < l.size() && std::isspace(static_cast<unsigned char>(l[digits]))) {
        uint64_t line_offset = 0;
        if (!absl::SimpleHexAtoi(l.substr(0, digits), &line_offset) || line_offset > offset) break;
      }
      out.push_back(l);
      ++next_;
    }
    return out;
  }

 private:
  std::vector<std::string> lines_;
  size_t next_ = 0;
};

const char* EhTypeName(int32_t type) {
  switch (type) {
    case 0:
      return "FAULT";
    case 1:
      return "FINALLY";
    case 2:
      return "FILTER";
    case 3:
      return "TYPED";
    default:
      return "UNKNOWN";
  }
}

class Unassembler {
 public:
  Unassembler(CommandContext& ctx, X64Disassembler& dis, const ClruOptions& o)
      : ctx_(ctx), dis_(dis), o_(o) {}

  void set_eh_clauses(std::vector<dac::EhClause> c) { eh_ = std::move(c); }
  void set_gc_info(GcInfoLines* g) { gc_ = g; }
  void set_il_groups(il::IlGroups* g) { il_ = g; }
  void set_method(uint64_t module, uint32_t token) {
    module_ = module;
    token_ = token;
  }

  // Disassembles [begin, end) of `md`'s code; `asked` gets the ">>> " mark. `gc_base`: the
  // code offset of `begin` for the GC info (the hot region's size in the cold region).
  // Returns the GC info lines printed after the last instruction.
  std::vector<std::string> Region(uint64_t begin, uint64_t end, uint64_t asked, std::string* out,
                                  Json* list, uint64_t gc_base = 0) {
    regs_.fill(std::nullopt);
    if (il_ != nullptr) il_->StartRegion();
    uint64_t ip = begin;
    uint32_t cur_line = 0;
    bool have_line = false;
    while (ip < end && !ctx_.cancel.cancelled()) {
      Json item{{"address", JsonHex(ip)}, {"offset", ip - begin}};
      if (!o_.suppress_lines) {
        dac::StackFrame f;
        f.ip = ip;
        f.module = module_;
        f.method_token = token_;
        ctx_.dac.FindIlOffsetAt(ip, &f);
        if (f.has_il_offset) ResolveSourceLine(ctx_.dac, &f);
        if (!f.source_file.empty()) {
          if (!have_line || f.source_line != cur_line) {
            absl::StrAppend(out, "\n", f.source_file, " @ ", f.source_line, ":\n");
            have_line = true;
            cur_line = f.source_line;
          }
          item["source"] = Json{{"file", f.source_file}, {"line", f.source_line}};
        }
      }
      if (il_ != nullptr) {
        std::vector<std::string> il = il_->At(ip);
        for (const std::string& l : il) absl::StrAppend(out, l, "\n");
        if (!il.empty()) item["il"] = il;
      }
      if (gc_ != nullptr) {
        std::vector<std::string> gc = gc_->Through(ip - begin + gc_base);
        for (const std::string& l : gc) absl::StrAppend(out, l, "\n");
        if (!gc.empty()) item["gc_info"] = gc;
      }
      if (o_.eh_info) EhMarks(ip - begin, out);
      if (ip == asked) absl::StrAppend(out, ">>> ");
      if (o_.offsets) absl::StrAppendFormat(out, "%04x ", ip - begin);
      auto insn = DecodeAt(ip, end);
      if (!insn) {
        absl::StrAppendFormat(out, "%016x ??\n", ip);
        item["bytes"] = "";
        item["invalid"] = true;
        list->push_back(item);
        ++ip;
        continue;
      }
      Json constant;
      std::string note = Annotate(*insn, &constant);
      if (!constant.is_null()) item["constant"] = constant;
      absl::StrAppend(out, CodeLine(*insn), note, "\n");
      item["bytes"] = insn->bytes;
      item["mnemonic"] = insn->mnemonic;
      item["operands"] = insn->operands;
      if (!note.empty()) item["annotation"] = note.substr(2, note.size() - 3);
      list->push_back(item);
      ip += insn->size;
    }
    // SOS's end-of-region GC info ignores `gc_base` (in the cold region that prints nothing).
    std::vector<std::string> trailing;
    if (gc_ != nullptr) {
      trailing = gc_->Through(ip - begin);
      for (const std::string& l : trailing) absl::StrAppend(out, l, "\n");
    }
    if (o_.eh_info) EhMarks(ip - begin, out);
    return trailing;
  }

  // SOS's line under LLDB: address, the bytes padded to 21 columns, the mnemonic padded to 8.
  static std::string CodeLine(const X64Instruction& insn) {
    std::string s = absl::StrFormat("%016x ", insn.address);
    absl::StrAppend(&s, insn.bytes);
    size_t pad = insn.bytes.size() < 20 ? 21 - insn.bytes.size() : 1;
    s.append(pad, ' ');
    absl::StrAppend(&s, insn.mnemonic);
    pad = insn.mnemonic.size() < 7 ? 8 - insn.mnemonic.size() : 1;
    s.append(pad, ' ');
    absl::StrAppend(&s, insn.operands);
    return s;
  }

  std::optional<X64Instruction> DecodeAt(uint64_t ip, uint64_t end = UINT64_MAX) {
    std::array<uint8_t, kMaxInstruction> buf{};
    size_t want = std::min<uint64_t>(buf.size(), end - ip);
    size_t got = ctx_.dac.ReadTargetMemory(ip, buf.data(), want);
    if (got == 0) return std::nullopt;
    return dis_.Decode(buf.data(), got, ip);
  }

  std::optional<uint64_t> ReadPointer(uint64_t address) {
    uint64_t v = 0;
    if (ctx_.dac.ReadTargetMemory(address, &v, sizeof(v)) != sizeof(v)) return std::nullopt;
    return v;
  }

 private:
  // The annotation of one instruction (" (...)" or ""), updating the tracked registers.
  // `constant` gets what an annotated constant is, for JSON.
  std::string Annotate(const X64Instruction& insn, Json* constant) {
    using Kind = X64Instruction::Kind;
    std::string note;
    std::optional<uint64_t> value;
    if (insn.immediate) {
      value = insn.immediate;
    } else if (insn.source_register != kNoRegister) {
      value = regs_[insn.source_register];
    } else if (insn.rip_relative) {
      value = insn.kind == Kind::kLea ? insn.rip_relative : ReadPointer(*insn.rip_relative);
    } else if (insn.memory_base != kNoRegister && regs_[insn.memory_base]) {
      value =
          insn.kind == Kind::kLea ? regs_[insn.memory_base] : ReadPointer(*regs_[insn.memory_base]);
    }
    switch (insn.kind) {
      case Kind::kMov:
      case Kind::kLea:
        if (insn.dest_register != kNoRegister) {
          regs_[insn.dest_register] = value;
          if (insn.kind == Kind::kMov && insn.immediate) note = DescribeValue(*value, constant);
        }
        break;
      case Kind::kPush:
        if (insn.immediate) note = DescribeValue(*insn.immediate, constant);
        break;
      case Kind::kCall:
        if (value) note = DescribeCall(*value, insn.rip_relative);
        // The call clobbers the caller-saved registers (System V: also rsi and rdi).
        for (int r : {0, 1, 2, 6, 7, 8, 9, 10, 11}) regs_[r] = std::nullopt;
        break;
      default:
        if (insn.dest_register != kNoRegister) regs_[insn.dest_register] = std::nullopt;
        break;
    }
    return note;
  }

  // What a constant is, as SOS says it: " (MT: name)", " (\"string\")", " (Object: name)",
  // " (MD: name)", " (JitHelp: name)", or "".
  std::string DescribeValue(uint64_t v, Json* constant) {
    if (v < kSmallestPointer || !Readable(v)) {
      if (v >= kSmallestPointer) return HelperNote(v, constant);
      return "";
    }
    Json c{{"value", JsonHex(v)}};
    if (PlausibleMethodTable(v) && ctx_.dac.GetMethodTable(v).ok()) {
      auto name = ctx_.dac.GetMethodTableName(v);
      c["kind"] = "MethodTable";
      c["name"] = name.ok() ? *name : "<Unloaded Type>";
      *constant = c;
      return absl::StrCat(" (MT: ", c["name"].get<std::string>(), ")");
    }
    if (InGcHeap(v)) {
      auto mt = ReadPointer(v);
      if (mt) *mt &= ~uint64_t{7};  // the low bits are the GC's marks
      if (mt && PlausibleMethodTable(*mt) && ctx_.dac.GetMethodTable(*mt).ok()) {
        if (*mt == StringMethodTable()) {
          auto text = StringLiteral(v);
          if (text) {
            c["kind"] = "String";
            c["string"] = *text;
            *constant = c;
            return absl::StrCat(" (\"", *text, "\")");
          }
        } else {
          auto name = ctx_.dac.GetMethodTableName(*mt);
          c["kind"] = "Object";
          c["name"] = name.ok() ? *name : "<Unloaded Type>";
          *constant = c;
          return absl::StrCat(" (Object: ", c["name"].get<std::string>(), ")");
        }
      }
    }
    if (PlausibleMethodDesc(v) && ctx_.dac.GetMethodDesc(v).ok()) {
      auto name = ctx_.dac.GetMethodDescName(v);
      c["kind"] = "MethodDesc";
      c["name"] = name.ok() ? *name : "UNKNOWN";
      *constant = c;
      return absl::StrCat(" (MD: ", c["name"].get<std::string>(), ")");
    }
    return HelperNote(v, constant);
  }

  std::string HelperNote(uint64_t v, Json* constant) {
    auto name = ctx_.dac.GetJitHelperName(v);
    if (!name.ok()) return "";
    *constant = Json{{"value", JsonHex(v)}, {"kind", "JitHelper"}, {"name", *name}};
    return absl::StrCat(" (JitHelp: ", *name, ")");
  }

  // A string's characters as SOS's literal form prints them: printable ASCII as is, control
  // characters escaped (\n, \t, ...), anything else "\?".
  std::optional<std::string> StringLiteral(uint64_t obj) {
    uint32_t length = 0;
    if (ctx_.dac.ReadTargetMemory(obj + kStringLengthOffset, &length, sizeof(length)) !=
            sizeof(length) ||
        length > kMaxStringChars) {
      return std::nullopt;
    }
    std::u16string chars(length, u'\0');
    if (length != 0 && ctx_.dac.ReadTargetMemory(obj + kStringCharsOffset, chars.data(),
                                                 length * 2) != size_t{length} * 2) {
      return std::nullopt;
    }
    std::string out;
    for (char16_t ch : chars) {
      if (ch >= 0x20 && ch < 0x7f) {
        out += static_cast<char>(ch);
        continue;
      }
      out += '\\';
      switch (ch) {
        case u'\n':
          out += 'n';
          break;
        case u'\0':
          out += '0';
          break;
        case u'\t':
          out += 't';
          break;
        case u'\v':
          out += 'v';
          break;
        case u'\b':
          out += 'b';
          break;
        case u'\r':
          out += 'r';
          break;
        case u'\f':
          out += 'f';
          break;
        case u'\a':
          out += 'a';
          break;
        default:
          out += '?';
          break;
      }
    }
    return out;
  }

  // Memory that looks like a MethodTable: its module is a loaded module and its parent is null
  // or readable. Only then may the DAC be asked (see the top of the file).
  bool PlausibleMethodTable(uint64_t mt) { return ctx_.dac.LooksLikeMethodTable(mt); }

  // Memory that looks like a MethodDesc: its chunk's MethodTable looks like one.
  bool PlausibleMethodDesc(uint64_t md) { return ctx_.dac.LooksLikeMethodDesc(md); }

  bool InGcHeap(uint64_t address) {
    if (!segments_) {
      segments_.emplace();
      if (auto list = ctx_.dac.GetHeapSegments(); list.ok()) *segments_ = std::move(*list);
    }
    for (const dac::HeapSegment& s : *segments_) {
      if (address >= s.start && address < s.end) return true;
    }
    return false;
  }

  uint64_t StringMethodTable() {
    if (!string_mt_) {
      auto g = ctx_.dac.GetUsefulGlobals();
      string_mt_ = g.ok() ? g->string_mt : 0;
    }
    return *string_mt_;
  }

  std::string MethodNote(uint64_t md) {
    if (!Readable(md) || !PlausibleMethodDesc(md)) return "";
    auto info = ctx_.dac.GetMethodDesc(md);
    if (!info.ok()) return "";
    auto name = ctx_.dac.GetMethodDescName(md);
    return absl::StrCat(" (", name.ok() ? *name : "UNKNOWN", ", mdToken: ", Ptr(info->token), ")");
  }

  // Only memory the dump holds is worth a DAC question (speculative ones stay cheap and safe).
  bool Readable(uint64_t address) { return ReadPointer(address).has_value(); }

  uint64_t CodeMethodDesc(uint64_t ip) {
    auto h = ctx_.dac.GetCodeHeader(ip);
    return h.ok() ? h->method_desc : 0;
  }

  // The MethodDesc a call to `target` reaches: jitted code, through direct and rip-relative
  // jumps; or a precode stub's MethodDesc (a FixupPrecode's data follows its jump's slot, a
  // StubPrecode loads it into r10 first).
  uint64_t MethodForCall(uint64_t target) {
    uint64_t ip = target;
    for (int i = 0; i < kMaxJumpChain; ++i) {
      if (uint64_t md = CodeMethodDesc(ip); md != 0) return md;
      auto insn = DecodeAt(ip);
      if (!insn) return 0;
      if (insn->kind == X64Instruction::Kind::kMov && insn->rip_relative &&
          insn->dest_register == 10) {
        auto md = ReadPointer(*insn->rip_relative);
        if (md && PlausibleMethodDesc(*md) && ctx_.dac.GetMethodDesc(*md).ok()) {
          return *md;
        }
        return 0;
      }
      if (insn->kind != X64Instruction::Kind::kJump) return 0;
      if (insn->immediate) {
        ip = *insn->immediate;
      } else if (insn->rip_relative) {
        auto next = ReadPointer(*insn->rip_relative);
        if (!next) return 0;
        if (CodeMethodDesc(*next) == 0) {
          auto md = ReadPointer(*insn->rip_relative + 8);
          if (md && PlausibleMethodDesc(*md) && ctx_.dac.GetMethodDesc(*md).ok()) {
            return *md;
          }
        }
        ip = *next;
      } else {
        return 0;
      }
    }
    return 0;
  }

  // `slot`: where a call through memory read its target. A call through a FixupPrecode's data
  // (its target, then its MethodDesc) reaches the method even while the target is a stub
  // (call counting, the fixup thunk).
  std::string DescribeCall(uint64_t target, std::optional<uint64_t> slot) {
    if (target < kSmallestPointer) return "";
    if (uint64_t md = MethodForCall(target); md != 0) {
      std::string note = MethodNote(md);
      if (!note.empty()) return note;
    }
    if (slot && CodeMethodDesc(target) == 0) {
      auto md = ReadPointer(*slot + 8);
      if (md && *md >= kSmallestPointer) {
        std::string note = MethodNote(*md);
        if (!note.empty()) return note;
      }
    }
    if (auto name = ctx_.dac.GetJitHelperName(target); name.ok()) {
      return absl::StrCat(" (JitHelp: ", *name, ")");
    }
    return "";
  }

  // SOS's EH marks at a code offset: ends (cloned finally ones first), then beginnings from the
  // outermost clause in.
  void EhMarks(uint64_t offset, std::string* out) {
    auto cloned = [](const dac::EhClause& c) {
      return c.try_start == c.try_end && c.try_start == c.handler_start && c.type == 1 &&
             c.is_duplicate;
    };
    auto catch_name = [&](const dac::EhClause& c) -> std::string {
      if (c.type != 3) return "";
      std::string n;
      if (c.is_catch_all) {
        n = "...";
      } else if (c.module == 0) {
        auto name = ctx_.dac.GetMethodTableName(c.catch_mt);
        if (name.ok()) n = *name;
      }
      return absl::StrCat(" catch(", n, ") ");
    };
    for (size_t i = 0; i < eh_.size(); ++i) {
      if (cloned(eh_[i]) && offset == eh_[i].handler_end) {
        absl::StrAppend(out, "EHHandler ", i, ": CLONED FINALLY END\n");
      }
    }
    for (size_t i = 0; i < eh_.size(); ++i) {
      const dac::EhClause& c = eh_[i];
      if (c.is_duplicate) continue;
      if (offset == c.try_end) {
        absl::StrAppend(out, "EHHandler ", i, ": ", EhTypeName(c.type), " CLAUSE END\n");
      }
      if (offset == c.handler_end) {
        absl::StrAppend(out, "EHHandler ", i, ": ", EhTypeName(c.type), " HANDLER END\n");
      }
    }
    for (size_t k = eh_.size(); k-- > 0;) {
      const dac::EhClause& c = eh_[k];
      if (cloned(c) && offset == c.handler_start) {
        absl::StrAppend(out, "EHHandler ", k, ": CLONED FINALLY BEGIN\n");
      }
      if (c.is_duplicate) continue;
      if (offset == c.try_start) {
        absl::StrAppend(out, "EHHandler ", k, ": ", EhTypeName(c.type), " CLAUSE BEGIN",
                        catch_name(c), "\n");
      }
      if (offset == c.handler_start) {
        absl::StrAppend(out, "EHHandler ", k, ": ", EhTypeName(c.type), " HANDLER BEGIN",
                        catch_name(c), "\n");
      }
      if (c.type == 2 && offset == c.filter) {
        absl::StrAppend(out, "EHHandler ", k, ": ", EhTypeName(c.type), " FILTER BEGIN\n");
      }
    }
  }

  CommandContext& ctx_;
  X64Disassembler& dis_;
  const ClruOptions& o_;
  std::vector<dac::EhClause> eh_;
  GcInfoLines* gc_ = nullptr;
  il::IlGroups* il_ = nullptr;
  std::optional<std::vector<dac::HeapSegment>> segments_;
  std::optional<uint64_t> string_mt_;
  uint64_t module_ = 0;
  uint32_t token_ = 0;
  std::array<std::optional<uint64_t>, 16> regs_{};
};

CommandResult Clru(CommandContext& ctx, const CommandSpec& spec,
                   const std::vector<std::string>& args) {
  ClruOptions o;
  std::vector<std::string> positional;
  for (const std::string& a : args) {
    if (a == "-ehinfo") {
      o.eh_info = true;
    } else if (a == "-n") {
      o.suppress_lines = true;
    } else if (a == "-o") {
      o.offsets = true;
    } else if (a == "/d") {
      // DML links: plain text here.
    } else if (a == "-gcinfo") {
      o.gc_info = true;
    } else if (a == "-map") {
      // SOS lists the IL-to-native map only together with -il; alone it changes nothing.
      o.map = true;
    } else if (a == "-il") {
      o.il = true;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 1) return UsageError(spec, "give one MethodDesc or code address");
  uint64_t address = 0;
  if (!ParseHexAddress(positional[0], &address)) {
    return UsageError(spec, absl::StrCat("'", positional[0], "' is not a hex address"));
  }
  auto dis = X64Disassembler::Create();
  if (!dis.ok()) return Failure(std::string(dis.status().message()));
  ClruOptions& opts = o;
  Unassembler u(ctx, **dis, opts);

  // A MethodDesc, else code: the MethodDesc of the code holding it.
  uint64_t md = 0;
  auto md_info = ctx.dac.GetMethodDesc(address);
  const bool given_md = address != 0 && md_info.ok();
  if (given_md) {
    md = address;
  } else {
    auto h = address != 0 ? ctx.dac.GetCodeHeader(address) : absl::NotFoundError("0");
    if (!h.ok() || h->method_desc == 0 || h->jit_type == 0) {
      // Not managed code: a few instructions from the address, as SOS shows them.
      std::string out = "Unmanaged code\n";
      Json list = Json::array();
      uint64_t ip = address;
      for (int i = 0; i < kUnmanagedInstructions; ++i) {
        auto insn = u.DecodeAt(ip);
        if (!insn) break;
        absl::StrAppend(&out, Unassembler::CodeLine(*insn), "\n");
        list.push_back(Json{{"address", JsonHex(ip)},
                            {"bytes", insn->bytes},
                            {"mnemonic", insn->mnemonic},
                            {"operands", insn->operands}});
        ip += insn->size;
      }
      if (list.empty()) {
        if (!ctx.json) ctx.out.Write(out);
        return Failure(absl::StrFormat(
            "%016x is not in managed code and no code could be read there", address));
      }
      if (ctx.json) {
        WriteJson(ctx, Json{{"address", JsonHex(address)}, {"managed", false}, {"code", list}});
      } else {
        ctx.out.Write(out);
      }
      return {};
    }
    md = h->method_desc;
    md_info = ctx.dac.GetMethodDesc(md);
    if (!md_info.ok())
      return Failure(absl::StrFormat("Failed to get method desc for %s.", Ptr(address)));
  }
  if (!md_info->has_native_code) {
    if (ctx.json) {
      WriteJson(ctx, Json{{"method_desc", JsonHex(md)}, {"jitted", false}});
    } else {
      ctx.out.Write("Not jitted yet\n");
    }
    return {};
  }
  auto header = ctx.dac.GetCodeHeader(given_md ? md_info->native_code : address);
  if (!header.ok()) return Failure("Unable to get codeHeader information");
  if (header->method_start == 0) return Failure("not a valid MethodDesc");
  std::string out;
  Json j{{"method_desc", JsonHex(md)}};
  if (header->jit_type == kTypeJit) {
    out = "Normal JIT generated code\n";
    j["jit"] = "JIT";
  } else if (header->jit_type == kTypePjit) {
    out = "preJIT generated code\n";
    j["jit"] = "preJIT";
  } else {
    return Failure("unknown Jit");
  }
  auto name = ctx.dac.GetMethodDescName(md);
  absl::StrAppend(&out, name.ok() ? *name : "UNKNOWN", "\n");
  j["name"] = name.ok() ? *name : "UNKNOWN";
  j["token"] = JsonHex(md_info->token);
  u.set_method(md_info->module, md_info->token);
  const uint64_t asked = given_md ? 0 : address;
  // -il: the IL-to-native map of this code (SOS asks for it only with -il; -map lists it).
  std::vector<dac::IlAddressMapEntry> il_map;
  if (o.il) {
    auto map = ctx.dac.GetIlAddressMap(header->method_start);
    if (map.ok()) {
      il_map = std::move(*map);
      Json entries = Json::array();
      for (const dac::IlAddressMapEntry& e : il_map) {
        if (o.map) {
          absl::StrAppendFormat(&out, "%08x %s %s\n", e.il_offset, Ptr(e.start), Ptr(e.end));
        }
        entries.push_back(Json{{"il_offset", e.il_offset},
                               {"kind", IlOffsetKind(e.il_offset)},
                               {"start", JsonHex(e.start)},
                               {"end", JsonHex(e.end)}});
      }
      j["il_map"] = std::move(entries);
    } else {
      absl::StrAppend(&out, "Failed to get IL address map, proceeding without IL map\n");
      j["il_map_error"] = std::string(map.status().message());
    }
  }
  // A dynamic method (with its DynamicMethod object) is not disassembled, -il or not: SOS
  // stops here, successfully.
  auto il_location = ctx.dac.GetMethodIl(md);
  if (il_location.ok() && il_location->is_dynamic && il_location->dynamic_method_object != 0) {
    const std::string message = "Disassembly of dynamic methods is not supported";
    if (ctx.json) {
      j["dynamic_method_object"] = JsonHex(il_location->dynamic_method_object);
      j["message"] = message;
      WriteJson(ctx, j);
    } else {
      ctx.out.Write(absl::StrCat(out, message, "\n"));
    }
    return {};
  }
  // -il: the IL (a stub without a token has none), listed whole once, then grouped by the map.
  std::optional<il::IlGroups> il_groups;
  if (o.il && il_location.ok() && (il_location->token & kTokenRidMask) != 0) {
    Json notes = Json::array();
    if (il_location->profiler_modified) notes.push_back("Found profiler modified IL");
    if (!il_location->problem.empty()) notes.push_back(il_location->problem);
    for (const auto& n : notes) absl::StrAppend(&out, n.get<std::string>(), "\n");
    if (!notes.empty()) j["il_messages"] = std::move(notes);
    const uint64_t il_address = il_location->il_address;
    if (il_address != 0 && !il_map.empty()) {
      auto body = il::ReadMethodBody([&](uint32_t offset, uint8_t* buffer, size_t size) {
        return ctx.dac.ReadTargetMemory(il_address + offset, buffer, size);
      });
      std::vector<il::Line> lines;
      auto disassemble = [&](const il::TokenTextFn& names) {
        lines = il::Disassemble(*body, names);
        return absl::OkStatus();
      };
      if (body.ok() && il::WithModuleTokenNames(ctx.dac, il_location->module, disassemble).ok()) {
        absl::StrAppend(&out, il::LinesText(lines));
        Json listing = Json::array();
        for (const il::Line& l : lines) {
          listing.push_back(std::string(static_cast<size_t>(std::max(l.indent, 0)), ' ') + l.text);
        }
        j["il_lines"] = std::move(listing);
        il_groups.emplace(lines, il_map);
        u.set_il_groups(&*il_groups);
      }
    }
  }
  Json regions = Json::array();
  if (header->cold_region_start != 0) {
    absl::StrAppendFormat(&out, "Begin %s, size %x. Cold region begin %s, size %x\n",
                          Ptr(header->method_start), header->hot_region_size,
                          Ptr(header->cold_region_start), header->cold_region_size);
  } else {
    absl::StrAppendFormat(&out, "Begin %s, size %x\n", Ptr(header->method_start),
                          header->method_size);
  }
  // -gcinfo: SOS reads and decodes the GC info after the "Begin" line and stops there if it
  // cannot.
  std::optional<GcInfoLines> gc_lines;
  if (o.gc_info) {
    std::vector<uint8_t> bytes(size_t{header->method_size} * 2 + 40);
    if (header->gc_info == 0 ||
        ctx.dac.ReadTargetMemory(header->gc_info, bytes.data(), bytes.size()) != bytes.size()) {
      if (!ctx.json) ctx.out.Write(out);
      return Failure(absl::StrCat("Could not read memory ", Ptr(header->gc_info)));
    }
    namespace gi = dac::gcinfo;
    auto decoded = gi::Decode(bytes, gi::VersionForRuntime(RuntimeMajor(ctx)));
    if (!decoded.ok()) {
      if (!ctx.json) ctx.out.Write(out);
      return Failure(absl::StrCat("Cannot decode the GC info at ", Ptr(header->gc_info), ": ",
                                  decoded.status().message()));
    }
    gc_lines.emplace(gi::FormatLikeSos(*decoded));
    u.set_gc_info(&*gc_lines);
    j["gc_info"] = JsonHex(header->gc_info);
  }
  if (o.eh_info) {
    auto eh = ctx.dac.GetEhClauses(header->method_start);
    if (eh.ok()) {
      u.set_eh_clauses(*eh);
    } else {
      absl::StrAppend(&out, "Failed to gather EHInfo data\n");
      opts.eh_info = false;
    }
  }
  auto region_json = [](uint64_t begin, uint64_t size, Json list,
                        const std::vector<std::string>& trailing) {
    Json r{{"begin", JsonHex(begin)}, {"size", size}, {"instructions", std::move(list)}};
    if (!trailing.empty()) r["gc_info_after"] = trailing;
    return r;
  };
  if (header->cold_region_start != 0) {
    Json hot = Json::array(), cold = Json::array();
    absl::StrAppend(&out, "Hot region:\n");
    auto hot_end = u.Region(header->method_start, header->method_start + header->hot_region_size,
                            asked, &out, &hot);
    absl::StrAppend(&out, "Cold region:\n");
    auto cold_end =
        u.Region(header->cold_region_start, header->cold_region_start + header->cold_region_size,
                 asked, &out, &cold, header->hot_region_size);
    regions.push_back(
        region_json(header->method_start, header->hot_region_size, std::move(hot), hot_end));
    regions.push_back(region_json(header->cold_region_start, header->cold_region_size,
                                  std::move(cold), cold_end));
  } else {
    Json list = Json::array();
    auto end = u.Region(header->method_start, header->method_start + header->method_size, asked,
                        &out, &list);
    regions.push_back(region_json(header->method_start, header->method_size, std::move(list), end));
  }
  if (ctx.cancel.cancelled()) return Failure("cancelled");
  if (asked != 0) j["ip"] = JsonHex(asked);
  j["regions"] = regions;
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterClruCommand(CommandRegistry& r) {
  r.Add({{"clru", "u"},
         "<arguments>",
         "Displays an annotated disassembly of a managed method.",
         "clru [-gcinfo] [-ehinfo] [-n] [-o] [-il [-map]] <MethodDesc address | code address>\n"
         "  The method's jitted x64 code, one instruction a line, with the source line of each\n"
         "  run of instructions (from a portable PDB beside the assembly), the methods and JIT\n"
         "  helpers that calls reach, and what constants moved or pushed are: \"(MT: type)\",\n"
         "  a string literal \"(\"text\")\", \"(Object: type)\", \"(MD: method)\", \"(JitHelp: "
         "name)\".\n"
         "  -gcinfo  interleaves the GC info (as `gcinfo` prints it): the header lines first,\n"
         "           then each offset's interruptibility, safe point and slot changes before\n"
         "           the instruction at that offset\n"
         "  -ehinfo  marks the exception clauses' boundaries\n"
         "  -n       no source lines\n"
         "  -o       each instruction's offset from the method's start\n"
         "  -il      the method's IL (as dumpil prints it) once before the code, then each\n"
         "           IL instruction again before the native code the JIT made of it (by the\n"
         "           runtime's IL-to-native map)\n"
         "  -map     with -il, lists the IL-to-native map first (IL offset, native start and\n"
         "           end); alone it changes nothing, as in SOS\n"
         "  A code address gets a '>>> ' mark. A dynamic method (DynamicMethod) is not\n"
         "  disassembled, as in SOS.",
         Clru});
}

}  // namespace clrdiag::sos
