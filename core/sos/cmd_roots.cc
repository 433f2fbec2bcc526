// Root and reachability commands: gcroot, pathto, objsize (dotnet-dump's GCRootCommand,
// PathToCommand and ObjSizeCommand over ClrMD 4.2).
//
// All three answer from a heap graph (core/dac/root_graph.h) built once per session by one
// sequential pass over the heap; the roots are enumerated once too. The searches follow
// ClrMD's order, so the chains printed are the reference's.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/phase_log.h"
#include "core/base/status_macros.h"
#include "core/dac/gc_layout.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/root_graph.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"
#include "core/sos/session_reset.h"
#include "core/sos/source_lines.h"

namespace clrdiag::sos {

// What the root commands keep for the session (SessionState::root_cache).
struct RootCache {
  std::shared_ptr<dac::HeapGraph> graph;
  std::vector<dac::GcRoot> roots;  // handles and finalizer queue, then (if stacks) stacks
  bool have_roots = false;
  bool have_stack_roots = false;
  std::vector<std::string> root_warnings;
  // dotnet-dump says once per session that it is caching the roots.
  bool announced = false;
  // The graph file `graph` was mapped from or saved to (device, inode, size, modification
  // time; empty: none): a kept worker's next session drops `graph` when the file changed.
  std::vector<uint64_t> graph_file_id;
  std::unordered_map<uint64_t, std::string> names;
  std::unique_ptr<dac::ObjectReader> reader;  // objsize: objects read on demand
};

namespace {

using dac::HeapGraph;

constexpr const char* kCachingNotice =
    "Caching GC roots, this may take a while.\n"
    "Subsequent runs of this command will be faster.\n\n";

RootCache& CacheOf(CommandContext& ctx) {
  if (!ctx.state.root_cache) ctx.state.root_cache = std::make_shared<RootCache>();
  return *ctx.state.root_cache;
}

// The file that keeps this dump's heap graph between sessions, or "" when there is none: for
// a catalog dump the file beside it (removed with it), else one in the store's cache/.
std::string GraphCachePath(const SessionState& st) {
  if (st.dump_key.size() != 4) return "";
  if (!st.graph_path.empty()) return st.graph_path;
  if (st.graph_cache_dir.empty()) return "";
  return absl::StrFormat("%s/heapgraph-%x-%x-%x-%x", st.graph_cache_dir, st.dump_key[0],
                         st.dump_key[1], st.dump_key[2], st.dump_key[3]);
}

std::string GraphCachePath(const CommandContext& ctx) { return GraphCachePath(ctx.state); }

std::vector<uint64_t> FileIdOf(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<uint64_t>(st.st_size),
          static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
              static_cast<uint64_t>(st.st_mtim.tv_nsec)};
}

// Keeps at most kKeptGraphs graph files in the cache directory, the newest.
constexpr size_t kKeptGraphs = 4;
void TrimGraphCache(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!absl::StartsWith(name, "heapgraph-") || absl::StrContains(name, ".tmp.") ||
        absl::EndsWith(name, ".lock")) {
      continue;
    }
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files.emplace_back(static_cast<int64_t>(st.st_mtime), e.path().string());
  }
  if (files.size() <= kKeptGraphs) return;
  std::sort(files.begin(), files.end(), std::greater<>());
  for (size_t k = kKeptGraphs; k < files.size(); ++k) {
    ::unlink(files[k].second.c_str());
    ::unlink((files[k].second + ".lock").c_str());
  }
}

// An exclusive lock on a lock file beside the graph file (`GRAPH.lock`) while the graph is
// built: a second session, or the daemon's background build, waits for the first and then
// maps its file instead of walking the heap again. Not on the dump itself: .NET tools (the
// reference dotnet-dump among them) take flock locks on the files they open and would be
// refused the dump while its graph is built.
class BuildLock {
 public:
  BuildLock() = default;
  BuildLock(const BuildLock&) = delete;
  BuildLock& operator=(const BuildLock&) = delete;
  ~BuildLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  // Takes the lock, waiting (cancellably) while another process holds it; `waiting` is
  // called once if it has to wait. Without a path, or if the lock file cannot be made or
  // locked, goes on unlocked (the lock only saves work).
  absl::Status Take(const std::string& path, const CancellationToken& cancel,
                    const std::function<void()>& waiting) {
    if (path.empty()) return absl::OkStatus();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) return absl::OkStatus();
    bool told = false;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return absl::OkStatus();
      if (!told && waiting) waiting();
      told = true;
      if (cancel.cancelled()) return absl::CancelledError("cancelled");
      ::usleep(20 * 1000);
    }
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
};

