// dac_probe: exercises the DAC host end to end on one core dump.
//
//   dac_probe CORE [--dac-dir DIR]... [--store ROOT] [--trace] [--no-heap] [--no-host-files]
//             [--no-host-runtimes] [--modules] [--stacks]
//
// Prints the runtime, the managed threads (like SOS `clrthreads`), optionally the modules and
// the managed stacks (--stacks), and heap statistics (like `dumpheap -stat`). --no-host-files:
// never read NT_FILE paths on this host (as when analysing a dump from elsewhere);
// --no-host-runtimes: do not look for the DAC in this host's shared frameworks. Exit status 0
// on success, 1 on error, 2 on bad usage.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/dac_locator.h"
#include "core/dac/dac_process.h"
#include "core/dac/heap_walk.h"
#include "core/elf/core_file.h"

namespace {

using clrdiag::dac::DacProcess;

struct Args {
  std::string core;
  std::vector<std::string> dac_dirs;
  std::string store;
  bool trace = false;
  bool heap = true;
  bool host_files = true;
  bool modules = false;
  bool stacks = false;  // the managed stack of every managed thread
  bool host_runtimes = true;
};

int Usage() {
  std::cerr << "usage: dac_probe CORE [--dac-dir DIR]... [--store ROOT] [--trace] [--no-heap]"
               " [--no-host-files] [--no-host-runtimes] [--modules] [--stacks]\n";
  return 2;
}

// 12345678 -> "12,345,678" (.NET's n0 format).
std::string N0(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

void PrintThreads(const clrdiag::dac::ThreadStore& ts, const clrdiag::elf::CoreFile& core) {
  absl::PrintF("ThreadCount:      %d\n", ts.thread_count);
  absl::PrintF("UnstartedThread:  %d\n", ts.unstarted_count);
  absl::PrintF("BackgroundThread: %d\n", ts.background_count);
  absl::PrintF("PendingThread:    %d\n", ts.pending_count);
  absl::PrintF("DeadThread:       %d\n", ts.dead_count);
  absl::PrintF("Hosted Runtime:   no\n");
  absl::PrintF("%-108sLock  \n", "");
  absl::PrintF(
      " DBG   ID     OSID ThreadOBJ           State GC Mode     GC Alloc Context        "
      "          Domain           Count Apt Exception\n");
  for (const clrdiag::dac::ManagedThread& t : ts.threads) {
    std::string dbg = "XXXX";
    for (size_t i = 0; i < core.threads().size(); ++i) {
      if (t.os_id != 0 && core.threads()[i].tid == t.os_id) dbg = std::to_string(i);
    }
    std::string exc;
    if (t.is_finalizer) exc += "(Finalizer) ";
    if (t.is_gc) exc += "(GC) ";
    if (t.state & clrdiag::dac::kThreadStateThreadPoolWorker) exc += "(Threadpool Worker) ";
    if (t.state & clrdiag::dac::kThreadStateCompletionPort) {
      exc += "(Threadpool Completion Port) ";
    }
    absl::PrintF("%4s %4u %8x %016X %8x %-11s %016X:%016X %016X %06d Ukn %s\n", dbg, t.managed_id,
                 t.os_id, t.address, t.state, t.preemptive ? "Preemptive" : "Cooperative",
                 t.alloc_ptr, t.alloc_limit, t.domain, t.lock_count, exc);
  }
}

void PrintHeapStats(const clrdiag::dac::HeapStats& stats) {
  size_t mt_w = 12, count_w = 5, size_w = 9;
  for (const auto& t : stats.types) {
    mt_w = std::max(mt_w, absl::StrFormat("%x", t.mt).size());
    count_w = std::max(count_w, N0(t.count).size());
    size_w = std::max(size_w, N0(t.total_size).size());
  }
  absl::PrintF("Statistics:\n");
  absl::PrintF("%*s %*s %*s Class Name\n", mt_w, "MT", count_w, "Count", size_w, "TotalSize");
  for (const auto& t : stats.types) {
    absl::PrintF("%*x %*s %*s %s\n", mt_w, t.mt, count_w, N0(t.count), size_w, N0(t.total_size),
                 t.name);
  }
  absl::PrintF("Total %s objects, %s bytes\n", N0(stats.objects), N0(stats.bytes));
  for (const std::string& w : stats.warnings) absl::PrintF("warning: %s\n", w);
}

int Run(const Args& args) {
  auto core_or = clrdiag::elf::CoreFile::Open(args.core);
  if (!core_or.ok()) {
    std::cerr << "dac_probe: " << core_or.status() << "\n";
    return 1;
  }
  std::shared_ptr<const clrdiag::elf::CoreFile> core = std::move(*core_or);

  auto runtime = clrdiag::dac::FindRuntime(*core);
  if (!runtime.ok()) {
    std::cerr << "dac_probe: " << runtime.status() << "\n";
    return 1;
  }
  absl::PrintF("libcoreclr.so: %s at 0x%x, build-id %s\n", runtime->path, runtime->base,
               runtime->build_id);

  clrdiag::dac::DacSearchOptions search;
  search.extra_dirs = args.dac_dirs;
  search.store_root = args.store;
  if (!args.host_runtimes) search.host_framework_roots.clear();
  auto loc = clrdiag::dac::LocateDac(*runtime, search);
  if (!loc.ok()) {
    std::cerr << "dac_probe: " << loc.status() << "\n";
    return 1;
  }

  const std::string& version =
      runtime->version_string.empty() ? loc->version_string : runtime->version_string;
  absl::PrintF("Runtime: .NET %s, %s%s\n",
               runtime->framework_version.empty() ? "?" : runtime->framework_version,
               version.empty() ? "(unknown version)" : version,
               runtime->version_string.empty() ? " (from the matching libcoreclr.so)" : "");

  DacProcess::Options opts;
  opts.dac_path = loc->dac_path;
  opts.target.runtime_base = runtime->base;
  opts.target.file_substitutes[runtime->path] = loc->coreclr_path;
  opts.target.use_host_files = args.host_files;
  if (args.trace) {
    opts.target.trace = [](std::string_view line) { std::cerr << "trace: " << line << "\n"; };
  }
  auto dac = DacProcess::Open(core, std::move(opts));
  if (!dac.ok()) {
    std::cerr << "dac_probe: " << dac.status() << "\n";
    return 1;
  }
  absl::PrintF("DAC: %s (from %s), revision %u\n\n", loc->dac_path, loc->source,
               (*dac)->revision());

  auto threads = (*dac)->GetThreadStore();
  if (!threads.ok()) {
    std::cerr << "dac_probe: " << threads.status() << "\n";
    return 1;
  }
  PrintThreads(*threads, *core);
  absl::PrintF("\n");

  auto gc = (*dac)->GetGcHeapSummary();
  if (gc.ok()) {
    absl::PrintF("GC: %s, %u heap(s), %s, max generation %u\n\n",
                 gc->server ? "server" : "workstation", gc->heap_count,
                 gc->regions ? "regions" : "segments", gc->max_generation);
  }
  if (args.modules) {
    auto modules = (*dac)->GetModules();
    if (!modules.ok()) {
      std::cerr << "dac_probe: " << modules.status() << "\n";
      return 1;
    }
    for (const auto& m : *modules) {
      absl::PrintF("%016X %016X %s%s\n", m.address, m.il_base,
                   m.file.empty() ? "<no file>" : m.file, m.is_dynamic ? " (Dynamic)" : "");
    }
    absl::PrintF("\n");
  }
  if (args.stacks) {
    clrdiag::CancellationToken never;
    for (const clrdiag::dac::ManagedThread& t : threads->threads) {
      if (t.os_id == 0) continue;
      auto stack = (*dac)->WalkStack(t.os_id, {}, never);
      if (!stack.ok()) {
        std::cerr << "dac_probe: " << stack.status() << "\n";
        return 1;
      }
      absl::PrintF("Thread 0x%x:%s%s\n", t.os_id, stack->not_managed ? " not managed" : "",
                   stack->walk_error ? " (walk failed)" : "");
      for (const auto& f : stack->frames) {
        absl::PrintF("  %016X %016X %s%s\n", f.sp, f.ip,
                     f.is_runtime_frame() ? "[" + f.frame_name + "] " : "", f.method_name);
      }
    }
    absl::PrintF("\n");
  }
  if (!args.heap) return 0;
  auto stats = clrdiag::dac::ComputeHeapStats(**dac);
  if (!stats.ok()) {
    std::cerr << "dac_probe: " << stats.status() << "\n";
    return 1;
  }
  PrintHeapStats(*stats);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dac-dir" && i + 1 < argc) {
      args.dac_dirs.emplace_back(argv[++i]);
    } else if (a == "--store" && i + 1 < argc) {
      args.store = argv[++i];
    } else if (a == "--trace") {
      args.trace = true;
    } else if (a == "--no-host-runtimes") {
      args.host_runtimes = false;
    } else if (a == "--modules") {
      args.modules = true;
    } else if (a == "--stacks") {
      args.stacks = true;
    } else if (a == "--no-host-files") {
      args.host_files = false;
    } else if (a == "--no-heap") {
      args.heap = false;
    } else if (!a.empty() && a[0] != '-' && args.core.empty()) {
      args.core = a;
    } else {
      return Usage();
    }
  }
  if (args.core.empty()) return Usage();
  return Run(args);
}
