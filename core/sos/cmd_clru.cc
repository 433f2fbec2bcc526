// clru: annotated disassembly of a managed method's jitted x64 code (SOS's `u`).
//
// The header is SOS's (JIT kind, method name, Begin/size or the hot and cold regions); each
// code line is "address bytes mnemonic operands" laid out as SOS prints it under LLDB (the
// reference host on Linux), with capstone's Intel text. Annotations follow SOS's x64 rules: a
// call names the managed method it reaches (through jumps and precode stubs) with its token,
// or the JIT helper. (SOS also names the MethodTable, string or object a constant is; not done
// yet: speculative DAC questions on such constants crashed the worker on .NET 8.) Register values
// are tracked through mov/lea so that calls through a register are resolved too.
#include <array>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/stack_walk.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
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

struct ClruOptions {
  bool eh_info = false;
  bool suppress_lines = false;
  bool offsets = false;
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
  void set_method(uint64_t module, uint32_t token) {
    module_ = module;
    token_ = token;
  }

  // Disassembles [begin, end) of `md`'s code; `asked` gets the ">>> " mark.
  void Region(uint64_t begin, uint64_t end, uint64_t asked, std::string* out, Json* list) {
    regs_.fill(std::nullopt);
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
      std::string note = Annotate(*insn);
      absl::StrAppend(out, CodeLine(*insn), note, "\n");
      item["bytes"] = insn->bytes;
      item["mnemonic"] = insn->mnemonic;
      item["operands"] = insn->operands;
      if (!note.empty()) item["annotation"] = note.substr(2, note.size() - 3);
      list->push_back(item);
      ip += insn->size;
    }
    if (o_.eh_info) EhMarks(ip - begin, out);
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
  std::string Annotate(const X64Instruction& insn) {
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
        }
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

  std::string MethodNote(uint64_t md) {
    if (!Readable(md)) return "";
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
        if (md && *md >= kSmallestPointer && Readable(*md) && ctx_.dac.GetMethodDesc(*md).ok()) {
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
          if (md && *md >= kSmallestPointer && Readable(*md) && ctx_.dac.GetMethodDesc(*md).ok()) {
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
    } else if (a == "-gcinfo" || a == "-il" || a == "-map") {
      return Failure(absl::StrCat("clru ", a, " is not supported yet"));
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
  if (o.eh_info) {
    auto eh = ctx.dac.GetEhClauses(header->method_start);
    if (eh.ok()) {
      u.set_eh_clauses(*eh);
    } else {
      absl::StrAppend(&out, "Failed to gather EHInfo data\n");
      opts.eh_info = false;
    }
  }
  const uint64_t asked = given_md ? 0 : address;
  Json regions = Json::array();
  if (header->cold_region_start != 0) {
    absl::StrAppendFormat(&out, "Begin %s, size %x. Cold region begin %s, size %x\n",
                          Ptr(header->method_start), header->hot_region_size,
                          Ptr(header->cold_region_start), header->cold_region_size);
    Json hot = Json::array(), cold = Json::array();
    absl::StrAppend(&out, "Hot region:\n");
    u.Region(header->method_start, header->method_start + header->hot_region_size, asked, &out,
             &hot);
    absl::StrAppend(&out, "Cold region:\n");
    u.Region(header->cold_region_start, header->cold_region_start + header->cold_region_size, asked,
             &out, &cold);
    regions.push_back(Json{{"begin", JsonHex(header->method_start)},
                           {"size", header->hot_region_size},
                           {"instructions", hot}});
    regions.push_back(Json{{"begin", JsonHex(header->cold_region_start)},
                           {"size", header->cold_region_size},
                           {"instructions", cold}});
  } else {
    absl::StrAppendFormat(&out, "Begin %s, size %x\n", Ptr(header->method_start),
                          header->method_size);
    Json list = Json::array();
    u.Region(header->method_start, header->method_start + header->method_size, asked, &out, &list);
    regions.push_back(Json{{"begin", JsonHex(header->method_start)},
                           {"size", header->method_size},
                           {"instructions", list}});
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
         "clru [-ehinfo] [-n] [-o] <MethodDesc address | code address>\n"
         "  The method's jitted x64 code, one instruction a line, with the source line of each\n"
         "  run of instructions (from a portable PDB beside the assembly) and the methods and\n"
         "  JIT helpers that calls reach.\n"
         "  -ehinfo  marks the exception clauses' boundaries\n"
         "  -n       no source lines\n"
         "  -o       each instruction's offset from the method's start\n"
         "  A code address gets a '>>> ' mark. -gcinfo, -il and -map are not supported yet.",
         Clru});
}

}  // namespace clrdiag::sos