absl::StatusOr<const HeapGraph*> GraphOf(CommandContext& ctx) {
  RootCache& cache = CacheOf(ctx);
  if (cache.graph) return cache.graph.get();
  ProgressInfo progress;
  const std::string cached = GraphCachePath(ctx);
  BuildLock lock;
  if (!cached.empty()) {
    progress.stage = "loading the heap graph";
    ctx.out.Progress(progress);
    absl::StatusOr<std::unique_ptr<HeapGraph>> loaded = HeapGraph::Load(cached, ctx.state.dump_key);
    if (!loaded.ok()) {
      // Being built (by the daemon after the dump entered the catalog, or by another
      // session)? Then wait for that build and use its file.
      if (ctx.state.graph_path.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(ctx.state.graph_cache_dir, ec);
        ::chmod(ctx.state.graph_cache_dir.c_str(), 0700);
      }
      RETURN_IF_ERROR(lock.Take(cached + ".lock", ctx.cancel, [&] {
        progress.stage = "waiting for the heap graph being built";
        ctx.out.Progress(progress);
      }));
      loaded = HeapGraph::Load(cached, ctx.state.dump_key);
    }
    if (loaded.ok()) {
      cache.graph = std::move(*loaded);
      cache.graph_file_id = FileIdOf(cached);
      return cache.graph.get();
    }
    // No file yet (or a stale or damaged one, replaced below): build the graph.
  }
  progress.stage = "building the heap graph";
  ctx.out.Progress(progress);
  ASSIGN_OR_RETURN(
      std::unique_ptr<HeapGraph> graph,
      HeapGraph::Build(ctx.dac, &ctx.cancel, [&](uint64_t done, uint64_t total, uint64_t objects) {
        progress.done = done;
        progress.total = total;
        progress.items = objects;
        ctx.out.Progress(progress);
      }));
  cache.graph = std::move(graph);
  cache.graph_file_id.clear();
  if (!cached.empty()) {
    // A cache: when it cannot be written, the next session builds the graph again.
    const bool in_cache_dir = ctx.state.graph_path.empty();
    if (in_cache_dir) {
      std::error_code ec;
      std::filesystem::create_directories(ctx.state.graph_cache_dir, ec);
      ::chmod(ctx.state.graph_cache_dir.c_str(), 0700);
    }
    if (cache.graph->Save(cached, ctx.state.dump_key).ok()) {
      cache.graph_file_id = FileIdOf(cached);
      if (in_cache_dir) TrimGraphCache(ctx.state.graph_cache_dir);
    }
  }
  return cache.graph.get();
}

// The roots, in dotnet-dump's order; `stacks` adds (and caches) the threads' references.
absl::StatusOr<const std::vector<dac::GcRoot>*> RootsOf(CommandContext& ctx, const HeapGraph& g,
                                                        bool stacks) {
  RootCache& cache = CacheOf(ctx);
  if (cache.have_roots && (cache.have_stack_roots || !stacks)) return &cache.roots;
  ProgressInfo progress;
  progress.stage = "enumerating GC roots";
  ctx.out.Progress(progress);
  dac::GcRootOptions o;
  o.stacks = stacks;
  cache.root_warnings.clear();
  ASSIGN_OR_RETURN(cache.roots, dac::EnumerateGcRoots(
                                    ctx.dac, o, &ctx.cancel,
                                    [&g](uint64_t a) {
                                      uint32_t i = g.ContainingObject(a);
                                      return i == HeapGraph::kNone ? 0 : g.address(i);
                                    },
                                    &cache.root_warnings));
  cache.have_roots = true;
  cache.have_stack_roots = stacks;
  return &cache.roots;
}

const std::string& NameOf(CommandContext& ctx, uint64_t mt) {
  RootCache& cache = CacheOf(ctx);
  auto it = cache.names.find(mt);
  if (it != cache.names.end()) return it->second;
  absl::StatusOr<std::string> n = ctx.dac.GetMethodTableName(mt);
  return cache.names[mt] =
             n.ok() ? dac::PrettyTypeName(*n) : absl::StrCat("<unknown_type_", absl::Hex(mt), ">");
}

CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

std::string HandleKindName(uint32_t type) {
  switch (type) {
    case dac::kHandleWeakShort:
      return "weak short handle";
    case dac::kHandleWeakLong:
      return "weak long handle";
    case dac::kHandleStrong:
      return "strong handle";
    case dac::kHandlePinned:
      return "pinned handle";
    case dac::kHandleRefCounted:
      return "ref counted handle";
    case dac::kHandleDependent:
      return "dependent handle";
    case dac::kHandleAsyncPinned:
      return "async pinned handle";
    case dac::kHandleSizedRef:
      return "sized ref handle";
    case dac::kHandleWeakNativeCom:
      return "weak WinRT handle";
    default:
      return absl::StrCat(type);
  }
}

const char* RootKindName(dac::GcRoot::Kind k) {
  switch (k) {
    case dac::GcRoot::Kind::kHandle:
      return "handle";
    case dac::GcRoot::Kind::kFinalizer:
      return "finalizer";
    case dac::GcRoot::Kind::kStack:
      return "stack";
  }
  return "?";
}

// x64 registers in the DAC's numbering.
std::string RegisterName(int32_t n) {
  static constexpr const char* kNames[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                           "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  if (n >= 0 && n < 16) return kNames[n];
  return "???";
}

// The chain's rows, as GCRootCommand.PrintPath prints them (no static-variable notes: see
// docs/json-output.md and the conformance test).
struct PathRow {
  uint64_t address;
  uint64_t mt;
  bool dependent;  // reached from the previous object through a dependent handle
};

std::vector<PathRow> RowsOf(CommandContext& ctx, const HeapGraph& g,
                            const std::vector<uint32_t>& chain) {
  std::vector<PathRow> rows(chain.size());
  for (size_t k = 0; k < chain.size(); ++k) {
    bool dependent = false;
    if (k > 0) {
      for (uint32_t d : g.Dependents(chain[k - 1])) dependent |= d == chain[k];
    }
    rows[k] = {g.address(chain[k]), 0, dependent};
  }
  // The MethodTables, read in address order through one buffer: a long chain's objects are
  // mostly near each other, and one large read each beats a small read per row.
  std::vector<uint32_t> order(rows.size());
  for (uint32_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return rows[a].address < rows[b].address; });
  constexpr size_t kBuffer = size_t{64} << 10;
  std::vector<uint8_t> buf(kBuffer);
  uint64_t buf_start = 0, buf_valid = 0;
  for (uint32_t k : order) {
    const uint64_t a = rows[k].address;
    if (a < buf_start || a + 8 > buf_start + buf_valid) {
      buf_start = a;
      buf_valid = ctx.core.ReadDumpedMemory(a, buf.data(), buf.size());
    }
    uint64_t mt = 0;
    if (a >= buf_start && a + 8 <= buf_start + buf_valid) {
      std::memcpy(&mt, buf.data() + (a - buf_start), sizeof(mt));
    } else if (ctx.dac.ReadTargetMemory(a, &mt, sizeof(mt)) != sizeof(mt)) {
      mt = 0;
    }
    rows[k].mt = mt & ~uint64_t{7};
  }
  return rows;
}

