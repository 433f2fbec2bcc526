// dumpasync: async "stacks" synthesized from the heap, as the reference builds them: every Task
// (async state machine boxes included) not yet completed, chained by its continuation
// (m_continuationObject, resolved through delegates and continuation wrappers to the task or
// state machine that resumes), printed from each top-level task (one nothing continues) down
// the chain of what awaits it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/heap_walk.h"
#include "core/dac/metadata_import.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"
#include "core/sos/managed_reader.h"

namespace clrdiag::sos {
namespace {

struct AsyncObject {
  uint64_t object = 0;
  uint64_t mt = 0;
  bool is_state_machine = false;
  int32_t await_state = 0;
  int32_t flags = 0;
  bool include = true;
  bool top_level = true;
  uint64_t state_machine = 0;     // address of the state machine's data (0: none)
  uint64_t state_machine_mt = 0;  // its type
  bool state_machine_is_value = false;
  std::vector<uint64_t> continuations;
};

bool IsCompleted(int32_t flags) { return (flags & 0x1600000) != 0; }

std::string DescribeTaskFlags(int32_t f) {
  static const std::pair<int32_t, const char*> kNames[] = {{0x10000, "Started"},
                                                           {0x20000, "DelegateInvoked"},
                                                           {0x40000, "Disposed"},
                                                           {0x80000, "ExceptionObservedByParent"},
                                                           {0x100000, "CancellationAcknowledged"},
                                                           {0x200000, "Faulted"},
                                                           {0x400000, "Canceled"},
                                                           {0x800000, "WaitingOnChildren"},
                                                           {0x1000000, "RanToCompletion"},
                                                           {0x4000000, "CompletionReserved"}};
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if (f & bit) absl::StrAppend(&s, s.empty() ? "" : "|", name);
  }
  return s.empty() ? " " : s;
}

bool IsStateMachineBox(const std::string& name) {
  static const std::string kPrefix = "System.Runtime.CompilerServices.AsyncTaskMethodBuilder<";
  return name.rfind(kPrefix, 0) == 0 &&
         name.find("AsyncStateMachineBox", kPrefix.size()) != std::string::npos;
}

class DumpAsync {
 public:
  explicit DumpAsync(CommandContext& ctx) : ctx_(ctx), r_(ctx.dac) {}

  std::optional<uint64_t> address, mt;
  std::optional<std::string> type;
  bool tasks = false, completed = false, stats = false, coalesce = false, fields = false;

  CommandResult Run() {
    if (auto failure = Collect()) return *failure;
    std::string out;
    Json doc = Json::object();
    if (stats) {
      RenderStats(&out, &doc);
    } else if (coalesce) {
      Json stacks = Json::array();
      std::vector<uint64_t> start;
      for (uint64_t o : order_) {
        const AsyncObject& a = objects_.at(o);
        if (a.top_level && ShouldIncludeStack(a)) start.push_back(o);
      }
      if (!start.empty()) RenderLevel(start, 0, &out, &stacks);
      doc["stacks"] = stacks;
    } else {
      RenderStacks(&out, &doc);
    }
    if (ctx_.json) {
      WriteJson(ctx_, doc);
    } else {
      ctx_.out.Write(out);
    }
    return {};
  }

 private:
  bool IsTask(uint64_t type) {
    auto cached = is_task_.find(type);
    if (cached != is_task_.end()) return cached->second;
    bool yes = false;
    for (uint64_t m = type; m != 0 && !yes;) {
      auto n = ctx_.dac.GetMethodTableName(m);
      if (n.ok() && *n == "System.Threading.Tasks.Task") yes = true;
      auto d = ctx_.dac.GetMethodTableDetails(m);
      if (!d.ok()) break;
      m = d->parent;
    }
    is_task_[type] = yes;
    return yes;
  }

  bool IncludeInOutput(uint64_t obj, uint64_t type) {
    if (address && obj != *address) return false;
    if (type != 0) {
      if (mt && type != *mt) return false;
      if (this->type && r_.TypeName(type).find(*this->type) == std::string::npos) return false;
    }
    return true;
  }

  // A valid object in field `name` of `obj`, or 0.
  uint64_t ObjectField(uint64_t obj, const std::string& name) {
    uint64_t v = 0;
    if (!r_.ReadObjectField(obj, name, &v) || v == 0 || r_.TypeOf(v) == 0) return 0;
    return v;
  }

