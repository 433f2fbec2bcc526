// The SOS command engine: parses a command line, dispatches to a command, renders its output
// the way dotnet-dump prints it.
#include "core/sos/engine.h"

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/dac/dac_locator.h"
#include "core/dac/dac_process.h"
#include "core/dac/heap_walk.h"
#include "core/elf/core_file.h"
#include "core/sos/format.h"

namespace clrdiag::sos {
namespace {

struct CommandSpec {
  std::vector<std::string> names;  // first is the canonical name
  std::string synopsis;            // "<arguments>" etc., as the reference's help shows
  std::string summary;
  std::string usage;  // shown by `help <command>` and on bad arguments
};

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {{"clrthreads", "threads"}, "<arguments>", "Lists the managed threads running.",
       "clrthreads\n  Lists the managed threads with their state, GC mode and allocation "
       "context."},
      {{"dumpheap", "DumpHeap"}, "<memoryrange>", "Displays a list of all managed objects.",
       "dumpheap [-stat] [-short] [-type <partial type name>] [-mt <MethodTable address>]\n"
       "         [-min <size>] [-max <size>]\n"
       "  -stat   only the statistics (per type: count, total size)\n"
       "  -short  only the addresses of the matching objects\n"
       "  -type   objects whose type name contains the text\n"
       "  -mt     objects of this MethodTable (hex)\n"
       "  -min    objects at least this many bytes (decimal, or hex with 0x)\n"
       "  -max    objects at most this many bytes"},
      {{"eeversion"}, "<arguments>", "Displays information about the runtime version.",
       "eeversion\n  The runtime's version, commit and GC mode."},
      {{"exit", "quit", "q"}, "", "Exits interactive mode.", "exit\n  Ends the session."},
      {{"help", "soshelp"}, "<command>", "Displays help for a command.",
       "help [command]\n  Lists the commands, or describes one."},
  };
  return kCommands;
}

const CommandSpec* FindCommand(const std::string& name) {
  for (const auto& c : Commands()) {
    for (const auto& n : c.names) {
      if (absl::AsciiStrToLower(n) == absl::AsciiStrToLower(name)) return &c;
    }
  }
  return nullptr;
}

CommandResult Usage(const CommandSpec& spec, const std::string& problem) {
  return {false, absl::StrCat(problem, "\nUsage: ", spec.usage), false};
}

// Parses a number as SOS does: hex with 0x, else decimal.
bool ParseSize(const std::string& s, uint64_t* out) {
  if (absl::StartsWithIgnoreCase(s, "0x")) return absl::SimpleHexAtoi(s.substr(2), out);
  return absl::SimpleAtoi(s, out);
}

class DacEngine : public Engine {
 public:
  DacEngine(std::shared_ptr<const elf::CoreFile> core, std::unique_ptr<dac::DacProcess> dac,
            dac::RuntimeModule runtime, dac::DacLocation location)
      : core_(std::move(core)),
        dac_(std::move(dac)),
        runtime_(std::move(runtime)),
        location_(std::move(location)) {}

  std::string runtime_version() const override {
    return runtime_.framework_version.empty() ? runtime_.version : runtime_.framework_version;
  }
  std::string dac_dir() const override { return location_.dir; }

  CommandResult Run(const std::string& line, OutputSink& out,
                    const CancellationToken& cancel) override {
    std::vector<std::string> args =
        absl::StrSplit(absl::StripAsciiWhitespace(line), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (args.empty()) return {};
    std::string name = args[0];
    if (!name.empty() && name[0] == '!') name.erase(0, 1);  // "!dumpheap", as in WinDbg habits
    args.erase(args.begin());
    const CommandSpec* spec = FindCommand(name);
    if (!spec) {
      return {false,
              absl::StrCat("Unrecognized SOS command '", name,
                           "'. Type 'help' to list the available commands."),
              false};
    }
    const std::string& cmd = spec->names[0];
    if (cmd == "exit") return {true, "", true};
    if (cmd == "help") return Help(args, out);
    if (cmd == "eeversion") return EeVersion(out);
    if (cmd == "clrthreads") return ClrThreads(*spec, args, out);
    if (cmd == "dumpheap") return DumpHeap(*spec, args, out, cancel);
    return {false, "not implemented", false};
  }

 private:
  CommandResult Help(const std::vector<std::string>& args, OutputSink& out) {
    if (!args.empty()) {
      const CommandSpec* spec = FindCommand(args[0]);
      if (!spec) return {false, absl::StrCat("No help for unknown command '", args[0], "'."), false};
      out.Write(absl::StrCat(spec->usage, "\n"));
      return {};
    }
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& c : Commands()) {
      std::string left;
      for (size_t i = 0; i < c.names.size(); ++i) left += (i ? ", " : "") + c.names[i];
      if (!c.synopsis.empty()) left += " " + c.synopsis;
      rows.emplace_back(left, c.summary);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [l, r] : rows) out.Write(absl::StrFormat("%-56s %s\n", l, r));
    return {};
  }

