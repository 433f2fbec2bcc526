// `heapdiff`: how a heap grew between two dumps, per type (count and total size), from each
// dump's `dumpheap -stat` (JSON form) run in the daemon. Two entry points: the subcommand
// `clrdiag heapdiff A B` and the session command `heapdiff -base A` (the client intercepts it:
// the session's own dump is B).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/client.h"

namespace clrdiag::cli {

// One heap's per-type totals. Types are keyed by name: MethodTables differ between processes
// (and runs), names do not. Types of the same name from different modules (or load contexts)
// are added together; `mts` says how many MethodTables a name stands for.
struct HeapTypes {
  struct Totals {
    uint64_t count = 0;
    uint64_t size = 0;
    int mts = 0;
  };
  std::map<std::string, Totals> by_name;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  std::vector<std::string> warnings;
};

// Reads the document `dumpheap -stat` wrote in JSON mode ({"command", "result"} or
// {"command", "error"}). False with `error` set if it is not a result.
bool ParseHeapStat(const std::string& document, HeapTypes* out, std::string* error);

// The comparison: the types whose count or size changed, by size growth (largest first; then
// count growth, then name), then the totals. Text, or one JSON value (docs/json-output.md).
std::string FormatHeapDiff(const HeapTypes& a, const HeapTypes& b, const std::string& label_a,
                           const std::string& label_b);
std::string HeapDiffJson(const HeapTypes& a, const HeapTypes& b, const std::string& label_a,
                         const std::string& label_b);

// Opens a session on `dump` (catalog id or daemon-host path), runs `dumpheap -stat` in JSON
// and ends the session. On failure: false, `status` (session errors) or `error` (the
// command's). `cancel`: checked while waiting; set, the call is abandoned.
bool FetchHeapStat(Client& client, const std::string& dump, HeapTypes* out, grpc::Status* status,
                   std::string* error, const std::atomic<bool>* cancel = nullptr);

// `clrdiag heapdiff A B [--json]`: both dumps are read at the same time (two sessions).
int RunHeapDiff(Client& client, const std::string& dump_a, const std::string& dump_b, bool json);

}  // namespace clrdiag::cli
