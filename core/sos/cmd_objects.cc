// Object-inspection commands: dumparray, dumpvc, dumpdelegate, listnearobj, dumpruntimetypes,
// analyzeoom, dumpstackobjects/dso. The field tables come from object_format.{h,cc}.
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/heap_walk.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"
#include "core/sos/object_format.h"

namespace clrdiag::sos {
namespace {

CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

std::string Ptr(uint64_t v) { return absl::StrFormat("%016X", v); }
std::string Dml(uint64_t v) { return absl::StrFormat("%016x", v); }

// A count for -start/-length: decimal, as SOS reads them (SOS reads "0x10" as 0, silently;
// here anything but a decimal number is an error).
bool ParseCount(const std::string& s, uint64_t* out) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         absl::SimpleAtoi(s, out);
}

// Progress of a heap walk: bytes of objects walked out of the segments' allocated bytes,
// reported every 64 Ki objects.
class HeapProgress {
 public:
  HeapProgress(dac::DacProcess& dac, OutputSink& out, const char* stage) : out_(out) {
    info_.stage = stage;
    if (auto segments = dac.GetHeapSegments(); segments.ok()) {
      for (const dac::HeapSegment& seg : *segments) {
        if (seg.end > seg.start) info_.total += seg.end - seg.start;
      }
    }
    out_.Progress(info_);
  }
  void Walked(const dac::HeapObject& o) {
    info_.done += o.footprint;
    if ((++info_.items & 0xffff) == 0) out_.Progress(info_);
  }

