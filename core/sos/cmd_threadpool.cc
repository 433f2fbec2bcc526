// Thread-pool and timer commands: threadpool, threadpoolqueue (tpq), timerinfo (ti).
//
// They read the managed state of the portable thread pool (.NET 6+) and of the timer queues the
// way the reference (ClrMD) does: the PortableThreadPool instance (its thread counts and limits),
// its HillClimbing instance (the log), the ThreadPoolWorkQueue's concurrent queues and each
// thread's WorkStealingQueue, and each TimerQueue's short and long timer lists. Like the
// reference, the objects are found by walking the heap (every instance of those types, in heap
// order), then read field by field by name.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"
#include "core/sos/managed_reader.h"

namespace clrdiag::sos {
namespace {

constexpr char kPortablePool[] = "System.Threading.PortableThreadPool";
constexpr char kHillClimbing[] = "System.Threading.PortableThreadPool+HillClimbing";
constexpr char kWorkQueue[] = "System.Threading.ThreadPoolWorkQueue";
constexpr char kStealingQueue[] = "System.Threading.ThreadPoolWorkQueue+WorkStealingQueue";
constexpr char kTimerQueue[] = "System.Threading.TimerQueue";

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

// The items of a ConcurrentQueue<T> of references: every non-null slot of every segment from
// _head along _nextSegment.
std::vector<uint64_t> ConcurrentQueueItems(ManagedReader& r, uint64_t queue,
                                           const CancellationToken& cancel) {
  std::vector<uint64_t> items;
  if (queue == 0 || r.TypeOf(queue) == 0) return items;
  uint64_t segment = 0;
  if (!r.ReadObjectField(queue, "_head", &segment)) return items;
  for (int guard = 0; segment != 0 && guard < 100000 && !cancel.cancelled(); ++guard) {
    uint64_t slots = 0;
    if (r.ReadObjectField(segment, "_slots", &slots)) {
      if (auto a = r.Array(slots)) {
        auto item = r.ValueFieldAddress(a->data, a->element_mt, "Item");
        const uint64_t item_offset = item ? *item - a->data : 0;
        for (uint64_t i = 0; i < a->length && !cancel.cancelled(); ++i) {
          uint64_t obj = 0;
          if (!r.ReadPointer(a->data + i * a->element_size + item_offset, &obj)) break;
          if (obj != 0 && r.TypeOf(obj) != 0) items.push_back(obj);
        }
      }
    }
    uint64_t next = 0;
    if (!r.ReadObjectField(segment, "_nextSegment", &next)) break;
    segment = next;
  }
  return items;
}

// The non-null references of an object array (at most `max` elements).
std::vector<uint64_t> ArrayObjects(ManagedReader& r, uint64_t array, uint64_t max) {
  std::vector<uint64_t> out;
  auto a = r.Array(array);
  if (!a) return out;
  const uint64_t n = std::min(a->length, max);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t obj = 0;
    if (!r.ReadPointer(a->data + i * 8, &obj)) break;
    if (obj != 0 && r.TypeOf(obj) != 0) out.push_back(obj);
  }
  return out;
}

// ClrMDHelper.BuildDelegateMethodName: "Type.Method" of the delegate's target method, with the
// target's type in parentheses when the method is inherited or is another type's.
std::string DelegateMethodName(ManagedReader& r, const std::string& target_type, uint64_t del) {
  uint64_t ptr = 0;
  if (!r.ReadField(del, "_methodPtr", &ptr) || ptr == 0) return "";
  uint64_t md = r.MethodAt(ptr);
  if (md == 0) {
    uint64_t aux = 0;
    if (r.ReadField(del, "_methodPtrAux", &aux)) md = r.MethodAt(aux);
  }
  if (md == 0) return "";
  const std::string method_type = r.MethodTypeName(md);
  const std::string method = r.MethodName(md);
  if (method_type == target_type) return absl::StrCat(target_type, ".", method);
  if (target_type == "System.Threading.WaitCallback" ||
      target_type.rfind("System.Action<", 0) == 0) {
    return absl::StrCat(method_type, ".", method);
  }
  return absl::StrCat("(", target_type, ")", method_type, ".", method);
}

// The delegate's target (object, method name) as ClrMD's ClrDelegate.GetDelegateTarget shows
// it: for a delegate to a static method (the target is the delegate itself) the method is
// found through _methodPtrAux.
std::optional<std::pair<uint64_t, std::string>> DelegateTarget(ManagedReader& r, uint64_t del) {
  uint64_t target = 0, ptr = 0, aux = 0;
  if (!r.ReadObjectField(del, "_target", &target)) return std::nullopt;
  r.ReadField(del, "_methodPtr", &ptr);
  r.ReadField(del, "_methodPtrAux", &aux);
  uint64_t md = 0;
  if (target == del) {
    md = r.MethodAt(aux);
  } else {
    md = r.MethodAt(ptr);
    if (md == 0) md = r.MethodAt(aux);
  }
  if (md == 0) return std::nullopt;
  return std::make_pair(target, r.MethodName(md));
}

bool IsDelegateType(ManagedReader& r, uint64_t mt) {
  for (int depth = 0; mt != 0 && depth < 64; ++depth) {
    auto n = r.dac().GetMethodTableName(mt);
    if (n.ok() && *n == "System.MulticastDelegate") return true;
    auto d = r.dac().GetMethodTableDetails(mt);
    if (!d.ok()) return false;
    mt = d->parent;
  }
  return false;
}

// ----------------------------------------------------------------------------------------
// threadpool

const char* const kTransitions[] = {
    "Warmup",      "Initializing", "RandomMove",     "ClimbingMove",        "ChangePoint",
    "Stabilizing", "Starvation",   "ThreadTimedOut", "CooperativeBlocking", "Undefined"};

std::string TransitionName(int32_t v) {
  if (v >= 0 && v < static_cast<int32_t>(std::size(kTransitions))) return kTransitions[v];
  return absl::StrCat(v);
}

// .NET's "0.00" format: a decimal value D * 10^exp10 rounded half away from zero to hundredths.
std::string Hundredths(bool negative, uint64_t digits, int exp10) {
  // value * 100 = digits * 10^(exp10 + 2)
  int shift = exp10 + 2;
  uint64_t q = digits;
  if (shift >= 0) {
    for (int i = 0; i < shift && q < UINT64_MAX / 10; ++i) q *= 10;
  } else if (-shift > 18) {
    q = 0;
  } else {
    uint64_t div = 1;
    for (int i = 0; i < -shift; ++i) div *= 10;
    q = (digits + div / 2) / div;
  }
  return absl::StrFormat("%s%d.%02d", negative ? "-" : "", q / 100, q % 100);
}

// A tick difference in milliseconds as seconds ("{ms / 1000.0:0.00}").
std::string Seconds(int64_t ms) {
  return Hundredths(ms < 0, static_cast<uint64_t>(ms < 0 ? -ms : ms), -3);
}

// A float as "{f:0.00}" formats it: first to 7 significant digits, then to hundredths.
std::string Fixed2(float f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "\u221e" : "-\u221e";
  if (f == 0) return std::signbit(f) ? "-0.00" : "0.00";
  const std::string e = absl::StrFormat("%.6e", static_cast<double>(f));  // -d.dddddde+XX
  const bool negative = e[0] == '-';
  const size_t start = negative ? 1 : 0;
  uint64_t digits = 0;
  size_t i = start;
  for (; i < e.size() && e[i] != 'e'; ++i) {
    if (e[i] >= '0' && e[i] <= '9') digits = digits * 10 + (e[i] - '0');
  }
  int exp10 = 0;
  if (i < e.size()) exp10 = std::stoi(e.substr(i + 1));
  return Hundredths(negative, digits, exp10 - 6);
}

std::string Row(const std::string& label, int width, const std::string& value) {
  return absl::StrFormat("%-*s %s\n", width, label, value);
}

// The work items as ThreadPoolCommand finds them: per ThreadPoolWorkQueue (high-priority,
// normal, low-priority, assignable queues) and per WorkStealingQueue, in heap order.
struct WorkItem {
  uint64_t object = 0;
  bool high_priority = false;
};

std::vector<WorkItem> AllWorkItems(
    ManagedReader& r, const std::unordered_map<std::string, std::vector<uint64_t>>& found,
    const std::vector<uint64_t>& order, const CancellationToken& cancel) {
  std::vector<WorkItem> items;
  auto is = [&](const char* name, uint64_t obj) {
    auto it = found.find(name);
    return it != found.end() && std::binary_search(it->second.begin(), it->second.end(), obj);
  };
  for (uint64_t obj : order) {
    if (cancel.cancelled()) break;
    if (is(kWorkQueue, obj)) {
      uint64_t q = 0;
      if (r.ReadObjectField(obj, "highPriorityWorkItems", &q)) {
        for (uint64_t i : ConcurrentQueueItems(r, q, cancel)) items.push_back({i, true});
      }
      if (r.ReadObjectField(obj, "workItems", &q)) {
        for (uint64_t i : ConcurrentQueueItems(r, q, cancel)) items.push_back({i, false});
      }
      if (r.ReadObjectField(obj, "lowPriorityWorkItems", &q)) {
        for (uint64_t i : ConcurrentQueueItems(r, q, cancel)) items.push_back({i, false});
      }
      uint64_t assignable = 0;
      if (r.ReadObjectField(obj, "_assignableWorkItemQueues", &assignable) && assignable != 0) {
        if (auto a = r.Array(assignable)) {
          const uint64_t n = std::min<uint64_t>(a->length, 8192);
          for (uint64_t k = 0; k < n; ++k) {
            uint64_t queue = 0;
            if (!r.ReadPointer(a->data + k * 8, &queue)) break;
            for (uint64_t i : ConcurrentQueueItems(r, queue, cancel)) items.push_back({i, false});
          }
        }
      }
    } else if (is(kStealingQueue, obj)) {
      uint64_t array = 0;
      if (r.ReadObjectField(obj, "m_array", &array) && array != 0) {
        for (uint64_t i : ArrayObjects(r, array, 8192)) items.push_back({i, false});
      }
    }
  }
  return items;
}

std::vector<uint64_t> HeapOrder(const std::unordered_map<std::string, std::vector<uint64_t>>& found,
                                std::initializer_list<const char*> names) {
  std::vector<uint64_t> all;
  for (const char* n : names) {
    auto it = found.find(n);
    if (it != found.end()) all.insert(all.end(), it->second.begin(), it->second.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

CommandResult ThreadPool(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  bool hill_climbing = false, work_items = false, stat = false;
  for (const std::string& a : args) {
    const std::string l = Lower(a);
    if (l == "-ti" || l == "-hc") {
      hill_climbing = true;
    } else if (l == "-wi") {
      work_items = true;
    } else if (l == "-stat" || l == "-summary") {
      stat = true;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  ManagedReader r(ctx.dac);
  auto found =
      r.FindObjects({kPortablePool, kHillClimbing, kWorkQueue, kStealingQueue}, ctx.cancel);
  if (!found.ok()) return Failure(std::string(found.status().message()));
  std::string out;
  Json doc = Json::object();
  auto pool_it = found->find(kPortablePool);
  const bool have_pool = pool_it != found->end() && !pool_it->second.empty();
  if (!have_pool) {
    out += "Failed to obtain ThreadPool data.\n";
    doc["error"] = "Failed to obtain ThreadPool data.";
  } else {
    const uint64_t pool = pool_it->second.front();
    int32_t cpu = 0;
    uint16_t min_threads = 0, max_threads = 0;
    r.ReadField(pool, "_cpuUtilization", &cpu);
    r.ReadField(pool, "_minThreads", &min_threads);
    r.ReadField(pool, "_maxThreads", &max_threads);
    uint64_t data = 0;
    uint64_t sep_mt = 0, counts_mt = 0;
    if (auto sep = r.FieldAddress(pool, "_separated", &sep_mt)) {
      if (auto counts = r.ValueFieldAddress(*sep, sep_mt, "counts", &counts_mt)) {
        auto d = r.ValueFieldAddress(*counts, counts_mt, "_data");
        ctx.dac.ReadTargetMemory(d ? *d : *counts, &data, sizeof(data));
      }
    }
    const int processing = static_cast<uint16_t>(data & 0xffff);
    const int existing = static_cast<uint16_t>((data >> 16) & 0xffff);
    const int idle = existing - processing;
    out += "Using the Portable thread pool.\n\n";
    out += Row("CPU utilization:", 17, absl::StrCat(cpu, "%"));
    out += Row("Workers Total:", 17, absl::StrCat(processing + idle));
    out += Row("Workers Running:", 17, absl::StrCat(processing));
    out += Row("Workers Idle:", 17, absl::StrCat(idle));
    out += Row("Worker Min Limit:", 17, absl::StrCat(min_threads));
    out += Row("Worker Max Limit:", 17, absl::StrCat(max_threads));
    out += "\n";
    doc["thread_pool"] = "Portable";
    doc["address"] = JsonHex(pool);
    doc["cpu_utilization"] = cpu;
    doc["workers_total"] = processing + idle;
    doc["workers_running"] = processing;
    doc["workers_idle"] = idle;
    doc["worker_min_limit"] = min_threads;
    doc["worker_max_limit"] = max_threads;

    if (hill_climbing) {
      Json log = Json::array();
      auto hc_it = found->find(kHillClimbing);
      if (hc_it != found->end() && !hc_it->second.empty()) {
        const uint64_t hc = hc_it->second.front();
        int32_t start = 0, size = 0;
        uint64_t log_array = 0;
        r.ReadField(hc, "_logStart", &start);
        r.ReadField(hc, "_logSize", &size);
        r.ReadObjectField(hc, "_log", &log_array);
        auto a = r.Array(log_array);
        struct Entry {
          int32_t tick = 0, transition = 0, threads = 0, samples = 0;
          float throughput = 0;
        };
        std::vector<Entry> entries;
        if (a && size > 0) {
          size = std::min<int32_t>(size, static_cast<int32_t>(a->length));
          auto off = [&](const char* n) {
            auto f = r.ValueFieldAddress(0, a->element_mt, n);
            return f ? *f : 0;
          };
          const uint64_t o_tick = off("tickCount"), o_tr = off("stateOrTransition"),
                         o_new = off("newControlSetting"), o_cnt = off("lastHistoryCount"),
                         o_mean = off("lastHistoryMean");
          for (int32_t i = 0; i < size; ++i) {
            const uint64_t e = a->data + ((i + start) % size) * a->element_size;
            Entry x;
            ctx.dac.ReadTargetMemory(e + o_tick, &x.tick, 4);
            ctx.dac.ReadTargetMemory(e + o_tr, &x.transition, 4);
            ctx.dac.ReadTargetMemory(e + o_new, &x.threads, 4);
            ctx.dac.ReadTargetMemory(e + o_cnt, &x.samples, 4);
            ctx.dac.ReadTargetMemory(e + o_mean, &x.throughput, 4);
            entries.push_back(x);
          }
        }
        if (!entries.empty()) {
          out += "Hill Climbing Log:\n";
          out += absl::StrFormat("%10s %-19s %14s %14s %s\n", "Time", "Transition", "#New Threads",
                                 "#Samples", "Throughput");
          const int32_t end = entries.back().tick;
          for (const Entry& x : entries) {
            const int64_t ms = static_cast<int64_t>(x.tick) - end;
            const double t = ms / 1000.0;
            out += absl::StrFormat("%10s %-19s %14s %14s %s\n", Seconds(ms),
                                   TransitionName(x.transition), N0(x.threads), N0(x.samples),
                                   Fixed2(x.throughput));
            log.push_back(Json{{"time", t},
                               {"transition", TransitionName(x.transition)},
                               {"new_threads", x.threads},
                               {"samples", x.samples},
                               {"throughput", x.throughput}});
          }
          out += "\n";
        }
      }
      doc["hill_climbing_log"] = log;
    }
  }

  if (work_items || stat) {
    const std::vector<uint64_t> order = HeapOrder(*found, {kWorkQueue, kStealingQueue});
    const std::vector<WorkItem> items = AllWorkItems(r, *found, order, ctx.cancel);
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    Json jitems = Json::array();
    if (work_items && !items.empty()) {
      out += "Queue             Object           Type\n";
      for (const WorkItem& w : items) {
        const uint64_t mt = r.TypeOf(w.object);
        const std::string type = r.TypeName(mt);
        out +=
            absl::StrFormat("%-17s %-16s %s\n", w.high_priority ? "[Global high-pri]" : "[Global]",
                            absl::StrFormat("%012x", w.object), type);
        Json j{{"queue", w.high_priority ? "global-high-priority" : "global"},
               {"object", JsonHex(w.object)},
               {"type", type}};
        if (IsDelegateType(r, mt)) {
          if (auto t = DelegateTarget(r, w.object)) {
            out += absl::StrFormat("    => %x %s\n", t->first, t->second);
            j["target"] = JsonHex(t->first);
            j["method"] = t->second;
          }
        }
        jitems.push_back(std::move(j));
      }
    }
    if (work_items) doc["work_items"] = jitems;
    if (stat) {
      // DumpHeap -stat over the work items: per type, ascending by total size.
      struct Stat {
        uint64_t mt = 0, count = 0, size = 0;
        std::string name;
      };
      std::vector<Stat> stats;
      std::map<uint64_t, size_t> index;
      uint64_t total = 0, bytes = 0;
      for (const WorkItem& w : items) {
        auto o = ctx.dac.GetObject(w.object);
        if (!o.ok()) continue;
        auto [it, fresh] = index.emplace(o->mt, stats.size());
        if (fresh) stats.push_back({o->mt, 0, 0, r.TypeName(o->mt)});
        Stat& s = stats[it->second];
        ++s.count;
        s.size += o->size;
        ++total;
        bytes += o->size;
      }
      std::stable_sort(stats.begin(), stats.end(),
                       [](const Stat& a, const Stat& b) { return a.size < b.size; });
      Json jstats = Json::array();
      if (stats.empty()) {
        out += "No queued work items.\n";
      } else {
        size_t wc = 5, ws = 9;
        for (const Stat& s : stats) {
          wc = std::max(wc, N0(s.count).size());
          ws = std::max(ws, N0(s.size).size());
        }
        out += "Statistics:\n";
        out +=
            absl::StrFormat("%12s %*s %*s %s\n", "MT", wc, "Count", ws, "TotalSize", "Class Name");
        for (const Stat& s : stats) {
          out +=
              absl::StrFormat("%12x %*s %*s %s\n", s.mt, wc, N0(s.count), ws, N0(s.size), s.name);
          jstats.push_back(Json{
              {"mt", JsonHex(s.mt)}, {"count", s.count}, {"total_size", s.size}, {"type", s.name}});
        }
        out += absl::StrFormat("Total %s objects, %s bytes\n", N0(total), N0(bytes));
      }
      doc["statistics"] = jstats;
    }
  }
  if (ctx.json) {
    WriteJson(ctx, doc);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ----------------------------------------------------------------------------------------
// threadpoolqueue

struct PoolItem {
  enum Kind { kRaw, kTask, kWork } kind = kRaw;
  uint64_t address = 0;
  std::string method;
};

PoolItem DescribeItem(ManagedReader& r, uint64_t obj) {
  PoolItem p;
  p.address = obj;
  const std::string type = r.ObjectTypeName(obj);
  if (type == "System.Threading.Tasks.Task") {
    p.kind = PoolItem::kTask;
    uint64_t action = 0, target = 0;
    if (!r.ReadObjectField(obj, "m_action", &action) || action == 0 || r.TypeOf(action) == 0) {
      p.method = " [no action]";
      return p;
    }
    if (!r.ReadObjectField(action, "_target", &target) || target == 0 || r.TypeOf(target) == 0) {
      p.method = " [no target]";
      return p;
    }
    p.method = DelegateMethodName(r, r.ObjectTypeName(target), action);
    uint64_t scheduler = 0;
    if (r.ReadObjectField(obj, "m_taskScheduler", &scheduler) && scheduler != 0 &&
        r.TypeOf(scheduler) != 0) {
      const std::string st = r.ObjectTypeName(scheduler);
      if (st != "System.Threading.Tasks.ThreadPoolTaskScheduler") {
        p.method = absl::StrCat(p.method, " [", st, "]");
      }
    }
    return p;
  }
  if (type == "System.Threading.QueueUserWorkItemCallback" ||
      type == "System.Threading.QueueUserWorkItemCallbackDefaultContext") {
    p.kind = PoolItem::kWork;
    uint64_t callback = 0;
    const uint64_t mt = r.TypeOf(obj);
    if (r.FindField(mt, "_callback")) {
      r.ReadObjectField(obj, "_callback", &callback);
    } else if (r.FindField(mt, "callback")) {
      r.ReadObjectField(obj, "callback", &callback);
    } else {
      p.method = "[no callback]";
      return p;
    }
    uint64_t target = 0;
    if (callback == 0 || !r.ReadObjectField(callback, "_target", &target) || target == 0 ||
        r.TypeOf(target) == 0) {
      p.method = "[no callback target]";
      return p;
    }
    p.method = DelegateMethodName(r, r.ObjectTypeName(target), callback);
    return p;
  }
  p.method = type;
  return p;
}

CommandResult ThreadPoolQueue(CommandContext& ctx, const CommandSpec& spec,
                              const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  ManagedReader r(ctx.dac);
  auto found = r.FindObjects({kWorkQueue, kStealingQueue}, ctx.cancel);
  if (!found.ok()) return Failure(std::string(found.status().message()));
  std::vector<PoolItem> global, local;
  if (auto it = found->find(kWorkQueue); it != found->end() && !it->second.empty()) {
    uint64_t q = 0;
    if (r.ReadObjectField(it->second.front(), "workItems", &q)) {
      for (uint64_t i : ConcurrentQueueItems(r, q, ctx.cancel))
        global.push_back(DescribeItem(r, i));
    }
  }
  if (auto it = found->find(kStealingQueue); it != found->end()) {
    for (uint64_t sq : it->second) {
      uint64_t array = 0;
      if (!r.ReadObjectField(sq, "m_array", &array)) continue;
      for (uint64_t i : ArrayObjects(r, array, UINT64_MAX)) local.push_back(DescribeItem(r, i));
    }
  }
  if (ctx.cancel.cancelled()) return Failure("cancelled");

  struct Summary {
    std::vector<std::pair<std::string, int>> counts;  // insertion order
    int total = 0;
    void Add(const std::string& name) {
      ++total;
      for (auto& c : counts) {
        if (c.first == name) {
          ++c.second;
          return;
        }
      }
      counts.emplace_back(name, 1);
    }
  } tasks, works;
  std::string out;
  auto show = [&](const std::vector<PoolItem>& items, Json* j) {
    for (const PoolItem& p : items) {
      const char* kind = p.kind == PoolItem::kTask   ? "Task"
                         : p.kind == PoolItem::kWork ? "Work"
                                                     : "";
      if (p.kind == PoolItem::kRaw) {
        absl::StrAppendFormat(&out, "0x%016X %s\n", p.address, p.method);
      } else {
        absl::StrAppendFormat(&out, "0x%016X %s | %s\n", p.address, kind, p.method);
        (p.kind == PoolItem::kTask ? tasks : works).Add(p.method);
      }
      j->push_back(Json{{"address", JsonHex(p.address)},
                        {"kind", p.kind == PoolItem::kRaw ? "raw" : absl::AsciiStrToLower(kind)},
                        {"method", p.method}});
    }
  };
  Json jglobal = Json::array(), jlocal = Json::array();
  out += "global work item queue________________________________\n";
  show(global, &jglobal);
  out += "\n";
  out += "local per thread work items_____________________________________\n";
  show(local, &jlocal);
  out += "\n";
  auto summary = [&](Summary& s, const char* kind, Json* j) {
    if (s.counts.empty()) return;
    std::stable_sort(s.counts.begin(), s.counts.end(),
                     [](const auto& a, const auto& b) { return a.second < b.second; });
    for (const auto& [name, n] : s.counts) {
      absl::StrAppendFormat(&out, " %4d %s  %s\n", n, kind, name);
      j->push_back(Json{{"count", n}, {"method", name}});
    }
    absl::StrAppendFormat(&out, " ----\n %4d\n\n", s.total);
  };
  Json jtasks = Json::array(), jworks = Json::array();
  summary(tasks, "Task", &jtasks);
  summary(works, "Work", &jworks);
  out += "\n";
  if (ctx.json) {
    WriteJson(ctx, Json{{"global", jglobal},
                        {"local", jlocal},
                        {"tasks", jtasks},
                        {"task_count", tasks.total},
                        {"work_items", jworks},
                        {"work_item_count", works.total}});
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ----------------------------------------------------------------------------------------
// timerinfo

struct Timer {
  uint64_t address = 0;
  uint32_t due = 0, period = 0;
  bool cancelled = false;
  uint64_t state = 0;
  std::string state_type;
  std::string method;
  std::optional<bool> is_short;
};

std::string TimerCallbackName(ManagedReader& r, uint64_t callback) {
  uint64_t ptr = 0;
  if (!r.ReadField(callback, "_methodPtr", &ptr) || ptr == 0) return "";
  const uint64_t md = r.MethodAt(ptr);
  if (md == 0) return "";
  std::string this_type = "?";
  uint64_t target = 0;
  if (r.ReadObjectField(callback, "_target", &target) && target != 0 && r.TypeOf(target) != 0) {
    this_type = r.ObjectTypeName(target);
  } else {
    const std::string t = r.MethodTypeName(md);
    this_type = t.empty() ? "?" : t;
  }
  return absl::StrCat(this_type, ".", r.MethodName(md));
}

Timer ReadTimer(ManagedReader& r, uint64_t t) {
  Timer ti;
  ti.address = t;
  const bool v3 = r.FindField(r.TypeOf(t), "_dueTime").has_value();
  const std::string p = v3 ? "_" : "m_";
  r.ReadField(t, p + "dueTime", &ti.due);
  r.ReadField(t, p + "period", &ti.period);
  uint8_t c = 0;
  r.ReadField(t, p + "canceled", &c);
  ti.cancelled = c != 0;
  uint64_t state = 0;
  if (r.ReadObjectField(t, p + "state", &state) && state != 0 && r.TypeOf(state) != 0) {
    ti.state = state;
    ti.state_type = r.ObjectTypeName(state);
  }
  uint64_t callback = 0;
  if (r.ReadObjectField(t, p + "timerCallback", &callback) && callback != 0 &&
      r.TypeOf(callback) != 0) {
    const std::string ct = r.ObjectTypeName(callback);
    ti.method = ct == "System.Threading.TimerCallback" ? TimerCallbackName(r, callback)
                                                       : absl::StrCat("<", ct, ">");
  } else {
    ti.method = "???";
  }
  return ti;
}

std::string PeriodText(uint32_t period) {
  return period == 0xffffffffu ? "  ------" : absl::StrCat(period);
}

CommandResult TimerInfo(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  ManagedReader r(ctx.dac);
  auto found = r.FindObjects({kTimerQueue}, ctx.cancel);
  if (!found.ok()) return Failure(std::string(found.status().message()));
  std::vector<Timer> timers;
  if (auto it = found->find(kTimerQueue); it != found->end()) {
    for (uint64_t q : it->second) {
      const uint64_t mt = r.TypeOf(q);
      auto walk = [&](uint64_t t, const std::string& next, std::optional<bool> is_short) {
        for (int guard = 0; t != 0 && guard < 1000000 && !ctx.cancel.cancelled(); ++guard) {
          Timer ti = ReadTimer(r, t);
          ti.is_short = is_short;
          timers.push_back(std::move(ti));
          uint64_t n = 0;
          if (!r.ReadObjectField(t, next, &n)) break;
          t = n;
        }
      };
      uint64_t head = 0;
      if (r.FindField(mt, "m_timers")) {
        r.ReadObjectField(q, "m_timers", &head);
        walk(head, "m_next", std::nullopt);
      } else if (r.FindField(mt, "_shortTimers")) {
        r.ReadObjectField(q, "_shortTimers", &head);
        walk(head, "_next", true);
        head = 0;
        r.ReadObjectField(q, "_longTimers", &head);
        walk(head, "_next", false);
      } else {
        return Failure(
            "Missing _shortTimers field. Check the .NET Core version implementation of "
            "TimerQueue.");
      }
    }
  }
  if (ctx.cancel.cancelled()) return Failure("cancelled");
  std::stable_sort(timers.begin(), timers.end(),
                   [](const Timer& a, const Timer& b) { return a.period < b.period; });
  std::string out;
  std::vector<std::pair<std::string, int>> stats;
  Json jtimers = Json::array();
  for (const Timer& t : timers) {
    const std::string sl = t.is_short ? (*t.is_short ? "(S) " : "(L) ") : "";
    absl::StrAppendFormat(&out, "%s0x%016X @%8d ms every %8s ms |  %016X (%s) -> %s\n", sl,
                          t.address, t.due, PeriodText(t.period), t.state, t.state_type, t.method);
    const std::string key = absl::StrFormat("%s@%8d ms every %8s ms | %016X (%s) -> %s", sl, t.due,
                                            PeriodText(t.period), t.state, t.state_type, t.method);
    bool seen = false;
    for (auto& s : stats) {
      if (s.first == key) {
        ++s.second;
        seen = true;
      }
    }
    if (!seen) stats.emplace_back(key, 1);
    Json j{{"address", JsonHex(t.address)},
           {"due_time_ms", t.due},
           {"period_ms", t.period == 0xffffffffu ? Json() : Json(t.period)},
           {"cancelled", t.cancelled},
           {"state", JsonHex(t.state)},
           {"state_type", t.state_type},
           {"callback", t.method}};
    if (t.is_short) j["short"] = *t.is_short;
    jtimers.push_back(std::move(j));
  }
  absl::StrAppendFormat(&out, "\n   %d timers\n-----------------------------------------------\n",
                        timers.size());
  std::stable_sort(stats.begin(), stats.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  Json jsummary = Json::array();
  for (const auto& [line, n] : stats) {
    absl::StrAppendFormat(&out, "%4d | %s\n", n, line);
    jsummary.push_back(Json{{"count", n}, {"timer", line}});
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"timers", jtimers}, {"count", timers.size()}, {"summary", jsummary}});
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ----------------------------------------------------------------------------------------
// taskstate

// ClrMDHelper.GetTaskState: the TaskStatus a Task's m_stateFlags stand for, "" if none.
std::string TaskStatusName(uint64_t flags) {
  if (flags & 0x00200000) return "Faulted";
  if (flags & 0x00400000) return "Canceled";
  if (flags & 0x01000000) return "RanToCompletion";
  if (flags & 0x00800000) return "WaitingForChildrenToComplete";
  if (flags & 0x00020000) return "Running";
  if (flags & 0x00010000) return "WaitingToRun";
  if (flags & 0x02000000) return "WaitingForActivation";
  if (flags == 0) return "Created";
  return "";
}

CommandResult TaskState(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  std::optional<uint64_t> value;
  std::string address_text;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string l = Lower(args[i]);
    if (l == "-v" || l == "--value") {
      uint64_t v = 0;
      if (i + 1 >= args.size() || !absl::SimpleAtoi(args[i + 1], &v)) {
        return UsageError(spec, absl::StrCat(args[i], " needs a decimal m_stateFlags value"));
      }
      value = v;
      ++i;
    } else if (address_text.empty() && l[0] != '-') {
      address_text = args[i];
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  if (address_text.empty() && !value) {
    return UsageError(spec, "missing Task reference address or state value");
  }
  uint64_t flags = value.value_or(0);
  uint64_t address = 0;
  if (!value) {
    if (!ParseHexAddress(address_text, &address)) {
      return UsageError(spec, absl::StrCat("'", address_text,
                                           "' is not a hexadecimal address: either a task "
                                           "address or -v <state value> is expected"));
    }
    ManagedReader r(ctx.dac);
    const uint64_t mt = r.TypeOf(address);
    int32_t raw = 0;
    if (mt == 0 || r.TypeName(mt).rfind("System.Threading.Tasks.Task", 0) != 0 ||
        !r.ReadField(address, "m_stateFlags", &raw) || raw == 0) {
      return Failure(absl::StrFormat(
          "%x is not a Task: either a valid task address or -v <state value> is expected",
          address));
    }
    flags = static_cast<uint64_t>(static_cast<int64_t>(raw));
  }
  const std::string state = TaskStatusName(flags);
  if (state.empty()) {
    return Failure(absl::StrCat("0x", absl::Hex(flags), " is not a valid Task state"));
  }
  if (ctx.json) {
    Json doc{{"state_flags", flags}, {"status", state}};
    if (!value) doc["address"] = JsonHex(address);
    WriteJson(ctx, doc);
  } else {
    ctx.out.Write(absl::StrCat(state, "\n\n"));
  }
  return {};
}

}  // namespace

void RegisterThreadPoolCommands(CommandRegistry& r) {
  r.Add({{"threadpool", "ThreadPool"},
         "[options]",
         "Displays info about the runtime thread pool.",
         "threadpool [-ti|-hc] [-wi] [-stat|-summary]\n"
         "  The portable thread pool's CPU utilization, worker thread counts and limits.\n"
         "  -ti, -hc          also print the hill climbing log.\n"
         "  -wi               also print every queued work item (global, high-priority and\n"
         "                    per-thread queues) with its delegate's target method.\n"
         "  -stat, -summary   also print a dumpheap -stat style summary of the queued work\n"
         "                    items grouped by type.",
         ThreadPool});
  r.Add({{"threadpoolqueue", "tpq"},
         "",
         "Displays queued ThreadPool work items.",
         "threadpoolqueue\n"
         "  The work items of the global queue, then of the per-thread (work-stealing) queues,\n"
         "  each as a Task or a QueueUserWorkItem callback with the method it will run, then a\n"
         "  summary: how many of each, by method.",
         ThreadPoolQueue});
  r.Add({{"timerinfo", "ti"},
         "",
         "Displays information about running timers.",
         "timerinfo\n"
         "  Every timer of the timer queues ((S)hort and (L)ong lists), ordered by period: the\n"
         "  TimerQueueTimer, its due time and period in milliseconds, its state object and the\n"
         "  callback it will run; then a summary of identical timers with their counts.",
         TimerInfo});
  r.Add({{"taskstate", "tks"},
         "<address> | -v <value>",
         "Displays a Task state in a human readable format.",
         "taskstate <Task address> | taskstate -v <m_stateFlags value (decimal)>\n"
         "  The TaskStatus (Created, WaitingForActivation, WaitingToRun, Running,\n"
         "  WaitingForChildrenToComplete, RanToCompletion, Canceled, Faulted) of a Task object's\n"
         "  m_stateFlags, or of the given flags value.",
         TaskState});
}

}  // namespace clrdiag::sos