// Appends the rows ("          -> ADDRESS TYPE [(dependent handle)]", the address in hex
// left-aligned in 16 columns), handing `s` to the output whenever it passes 64 KiB so that a
// chain of 100,000 objects streams instead of being built as one string.
void AppendPathText(CommandContext& ctx, const std::vector<PathRow>& rows, std::string* s) {
  constexpr size_t kFlushBytes = size_t{64} << 10;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (const PathRow& r : rows) {
    char line[40] = "          -> ";
    size_t n = 13;
    int shift = 60;
    while (shift > 0 && ((r.address >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) line[n++] = kDigits[(r.address >> shift) & 0xf];
    while (n < 13 + 16) line[n++] = ' ';
    line[n++] = ' ';
    s->append(line, n);
    s->append(NameOf(ctx, r.mt));
    s->append(r.dependent ? " (dependent handle)\n" : " \n");
    if (s->size() >= kFlushBytes) {
      ctx.out.Write(*s);
      s->clear();
    }
  }
}

Json PathJson(CommandContext& ctx, const std::vector<PathRow>& rows) {
  Json path = Json::array();
  for (const PathRow& r : rows) {
    path.push_back(Json{{"address", JsonHex(r.address)},
                        {"mt", JsonHex(r.mt)},
                        {"type", NameOf(ctx, r.mt)},
                        {"dependent_handle", r.dependent}});
  }
  return path;
}

// A stack root's frame line, as GCRootCommand prints it: "    SP IP Method [file @ line]"
// for managed code, "    SP [FrameName]  (Method)" for a runtime Frame. The frame is found in
// the thread's stack walk (one walk per thread and command).
class FrameNamer {
 public:
  explicit FrameNamer(CommandContext& ctx) : ctx_(ctx), lines_(ctx.dac, &ctx.state.symbols) {}

  std::string Line(const dac::GcRoot& root) {
    const dac::StackReference& ref = root.stack;
    const dac::StackFrame* f = Find(root.os_thread_id, ref);
    std::string s = absl::StrFormat("    %x", ref.stack_pointer);
    const bool runtime_frame = ref.source_type != 0;
    if (!runtime_frame) absl::StrAppendFormat(&s, " %x", ref.source);
    std::string method = f != nullptr ? f->method_name : "";
    if (runtime_frame) {
      absl::StrAppend(&s, " [", f != nullptr ? f->frame_name : "Frame", "] ");
      if (!method.empty()) absl::StrAppend(&s, " (", method, ")");
      return s;
    }
    if (method.empty()) {
      if (auto code = ctx_.dac.GetCodeHeader(ref.source); code.ok() && code->method_desc != 0) {
        if (auto n = ctx_.dac.GetMethodDescName(code->method_desc); n.ok()) method = *n;
      }
    }
    if (method.empty()) return s;
    absl::StrAppend(&s, " ", method);
    if (f != nullptr && !f->source_file.empty()) {
      absl::StrAppend(&s, " [", f->source_file, " @ ", f->source_line, "]");
    }
    return s;
  }

 private:
  const dac::StackFrame* Find(uint32_t tid, const dac::StackReference& ref) {
    auto it = stacks_.find(tid);
    if (it == stacks_.end()) {
      absl::StatusOr<dac::ThreadStack> walk =
          ctx_.dac.WalkStack(tid, dac::StackWalkOptions{}, ctx_.cancel);
      it = stacks_.emplace(tid, walk.ok() ? std::move(*walk) : dac::ThreadStack{}).first;
    }
    dac::StackFrame* best = nullptr;
    for (dac::StackFrame& f : it->second.frames) {
      const bool match = ref.source_type != 0 ? f.frame_address == ref.source
                                              : !f.is_runtime_frame() && f.ip == ref.source;
      if (!match) continue;
      if (best == nullptr || f.sp == ref.stack_pointer) best = &f;
    }
    if (best != nullptr && best->source_file.empty()) lines_.Resolve(best);
    return best;
  }

  CommandContext& ctx_;
  SourceLines lines_;
  std::map<uint32_t, dac::ThreadStack> stacks_;
};

std::string RegisterLine(const dac::GcRoot& root) {
  std::string s = "        ";
  const dac::StackReference& r = root.stack;
  if (r.has_register || r.register_offset != 0) {
    absl::StrAppend(&s, r.has_register ? RegisterName(r.register_number) : "???");
    if (r.register_offset > 0) absl::StrAppendFormat(&s, "+%x", r.register_offset);
    if (r.register_offset < 0) absl::StrAppendFormat(&s, "-%x", -int64_t{r.register_offset});
    s += ":";
  }
  if (root.address != 0) absl::StrAppendFormat(&s, " %016x", root.address);
  return s;
}

// ClrMD's Generation names, in its order (GcGeneration follows it).
const char* ClrMdGenerationName(dac::GcGeneration g) {
  switch (g) {
    case dac::GcGeneration::kGen0:
      return "Generation0";
    case dac::GcGeneration::kGen1:
      return "Generation1";
    case dac::GcGeneration::kGen2:
      return "Generation2";
    case dac::GcGeneration::kLarge:
      return "Large";
    case dac::GcGeneration::kPinned:
      return "Pinned";
    case dac::GcGeneration::kFrozen:
      return "Frozen";
    default:
      return "Unknown";
  }
}

// The objects in the GC's internal root arrays (filled only during a GC: the roots from older
// generations of a gen0/gen1 collection), with the chains to the target. Empty arrays on every
// heap (any dump taken outside a GC) are an error, as in the reference.
absl::StatusOr<uint64_t> PrintOlderGenerationRoots(CommandContext& ctx, const HeapGraph& g,
                                                   dac::PathFinder& finder, int gen, int64_t limit,
                                                   Json* json_roots) {
  ASSIGN_OR_RETURN(std::unique_ptr<dac::GcLayout> layout, dac::ReadGcLayout(ctx.dac));
  bool any = false, first = true;
  uint64_t count = 0;
  std::unordered_map<uint64_t, bool> seen;
  for (const dac::GcSubHeap& h : layout->heaps) {
    ASSIGN_OR_RETURN(auto range, ctx.dac.GetInternalRootArray(h.address));
    if (range.second <= range.first) continue;
    any = true;
    for (uint64_t a = range.first; a < range.second; a += 8) {
      if (limit >= 0 && count >= static_cast<uint64_t>(limit)) break;
      if (ctx.cancel.cancelled()) return absl::CancelledError("gcroot");
      uint64_t object = 0;
      if (ctx.dac.ReadTargetMemory(a, &object, 8) != 8 || seen.count(object)) continue;
      const uint32_t start = g.IndexOf(object);
      if (start == HeapGraph::kNone) {
        if (!ctx.json) {
          ctx.out.Write(absl::StrFormat(
              "Warning: GC internal root array contained invalid object: *%x = %x\n", a, object));
        }
        continue;
      }
      ASSIGN_OR_RETURN(std::vector<uint32_t> chain, finder.FindPathFrom(start));
      if (chain.empty()) continue;
      seen[object] = true;
      ++count;
      const std::vector<PathRow> rows = RowsOf(ctx, g, chain);
      if (ctx.json) {
        json_roots->push_back(Json{{"kind", "older generation"},
                                   {"address", JsonHex(object)},
                                   {"path", PathJson(ctx, rows)}});
        continue;
      }
      std::string s = first ? "Older Generation:\n" : "";
      first = false;
      absl::StrAppendFormat(&s, "    %x\n", object);
      AppendPathText(ctx, rows, &s);
      s += "\n";
      ctx.out.Write(s);
    }
  }
  if (!any) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Could not gather needed data, possibly due to memory constraints in the debuggee.\n"
        "To try again, re-issue the '!findroots -gen ",
        gen, "' command."));
  }
  return count;
}