 private:
  OutputSink& out_;
  ProgressInfo info_;
};

// ---- dumparray ---------------------------------------------------------------------------

CommandResult DumpArray(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  DumpArrayOptions o;
  std::string address_text;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string lower = absl::AsciiStrToLower(args[i]);
    if (lower == "-start" || lower == "-length") {
      uint64_t v = 0;
      if (i + 1 >= args.size() || !ParseCount(args[i + 1], &v)) {
        return UsageError(spec, absl::StrCat(args[i], " needs a decimal number"));
      }
      ++i;
      (lower == "-start" ? o.start : o.length) = v;
    } else if (lower == "-details") {
      o.details = true;
    } else if (lower == "-nofields") {
      o.no_fields = true;
    } else if (lower == "/d") {
      // DML output: plain text is printed.
    } else if (!args[i].empty() && args[i][0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", args[i], "'"));
    } else if (address_text.empty()) {
      address_text = args[i];
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  if (address_text.empty()) return UsageError(spec, "missing array address");
  uint64_t address = 0;
  if (!ParseHexAddress(address_text, &address) || address == 0) {
    return Failure(absl::StrCat("Invalid parameter ", address_text));
  }
  return FromStatus(
      RunDumpArray(ctx.dac, ctx.core, ctx.runtime, address, o, ctx.out, ctx.cancel, ctx.json));
}

// ---- dumpvc ------------------------------------------------------------------------------

CommandResult DumpVc(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  std::vector<uint64_t> values;
  for (const std::string& a : args) {
    if (absl::AsciiStrToLower(a) == "/d") continue;
    if (!a.empty() && a[0] == '-')
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    uint64_t v = 0;
    if (!ParseHexAddress(a, &v)) return Failure(absl::StrCat("Invalid parameter ", a));
    values.push_back(v);
  }
  if (values.size() != 2) {
    return UsageError(spec, "dumpvc takes a MethodTable and the address of a value");
  }
  auto mtd = ctx.dac.LooksLikeMethodTable(values[0])
                 ? ctx.dac.GetMethodTableDetails(values[0])
                 : absl::StatusOr<dac::MethodTableDetails>(absl::NotFoundError("no MethodTable"));
  if (!mtd.ok() || mtd->is_free) {
    return Failure(absl::StrCat(Ptr(values[0]), " is not a MethodTable"));
  }
  return FromStatus(RunDumpVc(ctx.dac, ctx.core, ctx.runtime, values[0], values[1], ctx.out,
                              ctx.cancel, ctx.json));
}

// ---- dumpdelegate ------------------------------------------------------------------------

bool DerivesFrom(dac::DacProcess& dac, uint64_t mt, const std::string& type) {
  for (int depth = 0; mt != 0 && depth < 1024; ++depth) {
    auto name = dac.GetMethodTableName(mt);
    if (name.ok() && *name == type) return true;
    auto d = dac.GetMethodTableDetails(mt);
    if (!d.ok()) return false;
    mt = d->parent;
  }
  return false;
}

std::optional<uint64_t> ReadPointer(dac::DacProcess& dac, uint64_t address) {
  uint64_t v = 0;
  if (dac.ReadTargetMemory(address, &v, sizeof(v)) != sizeof(v)) return std::nullopt;
  return v;
}

// SOS's TryGetMethodDescriptorForDelegate: _methodPtrAux first (static and open delegates go
// through a shuffle thunk in _methodPtr), then _methodPtr; each as code or a stub.
std::optional<uint64_t> DelegateMethodDesc(dac::DacProcess& dac, uint64_t obj, uint64_t mt) {
  for (const char* field : {"_methodPtrAux", "_methodPtr"}) {
    auto offset = InstanceFieldOffset(dac, mt, field);
    if (!offset.ok()) continue;
    auto ptr = ReadPointer(dac, obj + *offset);
    if (!ptr || *ptr == 0) continue;
    if (auto md = dac.GetMethodDescFromIp(*ptr); md.ok()) return *md;
    if (auto ch = dac.GetCodeHeader(*ptr); ch.ok()) return ch->method_desc;
  }
  return std::nullopt;
}

CommandResult DumpDelegate(CommandContext& ctx, const CommandSpec& spec,
                           const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (const std::string& a : args) {
    if (absl::AsciiStrToLower(a) == "/d") continue;
    if (!a.empty() && a[0] == '-')
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    positional.push_back(a);
  }
  if (positional.size() != 1) return UsageError(spec, "dumpdelegate takes one delegate address");
  uint64_t address = 0;
  if (!ParseHexAddress(positional[0], &address) || address == 0) {
    return Failure(absl::StrCat("Invalid parameter ", positional[0]));
  }
  dac::DacProcess& dac = ctx.dac;
  auto obj = dac.GetObjectDetails(address);
  if (!obj.ok() || obj->kind == dac::kObjFree) {
    return Failure(absl::StrCat(Ptr(address), " is not a valid object"));
  }
  if (!DerivesFrom(dac, obj->mt, "System.Delegate")) {
    auto name = dac.GetMethodTableName(obj->mt);
    return Failure(
        absl::StrCat("Object of type '", name.ok() ? *name : "?", "' is not a delegate."));
  }
  std::string text = "Target           Method           Name\n";
  Json rows = Json::array();
  std::vector<uint64_t> pending = {address};
  // A multicast delegate's invocation list could be corrupt and refer back to itself.
  constexpr size_t kMaxDelegates = 1 << 20;
  size_t visited = 0;
  while (!pending.empty() && visited++ < kMaxDelegates) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    const uint64_t d = pending.back();
    pending.pop_back();
    auto o = dac.GetObjectDetails(d);
    if (!o.ok()) continue;
    auto target_off = InstanceFieldOffset(dac, o->mt, "_target");
    auto list_off = InstanceFieldOffset(dac, o->mt, "_invocationList");
    auto count_off = InstanceFieldOffset(dac, o->mt, "_invocationCount");
    if (!target_off.ok() || !list_off.ok() || !count_off.ok()) continue;
    auto target = ReadPointer(dac, d + *target_off);
    auto list = ReadPointer(dac, d + *list_off);
    int32_t count = 0;
    if (!target || !list || dac.ReadTargetMemory(d + *count_off, &count, 4) != 4) continue;
    if (*list == 0) {
      auto md = DelegateMethodDesc(dac, d, o->mt);
      std::string name;
      if (md) {
        auto n = dac.GetMethodDescName(*md);
        name = n.ok() ? *n : "";
        absl::StrAppend(&text, Dml(*target), " ", Dml(*md), " ", name, "\n");
      } else {
        absl::StrAppend(&text, Dml(*target), " (unknown)\n");
      }
      rows.push_back(Json{{"delegate", JsonHex(d)},
                          {"target", JsonHex(*target)},
                          {"method_desc", md ? Json(JsonHex(*md)) : Json(nullptr)},
                          {"method", md ? Json(name) : Json(nullptr)}});
      continue;
    }
    // A multicast delegate: its invocation list holds the delegates it calls, in order.
    auto arr = dac.GetObjectDetails(*list);
    if (!arr.ok() || arr->kind != dac::kObjArray || count < 0 ||
        static_cast<uint64_t>(count) > arr->components) {
      continue;
    }
    for (int32_t i = 0; i < count; ++i) {
      auto e = ReadPointer(dac, arr->array_data + i * arr->component_size);
      if (e && *e != 0 && dac.GetObjectDetails(*e).ok()) pending.push_back(*e);
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"address", JsonHex(address)}, {"delegates", rows}});
  } else {
    ctx.out.Write(text);
  }
  return {};
}

// ---- analyzeoom --------------------------------------------------------------------------

