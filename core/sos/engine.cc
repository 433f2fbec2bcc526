// The SOS command engine: splits a command line, finds the command in the registry, runs it.
#include "core/sos/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/session_reset.h"

namespace clrdiag::sos {

const CommandSpec* CommandRegistry::Find(const std::string& name) const {
  std::string lower = absl::AsciiStrToLower(name);
  for (const auto& c : commands_) {
    for (const auto& n : c.names) {
      if (absl::AsciiStrToLower(n) == lower) return &c;
    }
  }
  return nullptr;
}

CommandResult UsageError(const CommandSpec& spec, const std::string& problem) {
  return {false, absl::StrCat(problem, "\nUsage: ", spec.usage), false};
}

CommandResult Failure(const std::string& message) { return {false, message, false}; }

std::string JsonHex(uint64_t value) { return absl::StrCat("0x", absl::Hex(value)); }

void WriteJson(CommandContext& ctx, const Json& value) {
  ctx.out.Write(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void DebugOut(CommandContext& ctx, const std::string& line) {
  if (ctx.state.trace_dbgout && !ctx.json) ctx.out.Write(absl::StrCat("dbgout: ", line, "\n"));
}

bool ParseHexAddress(const std::string& text, uint64_t* out) {
  std::string t = text;
  if (absl::StartsWithIgnoreCase(t, "0x")) t = t.substr(2);
  return !t.empty() && absl::SimpleHexAtoi(t, out);
}

namespace {

class DacEngine : public Engine {
 public:
  DacEngine(std::shared_ptr<const elf::CoreFile> core, std::unique_ptr<dac::DacProcess> dac,
            dac::RuntimeModule runtime, dac::DacLocation location)
      : core_(std::move(core)),
        dac_(std::move(dac)),
        runtime_(std::move(runtime)),
        location_(std::move(location)) {
    registry_.Add(
        {{"exit", "quit", "q"}, "", "Exits interactive mode.", "exit\n  Ends the session.", {}});
    registry_.Add({{"help", "soshelp"},
                   "<command>",
                   "Displays help for a command.",
                   "help [command]\n  Lists the commands, or describes one.",
                   {}});
    registry_.Add(
        {{"sos", "ext"},
         "<command_and_arguments>",
         "Executes various SOS debugging commands.",
         "sos <command> [arguments]\n  Runs an SOS command (the same as typing it alone; kept "
         "for scripts written\n  for dotnet-dump and lldb).",
         {}});
    RegisterExceptionCommands(registry_);
    RegisterHeapCommands(registry_);
    RegisterRuntimeCommands(registry_);
    RegisterObjectCommands(registry_);
    RegisterModuleCommands(registry_);
    RegisterStackCommands(registry_);
    RegisterRootCommands(registry_);
    RegisterHandleCommands(registry_);
    RegisterMemoryCommands(registry_);
    RegisterSyncCommands(registry_);
    RegisterCodeCommands(registry_);
    RegisterClruCommand(registry_);
    RegisterGcCommands(registry_);
    RegisterObjectsCommands(registry_);
    RegisterSymbolCommands(registry_);
    RegisterThreadPoolCommands(registry_);
    RegisterParallelStacksCommands(registry_);
    RegisterDumpAsyncCommands(registry_);
    RegisterMetadataCommands(registry_);
    RegisterStressLogCommands(registry_);
    RegisterTraceCommands(registry_);
    RegisterGcInfoCommands(registry_);
    RegisterHeapStatsCommands(registry_);
    RegisterSigCommands(registry_);
    RegisterDumpIlCommand(registry_);
  }

  std::string runtime_version() const override {
    return runtime_.framework_version.empty() ? runtime_.version : runtime_.framework_version;
  }
  std::string dac_dir() const override { return location_.dir; }

  CommandResult Run(const std::string& line, const RunOptions& options, OutputSink& out,
                    const CancellationToken& cancel) override {
    if (!options.json) return RunLine(line, false, out, cancel);
    // {"command": LINE, "result": VALUE} or {"command": LINE, "error": MESSAGE}; the prefix is
    // written with the first piece of the result, so a command that fails before producing
    // anything leaves a clean error document.
    class Wrapper : public OutputSink {
     public:
      Wrapper(OutputSink& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
      void Write(absl::string_view text) override {
        if (!started_) {
          inner_.Write(prefix_);
          started_ = true;
        }
        inner_.Write(text);
      }
      void Progress(const ProgressInfo& progress) override { inner_.Progress(progress); }
      bool started() const { return started_; }

     private:
      OutputSink& inner_;
      std::string prefix_;
      bool started_ = false;
    };
    std::string command = Json(std::string(absl::StripAsciiWhitespace(line)))
                              .dump(-1, ' ', false, Json::error_handler_t::replace);
    Wrapper wrapped(out, absl::StrCat("{\"command\":", command, ",\"result\":"));
    CommandResult result = RunLine(line, true, wrapped, cancel);
    std::string error = Json(result.error).dump(-1, ' ', false, Json::error_handler_t::replace);
    if (!wrapped.started()) {
      out.Write(result.ok ? absl::StrCat("{\"command\":", command, ",\"result\":null}\n")
                          : absl::StrCat("{\"command\":", command, ",\"error\":", error, "}\n"));
    } else {
      out.Write(result.ok ? "}\n" : absl::StrCat(",\"error\":", error, "}\n"));
    }
    return result;
  }

  absl::Status PrepareHeapGraph(OutputSink& out, const CancellationToken& cancel) override {
    CommandContext ctx{*dac_, *core_, runtime_, location_, state_, out, cancel, false};
    return sos::PrepareHeapGraph(ctx);
  }

 private:
  CommandResult RunLine(const std::string& line, bool json, OutputSink& out,
                        const CancellationToken& cancel) {
    std::vector<std::string> args =
        absl::StrSplit(absl::StripAsciiWhitespace(line), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (args.empty()) return {};
    std::string name = args[0];
    if (!name.empty() && name[0] == '!') name.erase(0, 1);  // "!dumpheap", WinDbg habit
    args.erase(args.begin());
    const CommandSpec* spec = registry_.Find(name);
    if (!spec) {
      return Failure(absl::StrCat("Unrecognized SOS command '", name,
                                  "'. Type 'help' to list the available commands."));
    }
    if (spec->names[0] == "exit") return {true, "", true};
    if (spec->names[0] == "sos") {
      if (args.empty()) return UsageError(*spec, "name the SOS command to run");
      if (const CommandSpec* inner = registry_.Find(args[0]); inner && inner->names[0] == "sos") {
        return UsageError(*spec, "sos runs an SOS command, not itself");
      }
      return RunLine(absl::StrJoin(args, " "), json, out, cancel);
    }
    CommandContext ctx{*dac_, *core_, runtime_, location_, state_, out, cancel, json};
    if (spec->names[0] == "help") return Help(ctx, args);
    if (!state_.trace_logging || json) return spec->handler(ctx, *spec, args);
    // `logging`: the worker's trace of the command, in the session's output.
    auto start = std::chrono::steady_clock::now();
    out.Write(absl::StrFormat("clrdiag-worker: running '%s' (%s, DAC %s)\n", spec->names[0],
                              runtime_version(), location_.dac_path));
    CommandResult result = spec->handler(ctx, *spec, args);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    out.Write(absl::StrFormat("clrdiag-worker: '%s' %s in %d ms\n", spec->names[0],
                              result.ok ? "finished" : "failed", ms));
    return result;
  }

  CommandResult Help(CommandContext& ctx, const std::vector<std::string>& args) {
    OutputSink& out = ctx.out;
    if (!args.empty()) {
      const CommandSpec* spec = registry_.Find(args[0]);
      if (!spec) return Failure(absl::StrCat("No help for unknown command '", args[0], "'."));
      if (ctx.json) {
        WriteJson(ctx, Json{{"names", spec->names}, {"usage", spec->usage}});
      } else {
        out.Write(absl::StrCat(spec->usage, "\n"));
      }
      return {};
    }
    if (ctx.json) {
      Json list = Json::array();
      for (const auto& c : registry_.commands()) {
        list.push_back(Json{{"names", c.names},
                            {"synopsis", c.synopsis},
                            {"summary", c.summary},
                            {"usage", c.usage}});
      }
      WriteJson(ctx, Json{{"commands", list}});
      return {};
    }
    std::vector<std::pair<std::string, std::string>> rows;
    for (const auto& c : registry_.commands()) {
      std::string left;
      for (size_t i = 0; i < c.names.size(); ++i) left += (i ? ", " : "") + c.names[i];
      if (!c.synopsis.empty()) left += " " + c.synopsis;
      rows.emplace_back(left, c.summary);
    }
    std::sort(rows.begin(), rows.end());
    for (const auto& [l, r] : rows) out.Write(absl::StrFormat("%-56s %s\n", l, r));
    return {};
  }

  std::shared_ptr<const elf::CoreFile> core_;
  std::unique_ptr<dac::DacProcess> dac_;
  dac::RuntimeModule runtime_;
  dac::DacLocation location_;
  SessionState state_;
  CommandRegistry registry_;

 public:
  void set_host_access(bool on) { state_.host_access = on; }
  SessionState& state() { return state_; }
};

}  // namespace

void ResetSession(Engine& engine) {
  auto* e = dynamic_cast<DacEngine*>(&engine);
  if (e == nullptr) return;
  SessionState& st = e->state();
  st.memory = MemoryDumpState{};
  st.current_thread = 0;
  st.symbols = SymbolSettings{};
  st.gc_history.reset();
  st.trace_logging = false;
  st.trace_dbgout = false;
  ResetRootNotice(st);
}

void SetHostAccess(Engine& engine, bool on) {
  if (auto* e = dynamic_cast<DacEngine*>(&engine)) e->set_host_access(on);
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  const std::string& name = options.display_path.empty() ? options.dump_path : options.display_path;
  auto core_or = elf::CoreFile::Open(options.dump_path);
  if (!core_or.ok()) {
    std::string why(core_or.status().message());
    // The reader names the file it opened; name the dump as the user knows it.
    if (name != options.dump_path) why = absl::StrReplaceAll(why, {{options.dump_path, name}});
    return absl::Status(core_or.status().code(),
                        absl::StrCat("cannot open ", name, " as a dump: ", why));
  }
  std::shared_ptr<const elf::CoreFile> core = std::move(*core_or);
  auto runtime = dac::FindRuntime(*core);
  if (!runtime.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, " holds no .NET runtime that clrdiag can analyze: ", runtime.status().message()));
  }
  dac::DacSearchOptions search;
  search.extra_dirs = options.dac_dirs;
  search.store_root = options.store_root;
  auto loc = dac::LocateDac(*runtime, search);
  if (!loc.ok()) return loc.status();
  dac::DacProcess::Options opts;
  opts.dac_path = loc->dac_path;
  opts.target.runtime_base = runtime->base;
  opts.target.file_substitutes[runtime->path] = loc->coreclr_path;
  auto dacp = dac::DacProcess::Open(core, std::move(opts));
  if (!dacp.ok()) return dacp.status();
  auto engine =
      std::make_unique<DacEngine>(core, std::move(*dacp), std::move(*runtime), std::move(*loc));
  engine->set_host_access(options.host_access);
  // A store keeps the heap graphs of its sessions' dumps (cache/), keyed by the dump file.
  struct stat st {};
  if ((!options.store_root.empty() || !options.graph_path.empty()) &&
      ::stat(options.dump_path.c_str(), &st) == 0) {
    if (!options.store_root.empty()) {
      engine->state().graph_cache_dir = absl::StrCat(options.store_root, "/cache");
    }
    engine->state().graph_path = options.graph_path;
    engine->state().dump_path = options.dump_path;
    engine->state().dump_key = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                                static_cast<uint64_t>(st.st_size),
                                static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                                    static_cast<uint64_t>(st.st_mtim.tv_nsec)};
  }
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace clrdiag::sos
