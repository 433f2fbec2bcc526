#include "core/sos/il_groups.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

namespace clrdiag::sos::il {

IlGroups::IlGroups(const std::vector<Line>& lines, const std::vector<dac::IlAddressMapEntry>& map) {
  // The first map entry with a non-empty native range, per IL offset (one pass over the map).
  std::unordered_map<uint32_t, const dac::IlAddressMapEntry*> first_range;
  for (const dac::IlAddressMapEntry& e : map) {
    if (e.end > e.start) first_range.try_emplace(e.il_offset, &e);
  }
  std::vector<std::string> pending;  // markers before the next instruction
  for (const Line& l : lines) {
    pending.push_back(l.text);
    if (!l.is_instruction) continue;
    const size_t step = steps_.size();
    steps_.push_back(std::move(pending));
    pending.clear();
    auto hit = first_range.find(l.offset);
    if (hit != first_range.end()) {
      groups_.push_back({step, step, hit->second->start, hit->second->end});
    } else if (!groups_.empty()) {
      groups_.back().last = step;
    }
  }
  by_start_.resize(groups_.size());
  for (size_t i = 0; i < groups_.size(); ++i) by_start_[i] = i;
  std::stable_sort(by_start_.begin(), by_start_.end(),
                   [&](size_t a, size_t b) { return groups_[a].start < groups_[b].start; });
  max_end_.resize(by_start_.size());
  uint64_t running = 0;
  for (size_t k = 0; k < by_start_.size(); ++k) {
    running = std::max(running, groups_[by_start_[k]].end);
    max_end_[k] = running;
  }
}

std::vector<std::string> IlGroups::At(uint64_t ip) {
  std::vector<std::string> out;
  // The groups starting at or below ip, walked down while one of them may still reach past ip;
  // of those holding ip and not printed yet, the first in IL order.
  size_t k = static_cast<size_t>(
      std::upper_bound(by_start_.begin(), by_start_.end(), ip,
                       [&](uint64_t v, size_t g) { return v < groups_[g].start; }) -
      by_start_.begin());
  size_t best = groups_.size();
  while (k > 0 && max_end_[k - 1] > ip) {
    --k;
    const Group& g = groups_[by_start_[k]];
    if (!g.done && ip < g.end && by_start_[k] < best) best = by_start_[k];
  }
  if (best == groups_.size()) return out;
  Group& g = groups_[best];
  for (size_t i = g.first; i <= g.last; ++i) {
    for (const std::string& text : steps_[i]) {
      if (text.rfind("} ", 0) == 0) indent_ -= 2;
      // SOS keeps the count unsigned and prints it with %*s: below zero, |count| spaces.
      out.push_back(std::string(static_cast<size_t>(std::abs(indent_)), ' ') + text);
      if (text == "{") indent_ += 2;
    }
  }
  g.done = true;
  return out;
}

}  // namespace clrdiag::sos::il
