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
#include "core/sos/source_lines.h"
#include "core/sos/stack_format.h"

namespace clrdiag::sos {

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
  SourceLines lines(ctx.dac, &ctx.state.symbols);
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
