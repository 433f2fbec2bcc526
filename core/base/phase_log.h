// Phase timing for measurements (bench/README.md): with CLRDIAG_PHASES=1 in the environment a
// process prints `phase <who> <name> <unix µs>` lines on stderr at the marks placed on a hot
// path (client, daemon session, worker, gcroot). Off by default; a mark then costs one
// cached load and a branch.
#pragma once

#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace clrdiag {

inline bool PhaseLogOn() {
  static const bool on = [] {
    const char* v = std::getenv("CLRDIAG_PHASES");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

inline void PhaseMark(const char* who, const char* name) {
  if (!PhaseLogOn()) return;
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::fprintf(stderr, "phase %s %s %lld\n", who, name,
               static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000);
}

}  // namespace clrdiag
