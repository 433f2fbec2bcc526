// Stack and thread-selection commands: clrstack, threads / setthread.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/dac/pe_image.h"
#include "core/dac/portable_pdb.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/stack_format.h"

namespace clrdiag::sos {
namespace {

// Symbol files larger than this are not read.
constexpr std::streamoff kMaxSymbolFileBytes = 512ll << 20;
// The PE headers read from the dump to identify a loaded assembly.
constexpr size_t kPeHeaderBytes = 4096;

std::optional<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::streamoff size = in.tellg();
  if (size <= 0 || size > kMaxSymbolFileBytes) return std::nullopt;
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) return std::nullopt;
  return bytes;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Source lines from portable PDBs next to the assemblies, as dotnet-dump finds them: the
// assembly's file on this host must be the build the dump loaded (TimeDateStamp and
// SizeOfImage of the headers in the dump), and the PDB's id must equal the assembly's
// CodeView record. One lookup per module and command. Only a directory holding <stem>.pdb is
// looked at further, so the large framework assemblies (no PDB beside them) are never read.
class SourceLines {
 public:
  explicit SourceLines(dac::DacProcess& dac) : dac_(dac) {}

  void Resolve(dac::StackFrame* f) {
    if (!f->has_il_offset || f->module == 0 || f->method_token == 0) return;
    const dac::PortablePdb* pdb = ForModule(f->module);
    if (!pdb) return;
    auto line = pdb->LineForIlOffset(f->method_token, f->il_offset);
    if (!line) return;
    f->source_file = line->file;
    f->source_line = line->line;
  }

 private:
  const dac::PortablePdb* ForModule(uint64_t module) {
    auto it = cache_.find(module);
    if (it == cache_.end()) it = cache_.emplace(module, Load(module)).first;
    return it->second.get();
  }

  std::unique_ptr<dac::PortablePdb> Load(uint64_t module) {
    auto details = dac_.GetModuleDetails(module);
    if (!details.ok() || details->il_base == 0) return nullptr;
    auto path = dac_.GetModuleFileName(module);
    if (!path.ok() || path->empty()) return nullptr;
    const std::string dir = DirName(*path);
    std::string stem = BaseName(*path);
    if (size_t dot = stem.rfind('.'); dot != std::string::npos) stem.resize(dot);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir + "/" + stem + ".pdb", ec)) return nullptr;
    auto file = ReadWholeFile(*path);
    if (!file) return nullptr;
    auto on_disk = dac::PeImage::Parse(*file);
    std::vector<uint8_t> header(kPeHeaderBytes);
    header.resize(dac_.ReadTargetMemory(details->il_base, header.data(), header.size()));
    auto loaded = dac::PeImage::Parse(header);
    if (!on_disk.ok() || !loaded.ok() || on_disk->timestamp() != loaded->timestamp() ||
        on_disk->size_of_image() != loaded->size_of_image()) {
      return nullptr;
    }
    auto cv = on_disk->FindCodeView();
    if (!cv.ok() || !cv->portable) return nullptr;
    for (const std::string& candidate :
         {absl::StrCat(dir, "/", BaseName(cv->path)), absl::StrCat(dir, "/", stem, ".pdb")}) {
      auto bytes = ReadWholeFile(candidate);
      if (!bytes) continue;
      auto pdb = dac::PortablePdb::Parse(std::move(*bytes));
      if (pdb.ok() && pdb->id() == cv->pdb_id) {
        return std::make_unique<dac::PortablePdb>(std::move(*pdb));
      }
    }
    return nullptr;
  }

  dac::DacProcess& dac_;
  std::map<uint64_t, std::unique_ptr<dac::PortablePdb>> cache_;
};

}  // namespace

void ResolveSourceLine(dac::DacProcess& dac, dac::StackFrame* f) { SourceLines(dac).Resolve(f); }

namespace {

struct ClrStackArgs {
  bool all_threads = false;
  dac::StackWalkOptions walk;
  ClrStackTextOptions text;
};

// SOS's option set for clrstack; the ones clrdiag cannot honour are refused by name.
std::optional<std::string> ParseClrStack(const std::vector<std::string>& args, ClrStackArgs* a) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string opt = absl::AsciiStrToLower(args[i]);
    if (opt == "-all") {
      a->all_threads = true;
    } else if (opt == "-a") {
      a->walk.arguments = a->walk.locals = true;
    } else if (opt == "-p") {
      a->walk.arguments = true;
    } else if (opt == "-l") {
      a->walk.locals = true;
    } else if (opt == "-n") {
      a->text.lines = false;
    } else if (opt == "-c") {
      size_t n = 0;
      if (i + 1 >= args.size() || !absl::SimpleAtoi(args[i + 1], &n)) {
        return "-c needs a number of frames";
      }
      a->walk.max_frames = n;
      ++i;
    } else if (opt == "-f" || opt == "-i" || opt == "-gc" || opt == "-r" || opt == "/d") {
      return absl::StrCat("option ", args[i], " is not supported by clrdiag yet");
    } else if (!opt.empty() && (opt[0] == '-' || opt[0] == '/')) {
      return absl::StrCat("Unknown option: ", args[i]);
    } else {
      return absl::StrCat("unexpected argument '", args[i], "'");
    }
  }
  a->text.arguments = a->walk.arguments;
  a->text.locals = a->walk.locals;
  return std::nullopt;
}