CommandResult AnalyzeOom(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  auto ooms = ctx.dac.GetOomInfo();
  if (!ooms.ok()) return Failure(std::string(ooms.status().message()));
  std::string text;
  Json list = Json::array();
  for (const dac::OomInfo& oom : *ooms) {
    if (oom.reason == 0 && oom.get_memory_failure == 0) continue;
    const char* reason = "";
    switch (oom.reason) {
      case 1:
      case 3:
        reason = "OOM was due to an internal .Net error, likely a bug in the GC";
        break;
      case 2:
        reason = "Didn't have enough memory to commit";
        break;
      case 4:
        reason = "Didn't have enough memory to allocate an LOH segment";
        break;
      case 5:
        reason = "Low on memory during GC";
        break;
      case 6:
        reason = "Could not do a full GC";
        break;
    }
    const std::string reason_text = *reason ? reason : absl::StrCat(oom.reason);
    absl::StrAppend(&text, reason_text, "\n");
    Json entry{{"heap", oom.heap},
               {"reason", reason_text},
               {"gc_index", oom.gc_index},
               {"alloc_size", oom.alloc_size},
               {"large_object_heap", oom.large_object_heap}};
    if (oom.get_memory_failure != 0) {
      const char* failure = "";
      switch (oom.get_memory_failure) {
        case 1:
          failure = "Failed to reserve memory";
          break;
        case 2:
          failure = "Didn't have enough memory to commit beginning of the segment";
          break;
        case 3:
          failure = "Didn't have enough memory to commit the new ephemeral segment";
          break;
        case 4:
          failure = "Didn't have enough memory to grow the internal GC data structures";
          break;
        case 5:
          failure = "Didn't have enough memory to commit the internal GC data structures";
          break;
      }
      const std::string failure_text = *failure ? failure : absl::StrCat(oom.get_memory_failure);
      absl::StrAppend(&text, "Details: ", oom.large_object_heap ? "LOH" : "SOH", " ", failure_text,
                      " ", N0(oom.size), " bytes\n");
      entry["failure"] = failure_text;
      entry["size"] = oom.size;
      if (oom.available_pagefile_mb != 0) {
        absl::StrAppend(&text, " - on GC entry available commit space was ",
                        N0(oom.available_pagefile_mb), " MB\n");
        entry["available_commit_mb"] = oom.available_pagefile_mb;
      }
    }
    list.push_back(std::move(entry));
  }
  if (list.empty()) text = "There was no managed OOM due to allocations on the GC heap\n";
  if (ctx.json) {
    WriteJson(ctx, Json{{"ooms", list}});
  } else {
    ctx.out.Write(text);
  }
  return {};
}

// ---- dumpruntimetypes --------------------------------------------------------------------

CommandResult DumpRuntimeTypes(CommandContext& ctx, const CommandSpec& spec,
                               const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  dac::DacProcess& dac = ctx.dac;
  auto globals = dac.GetUsefulGlobals();
  if (!globals.ok()) return Failure(std::string(globals.status().message()));
  uint64_t domain = 0;
  if (auto store = dac.GetAppDomainStore(); store.ok() && !store->domains.empty()) {
    domain = store->domains[0];
  }
  std::optional<uint64_t> runtime_type_mt;
  std::optional<uint32_t> handle_offset;
  std::string text;
  Json rows = Json::array();
  bool any = false;
  HeapProgress progress(dac, ctx.out, "looking for System.RuntimeType objects");
  auto walked = dac::WalkHeap(
      dac,
      [&](const dac::HeapObject& obj) {
        progress.Walked(obj);
        if (obj.mt == globals->free_mt) return true;
        if (!runtime_type_mt) {
          auto name = dac.GetMethodTableName(obj.mt);
          if (!name.ok() || *name != "System.RuntimeType") return true;
          runtime_type_mt = obj.mt;
          auto off = InstanceFieldOffset(dac, obj.mt, "m_handle");
          if (off.ok()) handle_offset = *off;
        }
        if (obj.mt != *runtime_type_mt || !handle_offset) return true;
        auto handle = ReadPointer(dac, obj.address + *handle_offset);
        if (!handle) return true;
        std::string type_name;
        uint64_t row_domain = 0;
        if ((*handle & 2) == 0) {
          auto n = dac.GetMethodTableName(*handle);
          if (n.ok()) {
            type_name = dac::PrettyTypeName(*n);
            row_domain = domain;
          } else {
            type_name = absl::StrFormat("%x", *handle);
          }
        } else {
          type_name = absl::StrFormat(
              "typehandle: %x (SOS does not support resolving typehandle names.)", *handle);
        }
        if (!any) {
          absl::StrAppendFormat(&text, "%16s %16s %16s %s\n", "Address", "Domain", "MT",
                                "Type Name");
          any = true;
        }
        absl::StrAppendFormat(&text, "%16x %16s %16x %s\n", obj.address,
                              row_domain != 0 ? absl::StrFormat("%x", row_domain) : "", *handle,
                              type_name);
        rows.push_back(Json{{"address", JsonHex(obj.address)},
                            {"domain", row_domain != 0 ? Json(JsonHex(row_domain)) : Json(nullptr)},
                            {"mt", JsonHex(*handle)},
                            {"type", type_name}});
        return true;
      },
      &ctx.cancel);
  if (!walked.ok()) return Failure(std::string(walked.status().message()));
  if (!any) text = "No System.RuntimeType objects found.\n";
  if (ctx.json) {
    WriteJson(ctx, Json{{"runtime_types", rows}});
  } else {
    ctx.out.Write(text);
  }
  return {};
}

