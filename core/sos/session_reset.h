// A new analysis session in a worker that served another one on the same dump (the daemon's
// warm workers, daemon/service/warm_workers.h): what one session set up (current thread, `d`'s
// format, symbol servers, logging switches, histinit's records, gcroot's "caching" notice) is
// forgotten; what is the dump's own (the DAC, the heap index, the heap graph, the GC roots) is
// kept.
#pragma once

#include "core/sos/engine.h"

namespace clrdiag::sos {

struct SessionState;

// The engine's state as a fresh Engine::Open would leave it, the dump's caches kept.
void ResetSession(Engine& engine);
// Whether the session's commands may use the daemon host's files and network
// (EngineOptions::host_access): a worker kept after the background graph build serves the
// first session of whichever caller takes it, and learns that caller's rights with its open
// request.
void SetHostAccess(Engine& engine, bool on);
// cmd_roots.cc: gcroot's per-session notice is shown again.
void ResetRootNotice(SessionState& state);

}  // namespace clrdiag::sos
