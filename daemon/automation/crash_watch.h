// Crash capture, way 2 (docs/crash-capture.md): for a process the daemon holds an EventPipe
// session on (exception keyword, level 4), a dump is requested over IPC the moment an exception
// of a type some `crash` rule (capture: eventpipe|both) watches is thrown: the runtime sends no
// "unhandled" event, and a process that dies of the exception is gone ~5-100 ms later. The dump
// is speculative, then settled:
//   - handled: a catch (ExceptionCatchStart) or the end of the dispatch (ExceptionThrownStop) on
//     the throwing thread, or the process still alive `confirm_window` after the dump was
//     written → the dump is deleted (never catalogued) and nothing fires;
//   - crash: the process died within `confirm_window` of the dump with no catch seen, or
//     (.NET 10) a filter event on the thread's base frame (Thread::StartCallback) said no
//     handler is left → the dump goes into the catalog as a crash dump (origin "crash") and the
//     crash rules fire on it (Engine::OnCrashDump): their egress runs.
// Bounded cost: at most one speculative dump in flight per process, at most the rule's
// speculative.max per speculative.window per process, and only while the rule's limits would
// let it act.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/automation/engine.h"
#include "core/dump/crash_ingest.h"
#include "core/dump/dump_store.h"
#include "core/eventpipe/decoders.h"

namespace clrdiag::daemon_automation {

struct CrashWatchDeps {
  automation::Engine* engine = nullptr;
  dump::DumpStore* store = nullptr;
  dump::CrashIngester* ingester = nullptr;  // moves a confirmed dump into the catalog
  std::string proc_root = "/proc";
  std::function<void(bool warning, const std::string&)> log;
  // A dump that is in the catalog and has been offered to the rules: (dump id, rules fired).
  std::function<void(const std::string&, const std::vector<std::string>&)> on_crash_dump;
};

class CrashWatcher {
 public:
  explicit CrashWatcher(CrashWatchDeps deps);
  ~CrashWatcher();  // waits for the speculations in flight (their dumps are deleted)
  CrashWatcher(const CrashWatcher&) = delete;
  CrashWatcher& operator=(const CrashWatcher&) = delete;

  // From the EventPipe reader of `pid` (keep them short: they only note and wake).
  // `target`: the process's automation::TargetKey.
  void OnThrown(pid_t pid, const std::string& target, const eventpipe::ExceptionThrown& x);
  void OnFlow(pid_t pid, const eventpipe::ExceptionFlow& f);
  void OnExit(pid_t pid);

  struct Stats {
    uint64_t speculative = 0;  // dumps requested
    uint64_t kept = 0;         // confirmed crashes, catalogued
    uint64_t discarded = 0;    // handled (or failed) and deleted
    uint64_t skipped = 0;      // a matching throw with one in flight or over the rate limit
  };
  Stats stats() const;

 private:
  struct Spec;
  void Work(std::shared_ptr<Spec> spec);

  CrashWatchDeps deps_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<pid_t, std::shared_ptr<Spec>> inflight_;
  std::map<pid_t, std::deque<absl::Time>> history_;  // speculative dumps per process
  // One thread per speculative dump; finished ones are joined when the next one starts.
  std::vector<std::pair<std::shared_ptr<Spec>, std::thread>> workers_;
  Stats stats_;
  bool stopping_ = false;
  uint64_t seq_ = 0;
};

}  // namespace clrdiag::daemon_automation