// ---- listnearobj -------------------------------------------------------------------------

struct NearObject {
  uint64_t address = 0;
  uint64_t size = 0;
  uint64_t mt = 0;
  bool valid() const { return address != 0; }
};

// ClrMD's AlignObj: 8 bytes on a 64-bit target, in every kind of segment.
uint64_t AlignObj(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

class NearObjPrinter {
 public:
  NearObjPrinter(dac::DacProcess& dac, bool json) : dac_(dac), json_(json) {}

  std::string TypeName(uint64_t mt) {
    auto n = dac_.GetMethodTableName(mt);
    if (mt == free_mt_) return "Free";
    return n.ok() ? dac::PrettyTypeName(*n) : absl::StrFormat("<unknown_type_%x>", mt);
  }

  void Row(const std::string& kind, const std::string& address, uint64_t size,
           const std::string& type) {
    const std::string size_text =
        size > 0 ? absl::StrFormat("%s (0x%x)", N0(size), size) : std::string();
    absl::StrAppendFormat(&text_, "%-9s %*s %-32s %s\n", kind, width_, address, size_text, type);
  }

  void Object(const std::string& kind, const NearObject& o) {
    const std::string type = TypeName(o.mt);
    Row(kind, absl::StrFormat("%x", o.address), o.size, type);
    rows_.push_back(Json{{"kind", kind.substr(0, kind.size() - 1)},
                         {"address", JsonHex(o.address)},
                         {"size", o.size},
                         {"type", type}});
  }

  void Line(const std::string& line) {
    text_ += line + "\n";
    messages_.push_back(line);
  }

  // An allocation context between `from` and `to` (or holding `to`) is an expected gap: printed,
  // and the end of the gap (with the minimum object the GC leaves after it) returned; else 0.
  uint64_t Gap(uint64_t from, uint64_t to) {
    for (const auto& [start, end] : contexts_) {
      const bool overlaps = start < to && from < end;
      const bool holds_end = start <= to && to < end;
      if (!overlaps && !holds_end) continue;
      Row("Gap:", absl::StrFormat("%x-%x", start, end), end - start,
          "GC Allocation Context (expected gap in the heap)");
      rows_.push_back(Json{{"kind", "Gap"},
                           {"start", JsonHex(start)},
                           {"end", JsonHex(end)},
                           {"size", end - start}});
      return end + AlignObj(24);
    }
    return 0;
  }

  void CheckEnd(const dac::HeapSegment& seg, uint64_t expected, uint64_t last, bool* consistent,
                bool* found_last) {
    if ((expected >= seg.start && expected < seg.end) || *found_last) return;
    Line(absl::StrFormat("%x is the last object on the segment", last));
    if (expected != seg.end) {
      Line(absl::StrFormat("Error: Expected allocated end at %x, but instead was at %x", expected,
                           seg.end));
      *consistent = false;
    }
    *found_last = true;
  }

  absl::Status Run(uint64_t address, const CancellationToken& cancel, OutputSink& out);

 private:
  dac::DacProcess& dac_;
  bool json_;
  uint64_t free_mt_ = 0;
  int width_ = 16;
  std::vector<std::pair<uint64_t, uint64_t>> contexts_;  // in this segment, by start
  std::string text_;
  Json rows_ = Json::array();
  Json messages_ = Json::array();
};

absl::Status NearObjPrinter::Run(uint64_t address, const CancellationToken& cancel,
                                 OutputSink& out) {
  address &= ~uint64_t{7};
  auto globals = dac_.GetUsefulGlobals();
  if (!globals.ok()) return globals.status();
  free_mt_ = globals->free_mt;
  auto segments_or = dac_.GetHeapSegments();
  if (!segments_or.ok()) return segments_or.status();
  std::vector<dac::HeapSegment> segments = *segments_or;
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  const dac::HeapSegment* seg = nullptr;
  for (const auto& s : segments) {
    if ((address >= s.start && address < s.end) || (address >= s.start && address < s.committed)) {
      seg = &s;
      break;
    }
  }
  if (!seg) {
    return absl::NotFoundError(absl::StrFormat(
        "Failed to find the segment of the managed heap where the object %x resides", address));
  }
  if (seg->end <= seg->start) {
    return absl::NotFoundError(absl::StrFormat("Segment %x has no objects.", seg->address));
  }
  if (auto ctxs = dac_.GetAllocationContexts(); ctxs.ok()) {
    for (const auto& [start, end] : *ctxs) {
      if (start >= seg->start && start < seg->end) contexts_.emplace_back(start, end);
    }
    std::sort(contexts_.begin(), contexts_.end());
    for (const auto& [start, end] : contexts_) {
      width_ = std::max<int>(width_, absl::StrFormat("%x-%x", start, end).size());
    }
  }

  // The objects around `address` in its segment, from a walk of the heap.
  NearObject prev, curr, next;
  bool in_segment = false;
  HeapProgress progress(dac_, out, "walking the heap to the address");
  auto walked = dac::WalkHeap(
      dac_,
      [&](const dac::HeapObject& o) {
        progress.Walked(o);
        if (o.segment == nullptr || o.segment->start != seg->start) return !in_segment;
        in_segment = true;
        NearObject n{o.address, o.size, o.mt};
        if (o.address < address) {
          prev = n;
        } else if (o.address == address) {
          curr = n;
        } else {
          next = n;
          return false;
        }
        return true;
      },
      &cancel);
  if (!walked.ok()) return walked.status();

  bool consistent = true;
  bool found_last = false;
  uint64_t expected = 0;
  if (address > seg->start) {
    if (prev.valid()) {
      Object("Before:", prev);
      expected = AlignObj(prev.address + prev.size);
    } else {
      consistent = false;
      expected = curr.valid() ? curr.address : next.address;
    }
    if (uint64_t gap_end = Gap(prev.address, expected); gap_end != 0) {
      if (gap_end > expected) expected = gap_end;
    }
    CheckEnd(*seg, expected, prev.address, &consistent, &found_last);
  } else {
    Line(address < seg->start
             ? absl::StrFormat("Address %x is before the first object on the segment.", address)
             : absl::StrFormat("Address %x is the first object on the segment.", address));
    expected = seg->start;
  }
  if (curr.valid()) {
    Object("Current:", curr);
    expected = AlignObj(curr.address + curr.size);
    if (uint64_t gap_end = Gap(curr.address, expected); gap_end != 0) {
      expected = std::max(expected, gap_end);
    }
    CheckEnd(*seg, expected, curr.address, &consistent, &found_last);
  }
  if (!found_last) {
    if (next.valid()) {
      Object("Next:", next);
      if (next.address != expected) {
        consistent = false;
        Line(absl::StrFormat("Expected to find next object at %x, instead found it at %x.",
                             expected, next.address));
      }
    } else {
      consistent = false;
      Line(absl::StrFormat("Could not find object after %x", address));
    }
  }
  text_ += consistent ? "Heap local consistency confirmed.\n"
                      : "Heap local consistency not confirmed.\n";
  if (json_) {
    Json doc{{"address", JsonHex(address)},
             {"segment", JsonHex(seg->address)},
             {"objects", rows_},
             {"messages", messages_},
             {"consistent", consistent}};
    out.Write(doc.dump(-1, ' ', false, Json::error_handler_t::replace));
  } else {
    out.Write(text_);
  }
  return absl::OkStatus();
}

CommandResult ListNearObj(CommandContext& ctx, const CommandSpec& spec,
                          const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError(spec, "listnearobj takes one address");
  if (!args[0].empty() && args[0][0] == '-') {
    return UsageError(spec, absl::StrCat("unknown option '", args[0], "'"));
  }
  uint64_t address = 0;
  if (!ParseHexAddress(args[0], &address)) {
    return Failure(absl::StrCat("Could not parse address: ", args[0]));
  }
  NearObjPrinter p(ctx.dac, ctx.json);
  return FromStatus(p.Run(address, ctx.cancel, ctx.out));
}

// ---- dumpstackobjects / dso --------------------------------------------------------------

// The registers dotnet-dump's thread service lists for x64 (the CONTEXT's segment, flag,
// integer and control registers, in that order) with where their values are in the core.
struct RegisterSlot {
  const char* name;
  uint64_t elf::X64Registers::*value;
};
constexpr RegisterSlot kRegisters[] = {
    {"cs", &elf::X64Registers::cs},         {"ds", &elf::X64Registers::ds},
    {"es", &elf::X64Registers::es},         {"fs", &elf::X64Registers::fs},
    {"gs", &elf::X64Registers::gs},         {"ss", &elf::X64Registers::ss},
    {"eflags", &elf::X64Registers::eflags}, {"rax", &elf::X64Registers::rax},
    {"rcx", &elf::X64Registers::rcx},       {"rdx", &elf::X64Registers::rdx},
    {"rbx", &elf::X64Registers::rbx},       {"rsp", &elf::X64Registers::rsp},
    {"rbp", &elf::X64Registers::rbp},       {"rsi", &elf::X64Registers::rsi},
    {"rdi", &elf::X64Registers::rdi},       {"r8", &elf::X64Registers::r8},
    {"r9", &elf::X64Registers::r9},         {"r10", &elf::X64Registers::r10},
    {"r11", &elf::X64Registers::r11},       {"r12", &elf::X64Registers::r12},
    {"r13", &elf::X64Registers::r13},       {"r14", &elf::X64Registers::r14},
    {"r15", &elf::X64Registers::r15},       {"rip", &elf::X64Registers::rip},
};
constexpr uint64_t kRegisterCount = sizeof(kRegisters) / sizeof(kRegisters[0]);

// How far past the last managed frame, and past the stack pointer when there are no frames,
// the stack is scanned (dotnet-dump's bounds on Linux, where there is no TEB).
constexpr uint64_t kPastLastFrame = 0x2000;
constexpr uint64_t kNoFramesSpan = 0xFFFF;
// Frames further apart than this are on two stacks (an alternate signal stack).
constexpr uint64_t kStackGap = 0x400000;
constexpr size_t kStackChunk = 64 * 1024;

uint64_t AlignDown(uint64_t v) { return v & ~uint64_t{7}; }
uint64_t AlignUp(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

struct Range {
  uint64_t start = 0, end = 0;
};

// dotnet-dump's stack bounds: from the lowest of SP and the frames' SPs to 8 KiB past the
// highest frame; on an alternate signal stack (SP far from the frames) around SP, with the
// frames' range scanned as well.
void StackRanges(uint64_t sp, std::vector<uint64_t> frame_sps, Range* range, Range* extra) {
  *extra = {};
  if (frame_sps.empty()) {
    *range = {AlignDown(sp), AlignUp(sp + kNoFramesSpan)};
    return;
  }
  std::sort(frame_sps.begin(), frame_sps.end());
  uint64_t largest = 0;
  size_t gap_index = 0;
  for (size_t i = 1; i < frame_sps.size(); ++i) {
    if (frame_sps[i] - frame_sps[i - 1] > largest) {
      largest = frame_sps[i] - frame_sps[i - 1];
      gap_index = i;
    }
  }
  if (largest > kStackGap && gap_index > 0) {
    const uint64_t lo_min = frame_sps[0], lo_max = frame_sps[gap_index - 1];
    const uint64_t hi_min = frame_sps[gap_index], hi_max = frame_sps.back();
    Range lower{AlignDown(lo_min), AlignUp(lo_max + kPastLastFrame)};
    Range upper{AlignDown(hi_min), AlignUp(hi_max + kPastLastFrame)};
    if (sp >= std::max(lo_min, kStackGap) - kStackGap && sp <= lo_max + kPastLastFrame) {
      *range = {AlignDown(std::min(sp, lo_min)), lower.end};
      *extra = upper;
    } else if (sp >= std::max(hi_min, kStackGap) - kStackGap && sp <= hi_max + kPastLastFrame) {
      *range = {AlignDown(std::min(sp, hi_min)), upper.end};
      *extra = lower;
    } else {
      *extra = hi_max - hi_min >= lo_max - lo_min ? upper : lower;
      *range = {AlignDown(sp), AlignUp(sp + kNoFramesSpan)};
    }
    return;
  }
  const uint64_t min_sp = frame_sps.front(), end = frame_sps.back() + kPastLastFrame;
  if (sp > end || (sp < min_sp && min_sp - sp > kStackGap)) {
    *extra = {AlignDown(min_sp), AlignUp(end)};
    *range = {AlignDown(sp), AlignUp(sp + kNoFramesSpan)};
    return;
  }
  *range = {AlignDown(std::min(sp, min_sp)), AlignUp(end)};
}

CommandResult DumpStackObjects(CommandContext& ctx, const CommandSpec& spec,
                               const std::vector<std::string>& args) {
  bool verify = false;
  std::vector<uint64_t> bounds;
  for (const std::string& a : args) {
    if (absl::AsciiStrToLower(a) == "-verify") {
      verify = true;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else {
      uint64_t v = 0;
      if (!ParseHexAddress(a, &v) || v == 0) {
        return Failure(absl::StrCat("Failed to parse address '", a, "'."));
      }
      bounds.push_back(v);
    }
  }
  if (!bounds.empty() && bounds.size() != 2) {
    return UsageError(spec, "give both the top and the bottom of the stack, or neither");
  }
  const auto& threads = ctx.core.threads();
  if (ctx.state.current_thread < 0 ||
      static_cast<size_t>(ctx.state.current_thread) >= threads.size()) {
    return Failure("no current thread (select one with setthread)");
  }
  const elf::CoreThread& thread = threads[ctx.state.current_thread];
  dac::DacProcess& dac = ctx.dac;

  auto segments_or = dac.GetHeapSegments();
  if (!segments_or.ok() || segments_or->empty()) return Failure("Cannot walk heap.");
  std::vector<dac::HeapSegment> segments = *segments_or;
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  const uint64_t min_address = segments.front().start;
  const uint64_t max_address = segments.back().end - 8;

  Range range, extra;
  if (bounds.size() == 2) {
    range = {AlignDown(std::min(bounds[0], bounds[1])), AlignUp(std::max(bounds[0], bounds[1]))};
  } else {
    std::vector<uint64_t> frame_sps;
    auto stack = dac.WalkStack(thread.tid, dac::StackWalkOptions{}, ctx.cancel);
    if (stack.ok()) {
      for (const dac::StackFrame& f : stack->frames) {
        if (f.sp != 0) frame_sps.push_back(f.sp);
      }
    }
    StackRanges(thread.regs.rsp, std::move(frame_sps), &range, &extra);
  }

  // Candidates: (where, value) for every pointer-sized stack slot and register whose value
  // lies within the heap's bounds. Registers are "where" 0..kRegisterCount-1.
  std::vector<std::pair<uint64_t, uint64_t>> candidates;
  auto scan = [&](const Range& r) {
    std::vector<uint8_t> buf(kStackChunk);
    for (uint64_t at = r.start; at < r.end;) {
      const size_t want = std::min<uint64_t>(kStackChunk, r.end - at);
      const size_t got = dac.ReadTargetMemory(at, buf.data(), want) & ~size_t{7};
      if (got < 8) break;
      for (size_t i = 0; i < got; i += 8) {
        uint64_t v = 0;
        std::memcpy(&v, buf.data() + i, 8);
        if (v >= min_address && v < max_address) candidates.emplace_back(at + i, v);
      }
      at += got;
    }
  };
  scan(range);
  if (extra.start != 0 && extra.end != 0) scan(extra);
  for (uint64_t i = 0; i < kRegisterCount; ++i) {
    const uint64_t v = thread.regs.*kRegisters[i].value;
    if (v >= min_address && v < max_address) candidates.emplace_back(i, v);
  }

  // Keep those that are objects: walk the heap once, matching the sorted values.
  std::vector<uint64_t> values;
  values.reserve(candidates.size());
  for (const auto& c : candidates) values.push_back(c.second);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::unordered_map<uint64_t, uint64_t> found;  // object -> MethodTable
  if (!values.empty()) {
    HeapProgress progress(dac, ctx.out, "matching stack values with heap objects");
    auto walked = dac::WalkHeap(
        dac,
        [&](const dac::HeapObject& o) {
          progress.Walked(o);
          if (o.address > values.back()) return false;
          if (std::binary_search(values.begin(), values.end(), o.address)) {
            found[o.address] = o.mt;
          }
          return true;
        },
        &ctx.cancel);
    if (!walked.ok()) return Failure(std::string(walked.status().message()));
  }
  auto globals = dac.GetUsefulGlobals();
  const uint64_t free_mt = globals.ok() ? globals->free_mt : 0;
  std::map<uint64_t, uint64_t> rows;  // where -> object; the first per slot, by address
  for (const auto& [where, value] : candidates) {
    auto it = found.find(value);
    if (it == found.end()) continue;
    if (verify && !dac.GetObjectDetails(value).ok()) continue;
    rows.emplace(where, value);
  }

  std::unordered_map<uint64_t, std::string> names;
  auto type_name = [&](uint64_t mt) -> const std::string& {
    auto it = names.find(mt);
    if (it != names.end()) return it->second;
    auto n = dac.GetMethodTableName(mt);
    return names[mt] = mt == free_mt ? "Free"
                       : n.ok()      ? dac::PrettyTypeName(*n)
                                     : absl::StrFormat("<unknown_type_%x>", mt);
  };
  std::string text =
      absl::StrFormat("OS Thread Id: 0x%x (%d)\n", thread.tid, ctx.state.current_thread);
  if (extra.start != 0 && extra.end != 0) {
    absl::StrAppendFormat(&text,
                          "Note: Thread appears to be on alternate signal stack. Also scanning "
                          "normal thread stack %x-%x.\n",
                          extra.start, extra.end);
  }
  absl::StrAppendFormat(&text, "%16s %16s %s\n", "SP/REG", "Object", "Name");
  Json list = Json::array();
  for (const auto& [where, object] : rows) {
    const std::string& name = type_name(found[object]);
    const bool reg = where < kRegisterCount;
    const std::string slot = reg ? kRegisters[where].name : absl::StrFormat("%x", where);
    absl::StrAppendFormat(&text, "%16s %16x %s\n", slot, object, name);
    Json row{{"object", JsonHex(object)}, {"type", name}};
    if (reg) {
      row["register"] = slot;
    } else {
      row["stack_address"] = JsonHex(where);
    }
    list.push_back(std::move(row));
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"os_thread_id", thread.tid},
                        {"thread_index", ctx.state.current_thread},
                        {"stack_start", JsonHex(range.start)},
                        {"stack_end", JsonHex(range.end)},
                        {"objects", list}});
  } else {
    ctx.out.Write(text);
  }
  return {};
}