  uint64_t ResolveContinuation(uint64_t c) {
    const uint64_t type = r_.TypeOf(c);
    if (IsTask(type) && IsStateMachineBox(r_.TypeName(type))) return c;
    if (uint64_t t = ObjectField(c, "m_task")) return t;
    if (uint64_t a = ObjectField(c, "m_action")) c = a;
    if (uint64_t t = ObjectField(c, "_target")) {
      c = t;
      if (r_.ObjectTypeName(c) ==
          "System.Runtime.CompilerServices.AsyncMethodBuilderCore+ContinuationWrapper") {
        if (uint64_t inner = ObjectField(c, "_continuation")) {
          c = inner;
          if (uint64_t t2 = ObjectField(c, "_target")) c = t2;
        }
      }
    }
    return c;
  }

  void AddContinuation(uint64_t c, std::vector<uint64_t>* out) {
    const std::string name = r_.ObjectTypeName(c);
    if (name.rfind("System.Collections.Generic.List<", 0) == 0) {
      uint64_t items = 0;
      if (r_.ReadObjectField(c, "_items", &items) && items != 0) {
        if (auto a = r_.Array(items)) {
          for (uint64_t i = 0; i < a->length; ++i) {
            uint64_t e = 0;
            if (!r_.ReadPointer(a->data + i * 8, &e)) break;
            if (e != 0 && r_.TypeOf(e) != 0) out->push_back(ResolveContinuation(e));
          }
        }
      }
    } else {
      out->push_back(c);
    }
  }

  std::optional<CommandResult> Collect() {
    auto walk = dac::WalkHeap(
        ctx_.dac,
        [&](const dac::HeapObject& o) {
          if (o.size <= 24 || !IsTask(o.mt) || objects_.count(o.address)) return true;
          const std::string name = r_.TypeName(o.mt);
          const bool box = IsStateMachineBox(name);
          if (stats && (!IncludeInOutput(o.address, o.mt) || (!tasks && !box))) return true;
          int32_t flags = 0;
          if (!r_.FindField(o.mt, "m_stateFlags") ||
              !r_.ReadField(o.address, "m_stateFlags", &flags)) {
            return true;
          }
          if (!completed && IsCompleted(flags)) return true;
          AsyncObject a;
          a.object = o.address;
          a.mt = o.mt;
          a.is_state_machine = box;
          a.include = IncludeInOutput(o.address, o.mt);
          a.flags = flags;
          if (box) {
            uint64_t sm_mt = 0;
            auto f = r_.FindField(o.mt, "StateMachine");
            if (f) {
              const uint64_t at = o.address + 8 + f->offset;
              if (f->fd.type == 0x11 /* VALUETYPE */) {
                a.state_machine = at;
                a.state_machine_mt = f->fd.mt_of_type;
                a.state_machine_is_value = true;
              } else {
                uint64_t sm = 0;
                if (r_.ReadPointer(at, &sm) && sm != 0 && (sm_mt = r_.TypeOf(sm)) != 0) {
                  a.state_machine = sm;
                  a.state_machine_mt = sm_mt;
                }
              }
            }
            if (a.state_machine != 0 && a.state_machine_mt != 0) {
              auto state = r_.FindField(a.state_machine_mt, "<>1__state");
              if (state) {
                const uint64_t base = a.state_machine + (a.state_machine_is_value ? 0 : 8);
                ctx_.dac.ReadTargetMemory(base + state->offset, &a.await_state, 4);
              }
            }
          }
          if (r_.FindField(o.mt, "m_continuationObject")) {
            if (uint64_t c = ObjectField(o.address, "m_continuationObject")) {
              AddContinuation(ResolveContinuation(c), &a.continuations);
            }
          }
          order_.push_back(o.address);
          objects_.emplace(o.address, std::move(a));
          return true;
        },
        &ctx_.cancel);
    if (!walk.ok()) return Failure(std::string(walk.status().message()));
    if (ctx_.cancel.cancelled()) return Failure("cancelled");
    for (uint64_t o : order_) {
      for (uint64_t c : objects_.at(o).continuations) {
        auto it = objects_.find(c);
        if (it != objects_.end()) it->second.top_level = false;
      }
    }
    return std::nullopt;
  }

