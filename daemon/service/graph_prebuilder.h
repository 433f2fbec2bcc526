// Builds gcroot's heap graph of each dump that enters the catalog, in the background, so that
// the first `gcroot`/`pathto` of a dump maps a finished file instead of walking the heap (see
// core/dac/root_graph.h and bench/README.md, "gcroot round 2").
//
// One build at a time, in a clrdiag-worker started with --build-graph (at nice 19, with the
// analysis sessions' memory limit), oldest request first. A session that needs the graph
// while it is being built waits for it (the build holds a lock on the dump file) rather than
// walking the heap a second time. A dump leaving the catalog (rm, retention) stops its build.
//
// With warm workers on (analysis.warm_workers > 0), the worker of a new dump's build does not
// exit when the graph is built: it stays, dump open, DAC loaded, graph in memory, as the dump's
// warm worker (WarmWorkers::KeepPrebuilt), so that the dump's first session starts warm. Only
// for dumps that just came (Enqueue), not for the backlog of dumps already in the store at
// start-up: those are old, and keeping each in turn would only push the previous one out.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/worker/worker_process.h"

namespace clrdiag::service {

class WarmWorkers;  // warm_workers.h

class GraphPrebuilder {
 public:
  struct Options {
    std::string store_root;
    std::string worker_path;  // clrdiag-worker
    int64_t worker_memory_mib = 0;
    // Where a new dump's build worker goes once the graph is built (null, or off: it exits).
    // Must outlive the prebuilder, or at least its Stop().
    WarmWorkers* warm = nullptr;
  };
  explicit GraphPrebuilder(Options options);
  ~GraphPrebuilder();  // Stop()
  // Stops the running build (SIGKILL) and the thread; no build starts after it.
  void Stop();
  GraphPrebuilder(const GraphPrebuilder&) = delete;
  GraphPrebuilder& operator=(const GraphPrebuilder&) = delete;

  // Queues the build of dump `id`'s graph (<store>/dumps/<id>/heapgraph).
  void Enqueue(const std::string& id);
  // The same at the lowest priority: built only when no Enqueue'd dump waits (the dumps that
  // were in the store when the daemon started without a valid graph).
  void EnqueueBacklog(const std::string& id);
  // Whether `graph` looks like the graph of `dump`: the file's header has the graph's magic and
  // the dump file's identity (device, inode, size, modification time), as the worker checks
  // before use. The rest is checked when a session reads it.
  static bool GraphLooksValid(const std::string& dump, const std::string& graph);
  // A session opened dump `id`: if its graph is being built, the build goes on at normal
  // priority (it was niced to stay out of the way while nobody needed it). Acts on the
  // daemon's one prebuilder (none: nothing to do).
  static void Boost(const std::string& id);
  // Drops `id` from the queue, and stops its build if it is running; returns once no worker
  // builds it any more.
  void Cancel(const std::string& id);

 private:
  void Loop();
  // `keep`: the worker goes to options_.warm once the graph is built.
  void Build(const std::string& id, bool keep);

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::deque<std::string> backlog_;  // lowest priority (EnqueueBacklog)
  std::string running_id_;           // guarded by mu_
  bool cancel_running_ = false;      // Cancel came before its worker started (guarded by mu_)
  pid_t running_pid_ = 0;            // not yet reaped while nonzero (guarded by mu_)
  std::unique_ptr<worker::WorkerProcess> proc_;  // the running build (guarded by mu_)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace clrdiag::service
