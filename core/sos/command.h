// The SOS command registry. Each command family lives in its own file (cmd_*.cc) and adds its
// commands in a Register*Commands function called once by the engine.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/cancel.h"
#include "core/dac/dac_locator.h"
#include "core/dac/dac_process.h"
#include "core/elf/core_file.h"
#include "core/sos/engine.h"
#include "core/sos/symbols.h"

namespace clrdiag::sos {

struct HeapIndex;  // format.h: what a complete heap walk learned, kept for the session
struct RootCache;  // cmd_roots.cc: the heap graph and GC roots of gcroot/pathto/objsize
struct GcHistory;  // cmd_stresslog.cc: the stress log's GC relocation records (histinit)

// What `d` and its size variants remember between commands (as the reference does): the next
// address and the element format, so a bare `d` goes on where the last dump stopped.
struct MemoryDumpState {
  uint64_t next_address = 0;
  int count = 32;  // elements
  int length = 0;  // bytes per element; 0 means 4
  int width = 0;   // elements per row; 0 means 32 / length
  bool ascii = false, unicode = false, ascii_string = false, unicode_string = false;
};

// What a command can reach: the dump, its DAC, and the session's state.
struct SessionState {
  MemoryDumpState memory;
  int current_thread = 0;  // index into core.threads() (threads N / setthread N)
  // Filled by the first complete heap walk; later `dumpheap -stat` runs answer from it.
  std::shared_ptr<HeapIndex> heap_index;
  std::shared_ptr<RootCache> root_cache;
  // setsymbolserver's stores (symbols.h), searched for PDBs after the assembly's directory.
  SymbolSettings symbols;
  // The session's owner is a local admin: commands may read the daemon host's files and reach
  // the network with the worker's rights (EngineOptions::host_access).
  bool host_access = false;
  // Where gcroot/pathto keep a dump's heap graph between sessions (empty: nowhere), and the
  // dump's identity for it (device, inode, size, modification time in ns).
  std::string graph_cache_dir;
  std::vector<uint64_t> dump_key;
  // The graph file of a catalog dump (<store>/dumps/<id>/heapgraph, removed with the dump),
  // used instead of graph_cache_dir (built under GRAPH.lock); and the dump file.
  std::string graph_path;
  std::string dump_path;
  // histinit's records, for histstats/histroot/histobj/histobjfind; null until histinit.
  std::shared_ptr<GcHistory> gc_history;
  // `logging`: the engine traces each command (start, end, time) into the session's output.
  // `dbgout`: commands write their internal debug trace (DebugOut) there too.
  bool trace_logging = false;
  bool trace_dbgout = false;
};

struct CommandContext {
  dac::DacProcess& dac;
  const elf::CoreFile& core;
  const dac::RuntimeModule& runtime;
  const dac::DacLocation& location;
  SessionState& state;
  OutputSink& out;
  const CancellationToken& cancel;
  // The command's JSON form is wanted instead of its text: write one value with WriteJson
  // (core/sos/json.h), or, for long streams, the text of one JSON value through `out`.
  bool json = false;
};

struct CommandSpec;
using CommandHandler = std::function<CommandResult(CommandContext&, const CommandSpec&,
                                                   const std::vector<std::string>&)>;

struct CommandSpec {
  std::vector<std::string> names;  // first is the canonical name; matched case-insensitively
  std::string synopsis;            // after the names in `help`, e.g. "<arguments>"
  std::string summary;             // one line in `help`
  std::string usage;               // `help <command>` and bad-argument messages
  CommandHandler handler;          // empty for commands the engine handles itself
};

class CommandRegistry {
 public:
  void Add(CommandSpec spec) { commands_.push_back(std::move(spec)); }
  const std::vector<CommandSpec>& commands() const { return commands_; }
  const CommandSpec* Find(const std::string& name) const;

