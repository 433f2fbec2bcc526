// clru -il's grouping of a method's IL by the native code it became, as SOS's `u -il` builds and
// prints it (docs/clru-il-notes.md, "How IL groups are built and when they print").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dac/dac_process.h"
#include "core/sos/il_disasm.h"

namespace clrdiag::sos::il {

// Walking the IL in order, an instruction whose offset has a map entry with a non-empty native
// range (the first such entry) starts a group with that range; any other instruction joins the
// previous group (none before the first group: those are only in the up-front listing). The
// prolog, epilog and no-mapping entries never match an offset, so they are never used.
class IlGroups {
 public:
  // `lines`: il::Disassemble's lines of the method (markers and instructions, in IL order).
  IlGroups(const std::vector<Line>& lines, const std::vector<dac::IlAddressMapEntry>& map);

  // Each region's disassembly counts the block indentation from 0.
  void StartRegion() { indent_ = 0; }

  // The lines of the first group not printed yet whose native range holds `ip` (indented by
  // this region's own count of the blocks they open and close), or none; that group is then
  // done (it is never printed again, in this region or the next).
  std::vector<std::string> At(uint64_t ip);

 private:
  struct Group {
    size_t first, last;   // steps_ indexes
    uint64_t start, end;  // native range
    bool done = false;    // printed already
  };
  std::vector<std::vector<std::string>> steps_;  // per instruction: its markers, then itself
  std::vector<Group> groups_;                    // in IL order
  // groups_ indexes sorted by native start, and the largest end among the first k of them: At
  // looks only at the groups that can hold `ip` (one or two when the ranges do not overlap, as
  // in the JIT's maps), not at every group for every instruction.
  std::vector<size_t> by_start_;
  std::vector<uint64_t> max_end_;
  int indent_ = 0;
};

}  // namespace clrdiag::sos::il