void RegisterNearObjCommands(CommandRegistry& r) {
  r.Add({{"listnearobj", "lno", "ListNearObj"},
         "<address>",
         "Displays the object preceding and succeeding the specified address.",
         "listnearobj <address>\n"
         "  In the address's heap segment: the object before it, the object at it (if one\n"
         "  starts there) and the next object, with allocation-context gaps, and whether the\n"
         "  heap is locally consistent (each object ends where the next begins).",
         ListNearObj});
  r.Add({{"dumpstackobjects", "dso", "DumpStackObjects"},
         "[-verify] [<top> <bottom>]",
         "Displays all managed objects found within the bounds of the current stack.",
         "dumpstackobjects [-verify] [<stack top> <stack bottom>]\n"
         "  Every stack slot and register of the current thread (see setthread) that holds\n"
         "  the address of a heap object: where, the object, its type.\n"
         "  -verify  only objects the runtime accepts as objects (a valid MethodTable)\n"
         "  <top> <bottom>  scan this address range (hex) instead of the thread's stack",
         DumpStackObjects});
}

}  // namespace

void RegisterObjectsCommands(CommandRegistry& r) {
  r.Add({{"dumparray", "DumpArray"},
         "<arguments>",
         "Displays details about a managed array.",
         "dumparray [-start <index>] [-length <count>] [-details] [-nofields] <array address>\n"
         "  The array's type, MethodTable, size, rank, element count and element type, then\n"
         "  each element: its object address (reference types, \"null\" for none) or, for\n"
         "  value types, where it lies inside the array.\n"
         "  -start     first element shown (single-dimension arrays; decimal)\n"
         "  -length    number of elements shown\n"
         "  -details   each element as dumpobj (objects) or dumpvc (values) shows it\n"
         "  -nofields  with -details: leave out the elements' fields",
         DumpArray});
  r.Add({{"dumpvc", "DumpVC"},
         "<MethodTable address> <Address>",
         "Displays info about the fields of a value class.",
         "dumpvc <MethodTable address> <value address>\n"
         "  The value type's name, MethodTable, size and file, and its fields read from the\n"
         "  unboxed value at the address (e.g. an element of a struct array as dumparray\n"
         "  lists it, or a struct field's value as dumpobj shows it).",
         DumpVc});
  r.Add({{"dumpdelegate", "DumpDelegate"},
         "<delegate address>",
         "Displays information about a delegate.",
         "dumpdelegate <delegate address>\n"
         "  The target object, MethodDesc and method name each delegate calls; for a\n"
         "  multicast delegate one line per delegate of its invocation list.",
         DumpDelegate});
  r.Add({{"analyzeoom", "AnalyzeOOM"},
         "",
         "Displays the info of the last OOM that occurred on an allocation request to the GC "
         "heap.",
         "analyzeoom\n"
         "  The GC's record of its last out-of-memory failure on each heap: the reason and, if\n"
         "  getting memory failed, what the GC asked for and how much.",
         AnalyzeOom});
  r.Add({{"dumpruntimetypes", "DumpRuntimeTypes"},
         "",
         "Finds all System.RuntimeType objects in the GC heap and prints the type name and "
         "MethodTable they refer to.",
         "dumpruntimetypes\n"
         "  Walks the heap; for each System.RuntimeType object: its address, the type's\n"
         "  AppDomain, the MethodTable (m_handle) and the type's name.",
         DumpRuntimeTypes});
  RegisterNearObjCommands(r);
}

}  // namespace clrdiag::sos