CommandResult GcRootOn(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  bool no_stacks = false;
  int64_t limit = -1;
  std::optional<int> gcgen;
  std::string target_text;
  // The reference's parser words for what it does not take (-all included: its help still
  // mentions it, its parser rejects it).
  auto unrecognized = [&](const std::string& a) {
    return UsageError(spec, absl::StrCat("Unrecognized command or argument '", a, "'."));
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = absl::AsciiStrToLower(args[i]);
    if (a == "-nostacks") {
      no_stacks = true;
    } else if (a == "-limit") {
      if (i + 1 >= args.size() || !absl::SimpleAtoi(args[i + 1], &limit) || limit < 0) {
        return UsageError(spec, "-limit needs a number of roots");
      }
      ++i;
    } else if (a == "-gcgen") {
      if (i + 1 >= args.size()) {
        return UsageError(spec, "Required argument missing for option: '-gcgen'.");
      }
      int v = 0;
      if (!absl::SimpleAtoi(args[i + 1], &v)) {
        return UsageError(spec, absl::StrCat("Cannot parse argument '", args[i + 1],
                                             "' for option '-gcgen' (a generation number)."));
      }
      gcgen = v;
      ++i;
    } else if (target_text.empty() && (a.empty() || a[0] != '-')) {
      target_text = args[i];
    } else {
      return unrecognized(args[i]);  // an unknown option, or a second target
    }
  }
  uint64_t target = 0;
  if (target_text.empty()) return UsageError(spec, "missing object address");
  if (!ParseHexAddress(target_text, &target)) {
    return Failure(absl::StrCat("Could not parse target object address: ", target_text));
  }
  absl::StatusOr<const HeapGraph*> graph = GraphOf(ctx);
  if (!graph.ok()) return FromStatus(graph.status());
  const HeapGraph& g = **graph;
  const uint32_t target_index = g.IndexOf(target);
  std::string text;
  if (target_index == HeapGraph::kNone && !ctx.json) {
    text = absl::StrFormat("Warning: %x is not a valid object\n", target);
  }
  // -gcgen N (the reference's helper for !findroots): would a collection of generation N
  // keep the object? Older objects survive it; for gen0/gen1 the roots are the GC's own
  // records of older-generation references (kept only during a GC) plus handles and the
  // finalizer queue; any other N is a plain gcroot.
  bool older_generation_roots = false;
  if (gcgen) {
    absl::StatusOr<std::unique_ptr<dac::GcLayout>> layout = dac::ReadGcLayout(ctx.dac);
    if (!layout.ok()) return FromStatus(layout.status());
    const dac::GcSegment* seg = (*layout)->FindByObjectRange(target);
    if (seg == nullptr) {
      if (!text.empty()) ctx.out.Write(text);
      return Failure(absl::StrFormat("Address %x is not in the managed heap.", target));
    }
    const dac::GcGeneration object_gen = seg->GenerationOf(target);
    if (*gcgen < static_cast<int>(object_gen)) {
      if (ctx.json) {
        WriteJson(ctx, Json{{"target", JsonHex(target)},
                            {"valid_object", target_index != HeapGraph::kNone},
                            {"generation", ClrMdGenerationName(object_gen)},
                            {"condemned_generation", *gcgen},
                            {"survives", true},
                            {"roots", Json::array()},
                            {"count", 0}});
        return {};
      }
      absl::StrAppendFormat(&text,
                            "Object %x will survive this collection:\n"
                            "    gen(%x) = %s > %d = condemned generation.\n",
                            target, target, ClrMdGenerationName(object_gen), *gcgen);
      ctx.out.Write(text);
      return {};
    }
    older_generation_roots = *gcgen == 0 || *gcgen == 1;
  }
  Json json_roots = Json::array();
  uint64_t count = 0;
  if (older_generation_roots) {
    if (!text.empty()) ctx.out.Write(text);
    text.clear();
    dac::PathFinder older(g, target_index, &ctx.cancel);
    absl::StatusOr<uint64_t> n =
        PrintOlderGenerationRoots(ctx, g, older, *gcgen, limit, &json_roots);
    if (!n.ok()) return FromStatus(n.status());
    count = *n;
    no_stacks = true;  // then the handles and the finalizer queue
  }
  RootCache& cache = CacheOf(ctx);
  if (!cache.announced && !ctx.json) text += kCachingNotice;
  cache.announced = true;
  if (!text.empty()) ctx.out.Write(text);
  PhaseMark("worker", "gcroot-graph");
  absl::StatusOr<const std::vector<dac::GcRoot>*> roots = RootsOf(ctx, g, !no_stacks);
  if (!roots.ok()) return FromStatus(roots.status());
  PhaseMark("worker", "gcroot-roots");

  dac::PathFinder finder(g, target_index, &ctx.cancel);
  const dac::GcRoot* last = nullptr;
  std::string last_frame;
  FrameNamer frames(ctx);
  const uint64_t before = count;
  for (const dac::GcRoot& root : **roots) {
    if (limit >= 0 && count - before >= static_cast<uint64_t>(limit)) break;
    if (no_stacks && root.kind == dac::GcRoot::Kind::kStack) continue;
    if (target_index == HeapGraph::kNone) break;
    const uint32_t start = g.IndexOf(root.object);
    if (start == HeapGraph::kNone) continue;
    absl::StatusOr<std::vector<uint32_t>> chain = finder.FindPathFrom(start);
    if (!chain.ok()) return FromStatus(chain.status());
    if (chain->empty()) continue;
    ++count;
    PhaseMark("worker", "gcroot-path-found");
    const std::vector<PathRow> rows = RowsOf(ctx, g, *chain);
    PhaseMark("worker", "gcroot-rows");
    if (ctx.json) {
      Json r{{"kind", RootKindName(root.kind)}, {"address", JsonHex(root.address)}};
      if (root.kind == dac::GcRoot::Kind::kHandle) {
        r["handle_kind"] = HandleKindName(root.handle_type);
        if (root.handle_type == dac::kHandleRefCounted) r["ref_count"] = root.ref_count;
      } else if (root.kind == dac::GcRoot::Kind::kStack) {
        r["os_thread_id"] = JsonHex(root.os_thread_id);
        r["stack_pointer"] = JsonHex(root.stack.stack_pointer);
        r["interior"] = root.stack.interior;
      }
      r["path"] = PathJson(ctx, rows);
      json_roots.push_back(std::move(r));
      continue;
    }
    std::string s;
    switch (root.kind) {
      case dac::GcRoot::Kind::kStack: {
        if (last == nullptr || last->kind != dac::GcRoot::Kind::kStack ||
            last->os_thread_id != root.os_thread_id) {
          absl::StrAppendFormat(&s, "Thread %x:\n", root.os_thread_id);
          last_frame.clear();
        }
        std::string frame = frames.Line(root);
        if (frame != last_frame) absl::StrAppend(&s, frame, "\n");
        last_frame = frame;
        absl::StrAppend(&s, RegisterLine(root), "\n");
        break;
      }
      case dac::GcRoot::Kind::kFinalizer:
        if (last == nullptr || last->kind != dac::GcRoot::Kind::kFinalizer) {
          s += "Finalizer Queue:\n";
        }
        absl::StrAppendFormat(&s, "    %016x (finalizer root)\n", root.address);
        break;
      case dac::GcRoot::Kind::kHandle:
        if (last == nullptr || last->kind != dac::GcRoot::Kind::kHandle) s += "HandleTable:\n";
        absl::StrAppendFormat(&s, "    %016x (%s", root.address, HandleKindName(root.handle_type));
        if (root.handle_type == dac::kHandleRefCounted) {
          absl::StrAppend(&s, " RefCount: ", N0(root.ref_count));
        }
        s += ")\n";
        break;
    }
    last = &root;
    AppendPathText(ctx, rows, &s);
    s += "\n";
    PhaseMark("worker", "gcroot-text");
    ctx.out.Write(s);
  }
  if (ctx.json) {
    Json warnings = Json::array();
    for (const std::string& w : g.warnings()) warnings.push_back(w);
    for (const std::string& w : cache.root_warnings) warnings.push_back(w);
    WriteJson(ctx, Json{{"target", JsonHex(target)},
                        {"valid_object", target_index != HeapGraph::kNone},
                        {"roots", std::move(json_roots)},
                        {"count", count},
                        {"warnings", std::move(warnings)}});
    return {};
  }
  ctx.out.Write(absl::StrCat("Found ", N0(count), " unique roots.\n"));
  return {};
}