  std::string Describe(uint64_t obj) {
    const uint64_t type = r_.TypeOf(obj);
    std::string d = r_.TypeName(type);
    if (d.empty()) return d;
    if (IsStateMachineBox(d)) {
      const size_t pos = d.find("StateMachineBox<");
      if (pos != std::string::npos) {
        d = d.substr(pos + 16);
        if (!d.empty()) d.pop_back();
      }
    } else if (uint64_t action = ObjectField(obj, "m_action")) {
      uint64_t ptr = 0, aux = 0;
      if (r_.ReadField(action, "_methodPtr", &ptr) && ptr != 0) {
        uint64_t md = r_.MethodAt(ptr);
        if (md == 0 && r_.ReadField(action, "_methodPtrAux", &aux) && aux != 0) {
          md = r_.MethodAt(aux);
        }
        if (md != 0) d = absl::StrCat(d, " {", r_.MethodSignature(md), "}");
      }
    }
    return d;
  }

  bool ShouldIncludeStack(const AsyncObject& top) {
    bool saw_include = false, saw_sm = tasks;
    std::vector<const AsyncObject*> stack = {&top};
    for (size_t guard = 0; !stack.empty() && guard < 1000000; ++guard) {
      const AsyncObject* a = stack.back();
      stack.pop_back();
      saw_include |= a->include;
      saw_sm |= a->is_state_machine;
      if (saw_include && saw_sm) return true;
      for (uint64_t c : a->continuations) {
        auto it = objects_.find(c);
        if (it != objects_.end()) stack.push_back(&it->second);
      }
    }
    return false;
  }

  static std::string Tabs(int depth) { return std::string(depth * 2, ' '); }

