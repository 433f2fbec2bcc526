#include "core/sos/format.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/type_name.h"
#include "core/sos/json.h"

namespace clrdiag::sos {

std::string N0(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

int DebuggerThreadIndex(const dac::ManagedThread& t, const elf::CoreFile& core) {
  for (size_t i = 0; i < core.threads().size(); ++i) {
    if (t.os_id != 0 && core.threads()[i].tid == t.os_id) return static_cast<int>(i);
  }
  return -1;
}

std::string ClrThreadsJson(const dac::ThreadStore& ts, const elf::CoreFile& core,
                           const std::vector<Json>& exceptions) {
  Json threads = Json::array();
  for (size_t i = 0; i < ts.threads.size(); ++i) {
    const dac::ManagedThread& t = ts.threads[i];
    int dbg = DebuggerThreadIndex(t, core);
    Json special = Json::array();
    if (t.is_finalizer) special.push_back("Finalizer");
    if (t.is_gc) special.push_back("GC");
    if (t.state & dac::kThreadStateThreadPoolWorker) special.push_back("Threadpool Worker");
    if (t.state & dac::kThreadStateCompletionPort) special.push_back("Threadpool Completion Port");
    threads.push_back(Json{{"debugger_index", dbg < 0 ? Json() : Json(dbg)},
                           {"managed_id", t.managed_id},
                           {"os_id", t.os_id},
                           {"thread_object", JsonHex(t.address)},
                           {"state", JsonHex(t.state)},
                           {"gc_mode", t.preemptive ? "Preemptive" : "Cooperative"},
                           {"alloc_context_pointer", JsonHex(t.alloc_ptr)},
                           {"alloc_context_limit", JsonHex(t.alloc_limit)},
                           {"domain", JsonHex(t.domain)},
                           {"lock_count", t.lock_count},
                           {"special", special},
                           {"exception", i < exceptions.size() ? exceptions[i] : Json()}});
  }
  Json j{{"thread_count", ts.thread_count},
         {"unstarted_count", ts.unstarted_count},
         {"background_count", ts.background_count},
         {"pending_count", ts.pending_count},
         {"dead_count", ts.dead_count},
         {"hosted_runtime", false},
         {"threads", threads}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string FormatClrThreads(const dac::ThreadStore& ts, const elf::CoreFile& core,
                             const std::vector<std::string>& exceptions) {
  std::string out;
  absl::StrAppendFormat(&out, "ThreadCount:      %d\n", ts.thread_count);
  absl::StrAppendFormat(&out, "UnstartedThread:  %d\n", ts.unstarted_count);
  absl::StrAppendFormat(&out, "BackgroundThread: %d\n", ts.background_count);
  absl::StrAppendFormat(&out, "PendingThread:    %d\n", ts.pending_count);
  absl::StrAppendFormat(&out, "DeadThread:       %d\n", ts.dead_count);
  out += "Hosted Runtime:   no\n";
  absl::StrAppendFormat(&out, "%-108sLock  \n", "");
  out +=
      " DBG   ID     OSID ThreadOBJ           State GC Mode     GC Alloc Context                  "
      "Domain           Count Apt Exception\n";
  for (size_t i = 0; i < ts.threads.size(); ++i) {
    const dac::ManagedThread& t = ts.threads[i];
    // DBG is the thread's index in the dump (the debugger's thread number), XXXX if it has
    // no OS thread.
    int index = DebuggerThreadIndex(t, core);
    std::string dbg = index < 0 ? "XXXX" : std::to_string(index);
    std::string exc;
    if (t.is_finalizer) exc += "(Finalizer) ";
    if (t.is_gc) exc += "(GC) ";
    if (t.state & dac::kThreadStateThreadPoolWorker) exc += "(Threadpool Worker) ";
    if (t.state & dac::kThreadStateCompletionPort) exc += "(Threadpool Completion Port) ";
    if (i < exceptions.size()) exc += exceptions[i];
    absl::StrAppendFormat(&out, "%4s %4u %8x %016X %8x %-11s %016X:%016X %016X %06d Ukn %s\n", dbg,
                          t.managed_id, t.os_id, t.address, t.state,
                          t.preemptive ? "Preemptive" : "Cooperative", t.alloc_ptr, t.alloc_limit,
                          t.domain, t.lock_count, exc);
  }
  return out;
}

absl::Status RunDumpHeap(dac::DacProcess& dac, const DumpHeapOptions& o, OutputSink& out,
                         const CancellationToken& cancel, std::shared_ptr<HeapIndex>* index) {
  struct Acc {
    size_t first_seen;
    uint64_t count = 0;
    uint64_t size = 0;
    std::string name;
  };
  std::unordered_map<uint64_t, Acc> by_mt;
  std::unordered_map<uint64_t, std::string> names;
  if (index && *index) names = (*index)->names;
  auto name_of = [&](uint64_t mt) -> const std::string& {
    auto it = names.find(mt);
    if (it != names.end()) return it->second;
    auto n = dac.GetMethodTableName(mt);
    return names[mt] = n.ok() ? dac::PrettyTypeName(*n)
                              : absl::StrCat("<unknown_type_", absl::Hex(mt), ">");
  };
  bool listing = !o.stat;
  std::string buf;
  if (o.json && listing) buf = "{\"objects\":[";
  uint64_t objects = 0, bytes = 0;
  // Progress: bytes of objects walked out of the segments' allocated bytes.
  ProgressInfo progress;
  progress.stage = "walking the heap";
  if (auto segments = dac.GetHeapSegments(); segments.ok()) {
    for (const dac::HeapSegment& seg : *segments) {
      if (seg.end > seg.start) progress.total += seg.end - seg.start;
    }
  }
  const bool reachability = o.live || o.dead;
  // -live/-dead neither use nor build the index: it counts every object.
  if (reachability) index = nullptr;
  std::optional<dac::LiveObjectSet> live_set;
  if (reachability) {
    // As the reference, announce the (slow) reachability pass, except with -short.
    if (!o.json && !o.short_) out.Write("Calculating live objects, this may take a while...\n");
    ProgressInfo marking;
    marking.stage = "marking live objects";
    out.Progress(marking);
    absl::StatusOr<dac::LiveObjectSet> computed = dac::LiveObjectSet::Compute(dac, &cancel);
    if (!computed.ok()) {
      if (o.json) out.Write("null");
      return computed.status();
    }
    live_set = std::move(*computed);
    if (!o.json && !o.short_) {
      out.Write(absl::StrFormat("Calculating live objects complete: %s objects from %s roots\n",
                                N0(live_set->live_objects()), N0(live_set->roots())));
    }
  }
  const bool from_index = index && *index && o.stat && o.min == 0 && o.max == 0;
  // A first complete walk in the session builds the index as it goes (every object, whatever
  // the filters).
  std::shared_ptr<HeapIndex> building;
  std::unordered_map<uint64_t, size_t> building_pos;
  if (index && !*index && !from_index) building = std::make_shared<HeapIndex>();
  auto matches = [&](uint64_t mt) {
    if (o.mt && mt != o.mt) return false;
    return o.type.empty() || absl::StrContains(name_of(mt), o.type);
  };
  std::vector<std::string> warnings;
  if (from_index) {
    for (const HeapIndex::Type& t : (*index)->types) {
      if (!matches(t.mt)) continue;
      by_mt.try_emplace(t.mt, Acc{by_mt.size(), t.count, t.size});
      objects += t.count;
      bytes += t.size;
    }
    warnings = (*index)->warnings;
  }
  auto walk =
      from_index
          ? absl::StatusOr<dac::HeapWalkSummary>(dac::HeapWalkSummary{})
          : dac::WalkHeap(
                dac,
                [&](const dac::HeapObject& obj) {
                  progress.done += obj.footprint;
                  if ((++progress.items & 0xffff) == 0) out.Progress(progress);
                  if (building) {
                    auto [pos, fresh] = building_pos.try_emplace(obj.mt, building->types.size());
                    if (fresh) building->types.push_back({obj.mt, 0, 0});
                    HeapIndex::Type& t = building->types[pos->second];
                    ++t.count;
                    t.size += obj.size;
                  }
                  if (live_set && live_set->IsLive(obj.address) != o.live) return true;
                  if (obj.size < o.min || (o.max && obj.size > o.max)) return true;
                  if (!matches(obj.mt)) return true;
                  auto [it, fresh] = by_mt.try_emplace(obj.mt, Acc{by_mt.size()});
                  it->second.count++;
                  it->second.size += obj.size;
                  ++objects;
                  bytes += obj.size;
                  if (listing && o.json) {
                    absl::StrAppendFormat(&buf,
                                          "%s{\"address\":\"0x%x\",\"mt\":\"0x%x\",\"size\":%u}",
                                          objects == 1 ? "" : ",", obj.address, obj.mt, obj.size);
                    if (buf.size() >= 64 * 1024) {
                      out.Write(buf);
                      buf.clear();
                    }
                  } else if (listing) {
                    // The header comes with the first match: like the reference, nothing at all is
                    // printed when nothing matches.
                    if (objects == 1 && !o.short_) {
                      buf = absl::StrFormat("%16s %16s %14s\n", "Address", "MT", "Size");
                    }
                    if (o.short_) {
                      absl::StrAppendFormat(&buf, "%x\n", obj.address);
                    } else {
                      absl::StrAppendFormat(&buf, "%16x %16x %14s \n", obj.address, obj.mt,
                                            N0(obj.size));
                    }
                    if (buf.size() >= 64 * 1024) {
                      out.Write(buf);
                      buf.clear();
                    }
                  }
                  return true;
                },
                &cancel);
  if (o.json && listing) buf += "]";
  if (!walk.ok()) {
    if (o.json) out.Write(listing ? buf + "}" : "null");  // a complete value before the error
    return walk.status();
  }
  if (!o.json && !buf.empty()) out.Write(buf);
  if (!from_index) warnings = walk->warnings;
  if (live_set) {
    for (const std::string& w : live_set->warnings()) warnings.push_back(w);
  }
  if (building) {
    building->warnings = warnings;
    for (const HeapIndex::Type& t : building->types) name_of(t.mt);
    building->names = names;
    *index = std::move(building);
  }
  std::vector<std::pair<uint64_t, Acc*>> rows;
  rows.reserve(by_mt.size());
  for (auto& [mt, acc] : by_mt) rows.emplace_back(mt, &acc);
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    if (a.second->size != b.second->size) return a.second->size < b.second->size;
    return a.second->first_seen < b.second->first_seen;
  });
  if (o.json) {
    Json stats = Json::array();
    if (!o.short_) {
      for (const auto& [mt, acc] : rows) {
        stats.push_back(Json{{"mt", JsonHex(mt)},
                             {"count", acc->count},
                             {"total_size", acc->size},
                             {"type", name_of(mt)}});
      }
    }
    Json tail{{"statistics", stats},
              {"total_objects", objects},
              {"total_size", bytes},
              {"warnings", warnings}};
    std::string t = tail.dump(-1, ' ', false, Json::error_handler_t::replace);
    // Merge {"objects":[...] with the tail's members.
    out.Write(listing ? absl::StrCat(buf, ",", t.substr(1)) : t);
    return absl::OkStatus();
  }
  if (o.short_ || objects == 0) return absl::OkStatus();
  size_t mt_w = 12, count_w = 5, size_w = 9;
  for (const auto& [mt, acc] : rows) {
    mt_w = std::max(mt_w, absl::StrFormat("%x", mt).size());
    count_w = std::max(count_w, N0(acc->count).size());
    size_w = std::max(size_w, N0(acc->size).size());
  }
  std::string s = listing ? "\nStatistics:\n" : "Statistics:\n";
  absl::StrAppendFormat(&s, "%*s %*s %*s Class Name\n", mt_w, "MT", count_w, "Count", size_w,
                        "TotalSize");
  for (const auto& [mt, acc] : rows) {
    absl::StrAppendFormat(&s, "%*x %*s %*s %s\n", mt_w, mt, count_w, N0(acc->count), size_w,
                          N0(acc->size), name_of(mt));
  }
  absl::StrAppendFormat(&s, "Total %s objects, %s bytes\n", N0(objects), N0(bytes));
  for (const std::string& w : warnings) absl::StrAppendFormat(&s, "warning: %s\n", w);
  out.Write(s);
  return absl::OkStatus();
}

}  // namespace clrdiag::sos