CommandResult PathToOn(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (const std::string& a : args) {
    if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    }
    positional.push_back(a);
  }
  if (positional.size() != 2) {
    return UsageError(spec, "pathto needs a source and a target object address");
  }
  uint64_t source = 0, target = 0;
  if (!ParseHexAddress(positional[0], &source)) {
    return Failure(absl::StrCat("Could not parse argument 'source': ", positional[0]));
  }
  if (!ParseHexAddress(positional[1], &target)) {
    return Failure(absl::StrCat("Could not parse argument 'target': ", positional[1]));
  }
  absl::StatusOr<const HeapGraph*> graph = GraphOf(ctx);
  if (!graph.ok()) return FromStatus(graph.status());
  const HeapGraph& g = **graph;
  const uint32_t from = g.IndexOf(source), to = g.IndexOf(target);
  if (from == HeapGraph::kNone) {
    return Failure(absl::StrFormat("Source address %x is not a valid object.", source));
  }
  if (to == HeapGraph::kNone) {
    return Failure(absl::StrFormat("Target address %x is not a valid object.", target));
  }
  dac::PathFinder finder(g, to, &ctx.cancel);
  absl::StatusOr<std::vector<uint32_t>> chain = finder.FindPathFrom(from);
  if (!chain.ok()) return FromStatus(chain.status());
  const std::vector<PathRow> rows = RowsOf(ctx, g, *chain);
  if (ctx.json) {
    WriteJson(ctx, Json{{"source", JsonHex(source)},
                        {"target", JsonHex(target)},
                        {"found", !chain->empty()},
                        {"path", PathJson(ctx, rows)}});
    return {};
  }
  if (chain->empty()) {
    ctx.out.Write(absl::StrFormat("Could not find a path from %x to %x\n", source, target));
    return {};
  }
  RootCache& cache = CacheOf(ctx);
  std::string s = cache.announced ? "" : kCachingNotice;
  cache.announced = true;
  AppendPathText(ctx, rows, &s);
  ctx.out.Write(s);
  return {};
}

