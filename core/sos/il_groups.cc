#include "core/sos/il_groups.h"

#include <cstdlib>

namespace clrdiag::sos::il {

IlGroups::IlGroups(const std::vector<Line>& lines, const std::vector<dac::IlAddressMapEntry>& map) {
  std::vector<std::string> pending;  // markers before the next instruction
  for (const Line& l : lines) {
    pending.push_back(l.text);
    if (!l.is_instruction) continue;
    const size_t step = steps_.size();
    steps_.push_back(std::move(pending));
    pending.clear();
    const dac::IlAddressMapEntry* hit = nullptr;
    for (const dac::IlAddressMapEntry& e : map) {
      if (e.il_offset == l.offset && e.end > e.start) {
        hit = &e;
        break;
      }
    }
    if (hit != nullptr) {
      groups_.push_back({step, step, hit->start, hit->end});
    } else if (!groups_.empty()) {
      groups_.back().last = step;
    }
  }
}

std::vector<std::string> IlGroups::At(uint64_t ip) {
  std::vector<std::string> out;
  for (auto g = groups_.begin(); g != groups_.end(); ++g) {
    if (ip < g->start || ip >= g->end) continue;
    for (size_t i = g->first; i <= g->last; ++i) {
      for (const std::string& text : steps_[i]) {
        if (text.rfind("} ", 0) == 0) indent_ -= 2;
        // SOS keeps the count unsigned and prints it with %*s: below zero, |count| spaces.
        out.push_back(std::string(static_cast<size_t>(std::abs(indent_)), ' ') + text);
        if (text == "{") indent_ += 2;
      }
    }
    groups_.erase(g);
    break;
  }
  return out;
}

}  // namespace clrdiag::sos::il