  // The synthesized "<< Awaiting: ... >>" frame of a top-level state machine paused at an await.
  bool AwaiterFrame(const AsyncObject& top, std::string* out, Json* j) {
    if (!top.is_state_machine || top.await_state < 0 || IsCompleted(top.flags) ||
        top.state_machine == 0 || top.state_machine_mt == 0) {
      return false;
    }
    const uint64_t base = top.state_machine + (top.state_machine_is_value ? 0 : 8);
    // The awaiter fields (<>u__N) of the state machine, in field order.
    std::vector<std::pair<std::string, ManagedReader::Field>> awaiters;
    auto fields = ctx_.dac.GetMethodTableFields(top.state_machine_mt);
    auto details = ctx_.dac.GetMethodTableDetails(top.state_machine_mt);
    if (!fields.ok() || !details.ok()) return false;
    uint64_t addr = fields->first_field;
    for (uint32_t i = 0; i < fields->num_instance + fields->num_static && addr != 0; ++i) {
      auto fd = ctx_.dac.GetFieldDesc(addr);
      if (!fd.ok()) break;
      addr = fd->next;
      if (fd->is_static) continue;
      auto n = ctx_.dac.GetMetadataName(details->module, fd->token | 0x04000000);
      if (!n.ok()) continue;
      if (n->rfind("<>u__", 0) == 0)
        awaiters.emplace_back(*n, ManagedReader::Field{fd->offset, *fd});
    }
    auto emit = [&](const ManagedReader::Field& f) {
      const uint64_t at = base + f.offset;
      if (f.fd.type == 0x11) {
        if (f.fd.mt_of_type == 0) return false;
        const std::string name = r_.TypeName(f.fd.mt_of_type);
        absl::StrAppendFormat(out, "<< Awaiting: %016x %016x %s >>\n", at, f.fd.mt_of_type, name);
        (*j)["awaiting"] = Json{{"address", JsonHex(at)}, {"type", name}};
        return true;
      }
      uint64_t obj = 0;
      if (!r_.ReadPointer(at, &obj)) return false;
      const uint64_t type = r_.TypeOf(obj);
      if (type == 0) return false;
      absl::StrAppendFormat(out, "<< Awaiting: %016x %016x%s >>\n", obj, type, r_.TypeName(type));
      (*j)["awaiting"] = Json{{"address", JsonHex(obj)}, {"type", r_.TypeName(type)}};
      return true;
    };
    if (top.await_state == 0 || awaiters.size() == 1) {
      for (const auto& [name, f] : awaiters) {
        if (name == "<>u__1") return emit(f);
      }
      return false;
    }
    for (const auto& [name, f] : awaiters) {
      const uint64_t at = base + f.offset;
      if (f.fd.type == 0x11) {
        auto m = ctx_.dac.GetMethodTable(f.fd.mt_of_type);
        if (!m.ok() || m->base_size < 16) continue;
        std::vector<uint8_t> bytes(m->base_size - 16);
        if (ctx_.dac.ReadTargetMemory(at, bytes.data(), bytes.size()) != bytes.size()) continue;
        if (std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; })) continue;
        return emit(f);
      }
      uint64_t obj = 0;
      if (r_.ReadPointer(at, &obj) && obj != 0) return emit(f);
    }
    return false;
  }

  // One instance field of a type, parents' first (ClrMD's ClrType.Fields order).
  struct InstanceField {
    std::string name;
    dac::FieldDescInfo fd;
  };
  std::vector<InstanceField> InstanceFields(uint64_t mt) {
    std::vector<uint64_t> chain;
    for (uint64_t m = mt; m != 0 && chain.size() < 64;) {
      chain.push_back(m);
      auto d = ctx_.dac.GetMethodTableDetails(m);
      if (!d.ok()) break;
      m = d->parent;
    }
    std::vector<InstanceField> result;
    uint32_t parent_instance = 0;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      auto d = ctx_.dac.GetMethodTableDetails(*it);
      auto f = ctx_.dac.GetMethodTableFields(*it);
      if (!d.ok() || !f.ok()) break;
      // The instance FieldDescs come first in the list; the statics after them are not walked
      // (on .NET 8 the DAC faults on some static FieldDescs' successors).
      const uint32_t own =
          f->num_instance >= parent_instance ? f->num_instance - parent_instance : 0;
      uint64_t addr = f->first_field;
      for (uint32_t i = 0; i < own && addr != 0; ++i) {
        auto fd = ctx_.dac.GetFieldDesc(addr);
        if (!fd.ok()) break;
        addr = fd->next;
        if (fd->is_static || fd->is_thread_local) continue;
        auto n = ctx_.dac.GetMetadataName(d->module, fd->token | dac::kMdtFieldDef);
        result.push_back({n.ok() ? *n : "", *fd});
      }
      parent_instance = f->num_instance;
    }
    return result;
  }

  static bool IsReference(int32_t et) {
    return et == 0x0e || et == 0x12 || et == 0x14 || et == 0x1c || et == 0x1d;
  }

  // The reference's (ClrMD's) "..." + the last max-3 characters of a long value.
  static std::string Truncate(const std::string& v, size_t max) {
    return v.size() > max ? absl::StrCat("...", v.substr(v.size() - max + 3)) : v;
  }

  // .NET's shortest round-trip form of a double ("R"): 1.5, 1E+20, 1E-05, NaN, Infinity.
  static std::string DotnetDouble(double v, int max_digits) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "\u221e" : "-\u221e";
    if (v == 0) return std::signbit(v) ? "-0" : "0";
    std::string e;
    for (int p = 1; p <= max_digits; ++p) {
      e = absl::StrFormat("%.*e", p - 1, v);
      if ((max_digits > 9 ? std::stod(e) == v : std::stof(e) == static_cast<float>(v))) break;
    }
    // e = [-]d[.ddd]e[+-]XX
    const size_t epos = e.find('e');
    std::string mant = e.substr(0, epos);
    const int exp = std::stoi(e.substr(epos + 1));
    const bool neg = mant[0] == '-';
    if (neg) mant.erase(0, 1);
    std::string digits;
    for (char c : mant) {
      if (c != '.') digits += c;
    }
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    std::string out;
    if (exp >= 15 || exp < -5) {
      out = digits.substr(0, 1);
      if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
      absl::StrAppendFormat(&out, "E%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    } else if (exp < 0) {
      out = absl::StrCat("0.", std::string(-exp - 1, '0'), digits);
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(exp + 1 - digits.size(), '0');
    } else {
      out = absl::StrCat(digits.substr(0, exp + 1), ".", digits.substr(exp + 1));
    }
    return neg ? "-" + out : out;
  }

  std::string ReadString(uint64_t obj) {
    int32_t len = 0;
    if (ctx_.dac.ReadTargetMemory(obj + 8, &len, 4) != 4 || len < 0 || len > (1 << 20)) return "";
    std::u16string s(static_cast<size_t>(len), u'\0');
    if (len > 0 &&
        ctx_.dac.ReadTargetMemory(obj + 12, s.data(), len * 2) != static_cast<size_t>(len) * 2) {
      return "";
    }
    return Utf8Value(s);
  }

  // What the reference shows in the Value column for a field whose data is at `at`.
  std::string FieldValue(const dac::FieldDescInfo& fd, uint64_t at) {
    uint64_t raw = 0;
    auto read = [&](size_t n) { return ctx_.dac.ReadTargetMemory(at, &raw, n) == n; };
    switch (fd.type) {
      case 0x02:  // BOOLEAN
        return read(1) && (raw & 0xff) ? "true" : "false";
      case 0x03: {  // CHAR
        read(2);
        const auto c = static_cast<uint16_t>(raw);
        return c >= 32 && c < 127 ? absl::StrFormat("'%c'", static_cast<char>(c))
                                  : absl::StrFormat("'\\u%04X'", c);
      }
      case 0x04:
        read(1);
        return absl::StrCat(static_cast<int8_t>(raw));
      case 0x05:
        read(1);
        return absl::StrCat(static_cast<uint8_t>(raw));
      case 0x06:
        read(2);
        return absl::StrCat(static_cast<int16_t>(raw));
      case 0x07:
        read(2);
        return absl::StrCat(static_cast<uint16_t>(raw));
      case 0x08:
        read(4);
        return absl::StrCat(static_cast<int32_t>(raw));
      case 0x09:
        read(4);
        return absl::StrCat(static_cast<uint32_t>(raw));
      case 0x0a:
        read(8);
        return absl::StrCat(static_cast<int64_t>(raw));
      case 0x0b:
        read(8);
        return absl::StrCat(raw);
      case 0x0c: {
        read(4);
        float f = 0;
        const auto bits = static_cast<uint32_t>(raw);
        std::memcpy(&f, &bits, 4);
        return DotnetDouble(f, 9);
      }
      case 0x0d: {
        read(8);
        double d = 0;
        std::memcpy(&d, &raw, 8);
        return DotnetDouble(d, 17);
      }
      case 0x0f:
      case 0x18:
      case 0x19:
      case 0x1b:
        read(8);
        return absl::StrFormat("%016x", raw);
      case 0x11:  // VALUETYPE: shown by its address
        return absl::StrFormat("%016x", at);
      default:
        break;
    }
    if (IsReference(fd.type)) {
      if (!read(8) || raw == 0) return "null";
      const uint64_t type = r_.TypeOf(raw);
      const std::string name = r_.TypeName(type);
      if (name == "System.String") return absl::StrCat("\"", ReadString(raw), "\"");
      if (fd.type == 0x1d ||
          (fd.type == 0x12 && name.size() > 2 && name.compare(name.size() - 2, 2, "[]") == 0)) {
        if (auto a = r_.Array(raw)) {
          return absl::StrCat(
              r_.TypeName(a->element_mt).empty() ? "unknown" : r_.TypeName(a->element_mt), "[",
              a->length, "]");
        }
      }
      return absl::StrFormat("%016x", raw);
    }
    return "(unknown)";
  }

  // The instance fields of a frame's state machine (or of the task when it has none), under
  // its line. Fields of a value-type state machine are at its data address plus their offset;
  // the Value column of a value-type field is, as the reference computes it, the address as if
  // its container were an object (plus the method-table word).
  Json RenderFields(const AsyncObject& frame, int depth, std::string* out) {
    Json j = Json::array();
    uint64_t obj = frame.object, mt = frame.mt;
    bool value = false;
    if (frame.is_state_machine && frame.state_machine != 0 && frame.state_machine_mt != 0) {
      obj = frame.state_machine;
      mt = frame.state_machine_mt;
      value = frame.state_machine_is_value;
    }
    const std::string tab(depth * 2, ' ');
    absl::StrAppendFormat(out, "%s%16s %16s %-32s %16s Name\n", tab, "Address", "MT", "Type",
                          "Value");
    for (const InstanceField& f : InstanceFields(mt)) {
      std::string type_name = r_.TypeName(f.fd.mt_of_type);
      if (type_name.empty()) {
        if (!IsReference(f.fd.type)) continue;  // a value type the runtime has not loaded
        type_name = "Object";
      }
      const uint64_t at = obj + (value ? 0 : 8) + f.fd.offset;
      uint64_t shown = at;
      if (IsReference(f.fd.type) && !r_.ReadPointer(at, &shown)) shown = 0;
      std::string v = FieldValue(f.fd, at);
      if (f.fd.type == 0x11) v = absl::StrFormat("%016x", obj + 8 + f.fd.offset);
      absl::StrAppendFormat(out, "%s%016x %016x %-32s %16s %s\n", tab, shown, f.fd.mt_of_type,
                            Truncate(type_name, 32), Truncate(v, 16), f.name);
      j.push_back(Json{{"address", JsonHex(shown)},
                       {"mt", JsonHex(f.fd.mt_of_type)},
                       {"type", type_name},
                       {"value", v},
                       {"name", f.name}});
    }
    return j;
  }

  Json Frame(uint64_t obj, const std::string& state, const std::string& description) {
    return Json{{"address", JsonHex(obj)},
                {"mt", JsonHex(r_.TypeOf(obj))},
                {"state", state},
                {"description", description}};
  }

  void RenderStacks(std::string* out, Json* doc) {
    Json stacks = Json::array();
    int id = 1;
    for (uint64_t o : order_) {
      const AsyncObject& top = objects_.at(o);
      if (!top.top_level || !ShouldIncludeStack(top)) continue;
      absl::StrAppendFormat(out, "STACK %d\n", id++);
      Json js = Json::object();
      int depth = AwaiterFrame(top, out, &js) ? 1 : 0;
      Json frames = Json::array();
      std::vector<std::pair<const AsyncObject*, int>> stack = {{&top, depth}};
      for (size_t guard = 0; !stack.empty() && guard < 1000000; ++guard) {
        auto [frame, d] = stack.back();
        stack.pop_back();
        const std::string state = frame->is_state_machine ? absl::StrCat(frame->await_state)
                                                          : DescribeTaskFlags(frame->flags);
        const std::string desc = Describe(frame->object);
        absl::StrAppendFormat(out, "%s%016x %016x (%s) %s\n", Tabs(d), frame->object, frame->mt,
                              state, desc);
        Json jf = Frame(frame->object, state, desc);
        jf["depth"] = d;
        if (fields) jf["fields"] = RenderFields(*frame, d + 4, out);
        frames.push_back(std::move(jf));
        for (uint64_t c : frame->continuations) {
          auto it = objects_.find(c);
          if (it != objects_.end()) {
            stack.emplace_back(&it->second, d + 1);
          } else {
            int32_t flags = 0;
            const uint64_t type = r_.TypeOf(c);
            const std::string s = type != 0 && r_.FindField(type, "m_stateFlags") &&
                                          r_.ReadField(c, "m_stateFlags", &flags)
                                      ? DescribeTaskFlags(flags)
                                      : "";
            const std::string cd = Describe(c);
            absl::StrAppendFormat(out, "%s%016x %016x (%s) %s\n", Tabs(d + 1), c, type, s, cd);
            Json jc = Frame(c, s, cd);
            jc["depth"] = d + 1;
            frames.push_back(std::move(jc));
          }
        }
      }
      *out += "\n";
      js["frames"] = frames;
      stacks.push_back(std::move(js));
    }
    (*doc)["stacks"] = stacks;
  }

  void RenderStats(std::string* out, Json* doc) {
    std::vector<std::pair<std::string, std::pair<uint64_t, int>>> counts;  // first-seen order
    for (uint64_t o : order_) {
      const std::string d = Describe(o);
      auto it =
          std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == d; });
      if (it == counts.end()) {
        counts.push_back({d, {objects_.at(o).mt, 1}});
      } else {
        ++it->second.second;
      }
    }
    std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
      return a.second.second > b.second.second;
    });
    absl::StrAppendFormat(out, "%-16s %-8s Type\n", "MT", "Count");
    Json j = Json::array();
    for (const auto& [d, v] : counts) {
      absl::StrAppendFormat(out, "%016x %-8s %s\n", v.first, N0(v.second), d);
      j.push_back(Json{{"mt", JsonHex(v.first)}, {"count", v.second}, {"type", d}});
    }
    (*doc)["statistics"] = j;
  }

  static std::string N0(int v) {
    std::string s = absl::StrCat(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
    return s;
  }

  void RenderLevel(const std::vector<uint64_t>& frames, int depth, std::string* out, Json* j) {
    // Group by description (with the await state for state machines), largest groups first.
    std::vector<std::pair<std::string, std::vector<uint64_t>>> groups;
    for (uint64_t o : frames) {
      std::string key = Describe(o);
      auto it = objects_.find(o);
      if (it != objects_.end() && it->second.is_state_machine) {
        key = absl::StrCat("(", it->second.await_state, ") ", key);
      }
      auto g =
          std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == key; });
      if (g == groups.end()) {
        groups.push_back({key, {o}});
      } else {
        g->second.push_back(o);
      }
    }
    std::stable_sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
      return a.second.size() > b.second.size();
    });
    int id = 1;
    for (const auto& [key, members] : groups) {
      if (depth == 0) absl::StrAppendFormat(out, "STACKS %d\n", id++);
      absl::StrAppendFormat(out, "%s[%d] %016x %s\n", Tabs(depth), members.size(),
                            r_.TypeOf(members.front()), key);
      std::vector<uint64_t> next;
      for (uint64_t m : members) {
        auto it = objects_.find(m);
        if (it != objects_.end()) {
          next.insert(next.end(), it->second.continuations.begin(), it->second.continuations.end());
        }
      }
      Json children = Json::array();
      if (!next.empty() && depth < 1000) RenderLevel(next, depth + 1, out, &children);
      if (depth == 0) *out += "\n";
      j->push_back(Json{{"count", members.size()},
                        {"mt", JsonHex(r_.TypeOf(members.front()))},
                        {"description", key},
                        {"continuations", children}});
    }
  }

  CommandContext& ctx_;
  ManagedReader r_;
  std::unordered_map<uint64_t, bool> is_task_;
  std::vector<uint64_t> order_;  // heap order
  std::unordered_map<uint64_t, AsyncObject> objects_;
};