// Output held back until the command is done, then handed on in pieces of about 1 MiB (a frame
// each on the way to the client: fewer, larger messages than the 64 KiB the worker's sink would
// cut). The pieces are filled in place, each reserved once: no string that grows by doubling
// and is copied again (on this kind of VM every fresh page costs a fault). Progress goes
// through at once.
class HeldOutput : public OutputSink {
 public:
  explicit HeldOutput(OutputSink& inner) : inner_(inner) {}
  void Write(absl::string_view text) override {
    if (pieces_.empty() || pieces_.back().size() + text.size() > kPiece) {
      pieces_.emplace_back();
      pieces_.back().reserve(std::max(kPiece, text.size()));
    }
    pieces_.back().append(text.data(), text.size());
  }
  void Progress(const ProgressInfo& progress) override { inner_.Progress(progress); }
  void Release() {
    for (std::string& piece : pieces_) {
      inner_.Write(piece);
      std::string().swap(piece);
    }
    pieces_.clear();
  }

 private:
  static constexpr size_t kPiece = size_t{1} << 20;
  OutputSink& inner_;
  std::vector<std::string> pieces_;
};

// Runs a command that answers from the heap graph. A graph mapped from its file is checked
// as it is read (HeapGraph::damaged): if the command came upon damage, its output is dropped,
// the file removed, and the command run again on a graph built afresh (and saved).
CommandResult WithCheckedGraph(CommandContext& ctx, const CommandSpec& spec,
                               const std::vector<std::string>& args,
                               CommandResult (*run)(CommandContext&, const CommandSpec&,
                                                    const std::vector<std::string>&)) {
  PhaseMark("worker", "gcroot-start");
  HeldOutput held(ctx.out);
  const bool announced = CacheOf(ctx).announced;
  CommandContext inner{ctx.dac,   ctx.core, ctx.runtime, ctx.location,
                       ctx.state, held,     ctx.cancel,  ctx.json};
  CommandResult result = run(inner, spec, args);
  RootCache& cache = CacheOf(ctx);
  if (!cache.graph || !cache.graph->damaged()) {
    PhaseMark("worker", "gcroot-searched");
    held.Release();
    PhaseMark("worker", "gcroot-released");
    return result;
  }
  cache.graph.reset();
  cache.announced = announced;
  const std::string file = GraphCachePath(ctx);
  if (!file.empty()) ::unlink(file.c_str());
  HeldOutput fresh(ctx.out);
  CommandContext retry{ctx.dac,   ctx.core, ctx.runtime, ctx.location,
                       ctx.state, fresh,    ctx.cancel,  ctx.json};
  result = run(retry, spec, args);
  fresh.Release();
  return result;
}

}  // namespace

void ResetRootNotice(SessionState& state) {
  if (!state.root_cache) return;
  RootCache& cache = *state.root_cache;
  cache.announced = false;
  // The graph file changed (replaced, truncated, written to) since this worker mapped or saved
  // it: the next gcroot maps and checks it again, as a new worker would.
  if (cache.graph && FileIdOf(GraphCachePath(state)) != cache.graph_file_id) {
    cache.graph.reset();
    cache.graph_file_id.clear();
  }
}