 private:
  std::vector<CommandSpec> commands_;
};

// A failed command whose arguments were wrong: the problem, then the usage.
CommandResult UsageError(const CommandSpec& spec, const std::string& problem);
CommandResult Failure(const std::string& message);

// A line of a command's internal debug trace, shown when `dbgout` is on (text output only).
void DebugOut(CommandContext& ctx, const std::string& line);

// Parses an address or MethodTable the way SOS does: hex, with or without 0x.
bool ParseHexAddress(const std::string& text, uint64_t* out);

// Command families.
// cmd_exception.cc: printexception, pe
void RegisterExceptionCommands(CommandRegistry& r);
void RegisterHeapCommands(CommandRegistry& r);     // cmd_heap.cc: dumpheap
void RegisterRuntimeCommands(CommandRegistry& r);  // cmd_runtime.cc: eeversion, clrthreads
void RegisterObjectCommands(CommandRegistry& r);   // cmd_object.cc: dumpobj, dumpmt
void RegisterModuleCommands(
    CommandRegistry& r);  // cmd_module.cc: clrmodules, lm, dumpdomain, runtimes
void RegisterStackCommands(CommandRegistry& r);  // cmd_stack.cc: clrstack, threads/setthread
void RegisterRootCommands(CommandRegistry& r);   // cmd_roots.cc: gcroot, pathto, objsize
// cmd_roots.cc: gcroot's heap graph, from its file or built and saved (Engine::PrepareHeapGraph).
absl::Status PrepareHeapGraph(CommandContext& ctx);
// cmd_handles.cc: gchandles, finalizequeue, traverseheap, dumpconcurrentdictionary/queue
void RegisterHandleCommands(CommandRegistry& r);
// cmd_memory.cc: d/readmemory, db, dc, da, du, dw, dd, dp, dq, threadstate
void RegisterMemoryCommands(CommandRegistry& r);
void RegisterSyncCommands(CommandRegistry& r);  // cmd_sync.cc: syncblk
void RegisterCodeCommands(CommandRegistry& r);  // cmd_code.cc: dumpmd, ip2md
void RegisterClruCommand(CommandRegistry& r);   // cmd_clru.cc: clru/u
// cmd_gc.cc: eeheap, gcheapstat, dumpgcdata, gcwhere, dumpgen, verifyheap, verifyobj
void RegisterGcCommands(CommandRegistry& r);
// cmd_objects.cc: dumparray, dumpvc, dumpdelegate, listnearobj, dso, dumpruntimetypes, analyzeoom
void RegisterObjectsCommands(CommandRegistry& r);
void RegisterSymbolCommands(CommandRegistry& r);  // cmd_symbols.cc: setsymbolserver
// cmd_threadpool.cc: threadpool, threadpoolqueue/tpq, timerinfo/ti, taskstate/tks
void RegisterThreadPoolCommands(CommandRegistry& r);
// cmd_pstacks.cc: parallelstacks/pstacks, eestack
void RegisterParallelStacksCommands(CommandRegistry& r);
void RegisterDumpAsyncCommands(CommandRegistry& r);  // cmd_dumpasync.cc: dumpasync
void RegisterSigCommands(CommandRegistry& r);        // cmd_sig.cc: dumpsig, dumpsigelem
// cmd_metadata.cc: dumpclass, dumpmodule, dumpassembly, dumpalc, findappdomain, name2ee,
// token2ee, ehinfo
void RegisterMetadataCommands(CommandRegistry& r);
// cmd_stresslog.cc: dumplog, histinit, histclear, histstats, histroot, histobj, histobjfind
void RegisterStressLogCommands(CommandRegistry& r);
void RegisterTraceCommands(CommandRegistry& r);  // cmd_trace.cc: logging, dbgout
void RegisterGcInfoCommands(CommandRegistry& r);  // cmd_gcinfo.cc: gcinfo
void RegisterHeapStatsCommands(CommandRegistry& r);  // cmd_heapstats.cc: sizestats, dumpexceptions
void RegisterDumpIlCommand(CommandRegistry& r);  // cmd_dumpil.cc: dumpil

}  // namespace clrdiag::sos