CommandResult DumpAsyncCommand(CommandContext& ctx, const CommandSpec& spec,
                               const std::vector<std::string>& args) {
  DumpAsync d(ctx);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string l = absl::AsciiStrToLower(args[i]);
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    if (l == "--address" || l == "-addr" || l == "--methodtable" || l == "-mt") {
      auto v = value();
      uint64_t x = 0;
      if (!v || !ParseHexAddress(*v, &x)) {
        return UsageError(spec,
                          absl::StrCat(args[i - (v ? 1 : 0)], " needs a hexadecimal address"));
      }
      (l == "--address" || l == "-addr" ? d.address : d.mt) = x;
    } else if (l == "--type") {
      auto v = value();
      if (!v) return UsageError(spec, "--type needs a type name substring");
      d.type = *v;
    } else if (l == "--tasks" || l == "-t") {
      d.tasks = true;
    } else if (l == "--completed" || l == "-c") {
      d.completed = true;
    } else if (l == "--stats") {
      d.stats = true;
    } else if (l == "--coalesce") {
      d.coalesce = true;
    } else if (l == "--fields" || l == "-f") {
      d.fields = true;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", args[i], "'"));
    }
  }
  return d.Run();
}

}  // namespace

void RegisterDumpAsyncCommands(CommandRegistry& r) {
  r.Add(
      {{"dumpasync", "DumpAsync"},
       "[options]",
       "Displays information about async \"stacks\" on the garbage-collected heap.",
       "dumpasync [--address ADDR] [--methodtable MT] [--type NAME] [--tasks] [--completed]\n"
       "          [--stats] [--coalesce] [--fields]\n"
       "  Async stacks synthesized from the heap: every task and async state machine not yet\n"
       "  completed, chained by continuations, from each top-level task down to what awaits\n"
       "  it. -addr/-mt/--type keep the stacks that include such an object; -t also stacks\n"
       "  of plain tasks; -c also completed tasks; --stats counts the frames by type;\n"
       "  --coalesce merges identical stacks and stack prefixes with their counts; -f (--fields)\n"
       "  lists each frame's state machine (or task) fields: address, type, value and name.",
       DumpAsyncCommand});
}

}  // namespace clrdiag::sos