namespace {

CommandResult GcRoot(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  return WithCheckedGraph(ctx, spec, args, GcRootOn);
}

CommandResult PathTo(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  return WithCheckedGraph(ctx, spec, args, PathToOn);
}

// objsize -strings: the closure's strings grouped by value and size (dumpheap -strings'
// statistics), after the objects unless -stat. Like the reference, every object of the closure
// must be a string: the first other one ends the command with an error.
CommandResult ObjSizeStrings(CommandContext& ctx, const std::string& header,
                             const std::vector<dac::ObjectRef>& closure, bool stat) {
  absl::StatusOr<dac::UsefulGlobals> globals = ctx.dac.GetUsefulGlobals();
  if (!globals.ok()) return FromStatus(globals.status());
  struct Group {
    std::u16string value;
    uint64_t size = 0, count = 0;
  };
  std::vector<Group> groups;  // first-seen order
  std::map<std::pair<std::u16string, uint64_t>, size_t> index;
  std::string s = ctx.json ? "" : header;
  if (!stat && !closure.empty() && !ctx.json) {
    absl::StrAppendFormat(&s, "%16s %16s %14s\n", "Address", "MT", "Size");
  }
  uint64_t total = 0;
  for (const dac::ObjectRef& o : closure) {
    if (ctx.cancel.cancelled()) return Failure("objsize: cancelled");
    if (!stat && !ctx.json)
      absl::StrAppendFormat(&s, "%16x %16x %14s \n", o.address, o.mt, N0(o.size));
    if (o.mt != globals->string_mt) {
      if (!s.empty()) ctx.out.Write(s);
      return Failure(absl::StrFormat("Object %x is not a string, actual type: %s.", o.address,
                                     NameOf(ctx, o.mt)));
    }
    uint32_t length = 0;
    std::u16string value;
    if (ctx.dac.ReadTargetMemory(o.address + 8, &length, 4) == 4) {
      value.resize(std::min<uint32_t>(length, 1024));
      value.resize(ctx.dac.ReadTargetMemory(o.address + 12, value.data(), value.size() * 2) / 2);
    }
    auto [it, fresh] = index.try_emplace({value, o.size}, groups.size());
    if (fresh) groups.push_back({std::move(value), o.size});
    groups[it->second].count++;
    total += o.size;
  }
  std::vector<const Group*> rows;
  rows.reserve(groups.size());
  for (const Group& gr : groups) rows.push_back(&gr);
  std::stable_sort(rows.begin(), rows.end(), [](const Group* a, const Group* b) {
    return a->count * a->size < b->count * b->size;
  });
  if (ctx.json) {
    Json list = Json::array();
    for (const Group* r : rows) {
      list.push_back(Json{{"count", r->count},
                          {"size", r->size},
                          {"total_size", r->count * r->size},
                          {"value", Utf8Value(r->value)}});
    }
    WriteJson(ctx, Json{{"strings", std::move(list)},
                        {"total_objects", closure.size()},
                        {"total_size", total}});
    return {};
  }
  if (!rows.empty()) {
    if (!stat) s += "\n";
    s += "Statistics:\n";
    for (const Group* r : rows) {
      absl::StrAppendFormat(&s, "%14s %14s %s\n", N0(r->count), N0(r->count * r->size),
                            SanitizedStringValue(r->value, 128));
    }
  }
  ctx.out.Write(s);
  return {};
}

CommandResult ObjSize(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  bool short_ = false, stat = false, strings = false;
  std::string address_text, mt_text;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = absl::AsciiStrToLower(args[i]);
    if (a == "-short") {
      short_ = true;
    } else if (a == "-stat" || a == "-summary") {
      stat = true;
    } else if (a == "-mt") {
      if (i + 1 >= args.size()) return UsageError(spec, "-mt needs a MethodTable address");
      mt_text = args[++i];
    } else if (a == "-strings") {
      strings = true;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", args[i], "'"));
    } else if (address_text.empty()) {
      address_text = args[i];
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  uint64_t mt = 0, address = 0;
  if (!mt_text.empty()) {
    if (!ParseHexAddress(mt_text, &mt)) {
      return Failure(absl::StrCat("Could not parse method table: ", mt_text));
    }
  } else if (address_text.empty()) {
    // The reference fails the same way (its help still describes an older no-argument form).
    return UsageError(spec, "missing object address (or -mt <MethodTable>)");
  } else if (!ParseHexAddress(address_text, &address)) {
    return Failure(absl::StrCat("Could not parse target object address: ", address_text));
  }
  RootCache& cache = CacheOf(ctx);
  if (!cache.reader) {
    absl::StatusOr<std::unique_ptr<dac::ObjectReader>> reader =
        dac::ObjectReader::Create(ctx.dac, &ctx.cancel);
    if (!reader.ok()) return FromStatus(reader.status());
    cache.reader = std::move(*reader);
  }
  dac::ObjectReader& reader = *cache.reader;
  std::vector<uint64_t> start;
  std::string header, root_type;
  if (!mt_text.empty()) {
    // Every object of the MethodTable, in heap order: one walk.
    ProgressInfo progress;
    progress.stage = "walking the heap";
    absl::StatusOr<dac::HeapWalkSummary> walk = dac::WalkHeap(
        ctx.dac,
        [&](const dac::HeapObject& o) {
          if ((++progress.items & 0xfffff) == 0) ctx.out.Progress(progress);
          if (o.mt == mt) start.push_back(o.address);
          return true;
        },
        &ctx.cancel);
    if (!walk.ok()) return FromStatus(walk.status());
    std::string type = "<unknown type>";
    // Only a real MethodTable goes to the DAC (a stray address can crash .NET 8's).
    if (mt != 0 && ctx.dac.LooksLikeMethodTable(mt) && ctx.dac.GetMethodTable(mt).ok()) {
      type = NameOf(ctx, mt);
    }
    header = absl::StrCat("Objects which (", type, ") transitively keep alive:\n\n");
  } else {
    std::optional<dac::ObjectRef> obj = reader.Read(address);
    if (!obj) return Failure(absl::StrFormat("%x is not a valid object", address));
    start.push_back(address);
    root_type = NameOf(ctx, obj->mt);
    header =
        absl::StrFormat("Objects which %x (%s) transitively keep alive:\n\n", address, root_type);
  }
  absl::StatusOr<std::vector<dac::ObjectRef>> closure = reader.Closure(start, &ctx.cancel);
  if (!closure.ok()) return FromStatus(closure.status());
  if (strings) return ObjSizeStrings(ctx, header, *closure, stat);
  // Statistics per MethodTable, first-seen order for ties.
  struct Acc {
    uint64_t mt, count = 0, size = 0;
  };
  std::vector<Acc> stats;
  std::unordered_map<uint64_t, size_t> pos;
  uint64_t total = 0;
  for (const dac::ObjectRef& o : *closure) {
    auto [it, fresh] = pos.try_emplace(o.mt, stats.size());
    if (fresh) stats.push_back({o.mt});
    stats[it->second].count++;
    stats[it->second].size += o.size;
    total += o.size;
  }
  std::stable_sort(stats.begin(), stats.end(),
                   [](const Acc& a, const Acc& b) { return a.size < b.size; });
  if (ctx.json) {
    Json objects = Json::array();
    if (!stat) {
      for (const dac::ObjectRef& o : *closure) {
        objects.push_back(
            Json{{"address", JsonHex(o.address)}, {"mt", JsonHex(o.mt)}, {"size", o.size}});
      }
    }
    Json st = Json::array();
    for (const Acc& a : stats) {
      st.push_back(Json{{"mt", JsonHex(a.mt)},
                        {"count", a.count},
                        {"total_size", a.size},
                        {"type", NameOf(ctx, a.mt)}});
    }
    Json result;
    if (mt_text.empty()) {
      result["address"] = JsonHex(address);
      result["type"] = root_type;
    } else {
      result["mt"] = JsonHex(mt);
    }
    result["objects"] = std::move(objects);
    result["statistics"] = std::move(st);
    result["total_objects"] = closure->size();
    result["total_size"] = total;
    WriteJson(ctx, result);
    return {};
  }
  std::string s = header;
  if (closure->empty()) {
    ctx.out.Write(s);
    return {};
  }
  if (short_) {
    for (const dac::ObjectRef& o : *closure) absl::StrAppendFormat(&s, "%012x\n", o.address);
    ctx.out.Write(s);
    return {};
  }
  if (!stat) {
    absl::StrAppendFormat(&s, "%16s %16s %14s\n", "Address", "MT", "Size");
    for (const dac::ObjectRef& o : *closure) {
      absl::StrAppendFormat(&s, "%16x %16x %14s \n", o.address, o.mt, N0(o.size));
      if (s.size() >= 64 * 1024) {
        ctx.out.Write(s);
        s.clear();
      }
    }
    s += "\n";
  }
  size_t mt_w = 12, count_w = 5, size_w = 9;
  for (const Acc& a : stats) {
    mt_w = std::max(mt_w, absl::StrFormat("%x", a.mt).size());
    count_w = std::max(count_w, N0(a.count).size());
    size_w = std::max(size_w, N0(a.size).size());
  }
  s += "Statistics:\n";
  absl::StrAppendFormat(&s, "%*s %*s %*s Class Name\n", mt_w, "MT", count_w, "Count", size_w,
                        "TotalSize");
  for (const Acc& a : stats) {
    absl::StrAppendFormat(&s, "%*x %*s %*s %s\n", mt_w, a.mt, count_w, N0(a.count), size_w,
                          N0(a.size), NameOf(ctx, a.mt));
  }
  absl::StrAppendFormat(&s, "Total %s objects, %s bytes\n", N0(closure->size()), N0(total));
  ctx.out.Write(s);
  return {};
}

}  // namespace

absl::Status PrepareHeapGraph(CommandContext& ctx) {
  if (GraphCachePath(ctx).empty()) {
    return absl::FailedPreconditionError("this session has no place to keep the heap graph");
  }
  return GraphOf(ctx).status();
}

void RegisterRootCommands(CommandRegistry& r) {
  r.Add({{"gcroot", "GCRoot"},
         "<arguments>",
         "Displays info about references (or roots) to an object at the specified address.",
         "gcroot [-nostacks] [-limit <count>] [-gcgen <generation>] <object address>\n"
         "  Every root that keeps the object alive, with the chain of references from it:\n"
         "  strong GC handles, then the finalizer queue, then the threads' stacks. Roots that\n"
         "  reach the object through a chain already printed show the chain up to it.\n"
         "  -nostacks  leave out the stack roots (handles and the finalizer queue only)\n"
         "  -limit     stop after this many roots\n"
         "  -gcgen     as a collection of this generation would see it: an object of an older\n"
         "             generation survives it (said so, no roots); for 0 and 1 the roots are\n"
         "             the GC's internal root array (only filled while a GC runs, so a dump\n"
         "             taken outside one has none: an error), then handles and the finalizer\n"
         "             queue; other generations: a plain gcroot\n"
         "  (-all, in the help of older SOS versions, is not an option: every root is listed.)",
         GcRoot});
  r.Add({{"pathto", "PathTo"},
         "<source> <target>",
         "Displays the GC path from <source> to <target>.",
         "pathto <source object address> <target object address>\n"
         "  A chain of references from the source object to the target object, if there is\n"
         "  one (found depth-first, as dotnet-dump finds it; not necessarily the shortest).",
         PathTo});
  r.Add({{"objsize", "ObjSize"},
         "<arguments>",
         "Lists the objects an object transitively keeps alive, and their total size.",
         "objsize [-stat] [-short | -strings] <object address>\n"
         "objsize [-stat] [-short | -strings] -mt <MethodTable>\n"
         "  Every object reachable from the object (or from all objects of the MethodTable),\n"
         "  the object itself included, each once, then statistics per type and the total.\n"
         "  -stat (-summary)  only the statistics\n"
         "  -short            only the addresses\n"
         "  -strings          statistics per string value instead of per type; as in\n"
         "                    dotnet-dump, every object reached must be a string (a string,\n"
         "                    or -mt of System.String), else the first other one is an error",
         ObjSize});
}

}  // namespace clrdiag::sos