absl::StatusOr<dac::ThreadStack> Walk(CommandContext& ctx, SourceLines& lines, uint32_t tid,
                                      const ClrStackArgs& a) {
  auto stack = ctx.dac.WalkStack(tid, a.walk, ctx.cancel);
  if (!stack.ok()) return stack.status();
  if (a.text.lines) {
    for (dac::StackFrame& f : stack->frames) lines.Resolve(&f);
  }
  return stack;
}

CommandResult ClrStack(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  ClrStackArgs a;
  if (auto problem = ParseClrStack(args, &a)) return UsageError(spec, *problem);
  SourceLines lines(ctx.dac);
  if (!a.all_threads) {
    const auto& threads = ctx.core.threads();
    int index = ctx.state.current_thread;
    if (index < 0 || static_cast<size_t>(index) >= threads.size()) {
      return Failure("the dump holds no thread to walk");
    }
    const uint32_t tid = threads[static_cast<size_t>(index)].tid;
    auto stack = Walk(ctx, lines, tid, a);
    if (!stack.ok()) return Failure(std::string(stack.status().message()));
    if (ctx.json) {
      WriteJson(ctx, Json{{"threads", Json::array({ThreadStackJson(*stack, index, a.text)})}});
    } else {
      ctx.out.Write(FormatStackHeader(tid, index) + FormatThreadStack(*stack, a.text));
    }
    return {};
  }
  // -all: every thread the runtime lists that has an OS thread, in the runtime's order.
  auto store = ctx.dac.GetThreadStore();
  if (!store.ok()) return Failure(std::string(store.status().message()));
  Json all = Json::array();
  for (const dac::ManagedThread& t : store->threads) {
    if (t.os_id == 0) continue;
    auto stack = Walk(ctx, lines, t.os_id, a);
    if (!stack.ok()) return Failure(std::string(stack.status().message()));
    if (ctx.json) {
      all.push_back(ThreadStackJson(*stack, -1, a.text));
    } else {
      ctx.out.Write(FormatStackHeader(t.os_id, -1) + FormatThreadStack(*stack, a.text));
    }
  }
  if (ctx.json) WriteJson(ctx, Json{{"threads", all}});
  return {};
}

// Makes dump thread `index` current; prints nothing (as dotnet-dump), its JSON form says which.
CommandResult Select(CommandContext& ctx, size_t index) {
  ctx.state.current_thread = static_cast<int>(index);
  if (ctx.json) {
    WriteJson(ctx, Json{{"current", index}, {"os_thread_id", ctx.core.threads()[index].tid}});
  }
  return {};
}

// threads [-v] | threads [-t] N | setthread [-t] N (dotnet-dump's ThreadsCommand).
CommandResult Threads(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  bool by_tid = false, verbose = false;
  std::optional<uint32_t> number;
  for (const std::string& arg : args) {
    const std::string opt = absl::AsciiStrToLower(arg);
    if (opt == "-t" || opt == "--tid") {
      by_tid = true;
    } else if (opt == "-v" || opt == "--verbose") {
      verbose = true;
    } else if (!opt.empty() && opt[0] == '-') {
      return UsageError(spec, absl::StrCat("Unknown option: ", arg));
    } else {
      uint32_t n = 0;
      if (number || !absl::SimpleAtoi(arg, &n)) {
        return UsageError(
            spec, absl::StrCat("'", arg, "' is not a thread index or id (a decimal number)"));
      }
      number = n;
    }
  }
  const auto& threads = ctx.core.threads();
  if (!number) {
    if (by_tid) return UsageError(spec, "-t needs an OS thread id");
    if (ctx.json) {
      WriteJson(ctx, ThreadListJson(threads, ctx.state.current_thread));
    } else {
      ctx.out.Write(FormatThreadList(threads, ctx.state.current_thread, verbose));
    }
    return {};
  }
  if (by_tid) {
    for (size_t i = 0; i < threads.size(); ++i) {
      if (threads[i].tid == *number) return Select(ctx, i);
    }
    return Failure(absl::StrCat("Invalid thread id: ", *number));
  }
  if (*number >= threads.size()) return Failure(absl::StrCat("Invalid thread index: ", *number));
  return Select(ctx, *number);
}

}  // namespace

void RegisterStackCommands(CommandRegistry& r) {
  r.Add({{"clrstack"},
         "<arguments>",
         "Provides a stack trace of managed code only.",
         "clrstack [-all] [-p] [-l] [-a] [-n] [-c <count>]\n"
         "  The managed frames of the current thread (threads/setthread choose it), or with\n"
         "  -all of every managed thread. -p adds parameters, -l locals, -a both; -n drops\n"
         "  source lines; -c stops after <count> frames.",
         ClrStack});
  r.Add({{"threads", "setthread"},
         "<threadid>",
         "Sets or displays the current thread ID for the SOS commands.",
         "threads [-v] | threads [-t] <thread>\n"
         "  Without <thread>, lists the dump's threads (index, OS id) with '*' at the current\n"
         "  one (-v adds IP, SP, FP and TEB). With <thread>, makes it current: an index from\n"
         "  that list, or with -t an OS thread id. setthread is the same command.",
         Threads});
}

}  // namespace clrdiag::sos