  CommandResult EeVersion(OutputSink& out) {
    std::string vs = runtime_.version_string.empty() ? location_.version_string
                                                     : runtime_.version_string;
    std::string version = vs.substr(0, vs.find(' '));
    auto gc = dac_->GetGcHeapSummary();
    out.Write(absl::StrCat(version, "\n", vs, "\n"));
    if (gc.ok()) {
      out.Write(gc->server ? absl::StrCat("Server mode with ", gc->heap_count, " gc heaps\n")
                           : "Workstation mode\n");
    }
    out.Write("SOS Version: clrdiag " CLRDIAG_VERSION "\n");
    return {};
  }

  CommandResult ClrThreads(const CommandSpec& spec, const std::vector<std::string>& args,
                           OutputSink& out) {
    if (!args.empty()) return Usage(spec, absl::StrCat("unexpected argument '", args[0], "'"));
    auto ts = dac_->GetThreadStore();
    if (!ts.ok()) return {false, std::string(ts.status().message()), false};
    out.Write(FormatClrThreads(*ts, *core_));
    return {};
  }

  CommandResult DumpHeap(const CommandSpec& spec, const std::vector<std::string>& args,
                         OutputSink& out, const CancellationToken& cancel) {
    DumpHeapOptions o;
    for (size_t i = 0; i < args.size(); ++i) {
      std::string a = absl::AsciiStrToLower(args[i]);
      auto value = [&](std::string* v) {
        if (i + 1 >= args.size()) return false;
        *v = args[++i];
        return true;
      };
      std::string v;
      if (a == "-stat") {
        o.stat = true;
      } else if (a == "-short") {
        o.short_ = true;
      } else if (a == "-type") {
        if (!value(&o.type)) return Usage(spec, "-type needs a type name");
      } else if (a == "-mt") {
        if (!value(&v) || !absl::SimpleHexAtoi(absl::StartsWithIgnoreCase(v, "0x") ? v.substr(2) : v, &o.mt)) {
          return Usage(spec, "-mt needs a MethodTable address in hex");
        }
        if (o.mt == 0) return Usage(spec, "Invalid MethodTable: 0");
      } else if (a == "-min") {
        if (!value(&v) || !ParseSize(v, &o.min)) return Usage(spec, "-min needs a size");
      } else if (a == "-max") {
        if (!value(&v) || !ParseSize(v, &o.max)) return Usage(spec, "-max needs a size");
      } else {
        return Usage(spec, absl::StrCat("unknown option '", args[i], "'"));
      }
    }
    absl::Status st = RunDumpHeap(*dac_, o, out, cancel);
    if (!st.ok()) return {false, std::string(st.message()), false};
    return {};
  }

  std::shared_ptr<const elf::CoreFile> core_;
  std::unique_ptr<dac::DacProcess> dac_;
  dac::RuntimeModule runtime_;
  dac::DacLocation location_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  auto core_or = elf::CoreFile::Open(options.dump_path);
  if (!core_or.ok()) {
    return absl::Status(core_or.status().code(),
                        absl::StrCat("cannot open ", options.dump_path, " as a dump: ",
                                     core_or.status().message()));
  }
  std::shared_ptr<const elf::CoreFile> core = std::move(*core_or);
  auto runtime = dac::FindRuntime(*core);
  if (!runtime.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        options.dump_path, " holds no .NET runtime that clrdiag can analyze: ",
        runtime.status().message()));
  }
  dac::DacSearchOptions search;
  search.extra_dirs = options.dac_dirs;
  if (!options.store_runtimes_dir.empty()) {
    // DacSearchOptions wants the store root (it appends runtimes/<build-id>).
    std::string root = options.store_runtimes_dir;
    if (root.size() > 9 && root.compare(root.size() - 9, 9, "/runtimes") == 0) {
      root.resize(root.size() - 9);
    }
    search.store_root = root;
  }
  auto loc = dac::LocateDac(*runtime, search);
  if (!loc.ok()) return loc.status();
  dac::DacProcess::Options opts;
  opts.dac_path = loc->dac_path;
  opts.target.runtime_base = runtime->base;
  opts.target.file_substitutes[runtime->path] = loc->coreclr_path;
  auto dacp = dac::DacProcess::Open(core, std::move(opts));
  if (!dacp.ok()) return dacp.status();
  return std::unique_ptr<Engine>(
      new DacEngine(core, std::move(*dacp), std::move(*runtime), std::move(*loc)));
}

}  // namespace clrdiag::sos
