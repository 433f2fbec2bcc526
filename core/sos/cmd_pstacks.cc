// parallelstacks (pstacks): the managed stacks of all threads merged into trees, like Visual
// Studio's Parallel Stacks window, in the reference's layout: one tree per distinct outermost
// frame; each node a frame with the number of threads whose stacks pass through it; where
// stacks part, the branches (fewest threads first) are indented; each leaf lists its threads'
// OS ids (at most 4 unless -a).
#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/dac/stack_walk.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"
#include "core/sos/managed_reader.h"

namespace clrdiag::sos {
namespace {

// ---- The reference's short parameter names (ParallelStacks' StackFrame helpers) ----------
// Indices follow .NET's IndexOf(c, start, count) / LastIndexOf(c, start, count) semantics.

int IndexOf(const std::string& s, char c, int start, int count) {
  if (start < 0 || count <= 0) return -1;
  const int end = std::min<int>(static_cast<int>(s.size()), start + count);
  for (int i = start; i < end; ++i) {
    if (s[i] == c) return i;
  }
  return -1;
}

int LastIndexOf(const std::string& s, char c, int start, int count) {
  if (start >= static_cast<int>(s.size())) start = static_cast<int>(s.size()) - 1;
  for (int i = start; i >= 0 && i > start - count; --i) {
    if (s[i] == c) return i;
  }
  return -1;
}

void AppendWithoutNamespace(std::string* sb, const std::string& t, int start, int end) {
  if (end < start || start < 0) return;
  const int pos = LastIndexOf(t, '.', end, end - start);
  if (pos == -1) {
    sb->append(t, start, end - start + 1);
  } else {
    sb->append(t, pos + 1, end - pos);
  }
}

std::string NextTypeName(const std::string& t, int* start, int* end, int depth);

std::string GenericTypeName(const std::string& t, int* start, int* end, int depth) {
  std::string sb;
  const int pos = IndexOf(t, '`', *start, *end - *start);
  AppendWithoutNamespace(&sb, t, *start, pos - 1);
  sb += '<';
  const int lt = IndexOf(t, '<', pos, *end - pos);
  if (lt < 0 || depth > 32) {
    *start = *end;
    return sb;
  }
  *start = lt + 1;
  for (int guard = 0; *start < *end && guard < 1000; ++guard) {
    sb += NextTypeName(t, start, end, depth + 1);
    if (*start < *end) sb += ',';
  }
  return sb;
}

std::string NextTypeName(const std::string& t, int* start, int* end, int depth) {
  if (t.empty()) return "";
  std::string sb;
  const int pos = IndexOf(t, '`', *start, *end - *start);
  const int next = IndexOf(t, ',', *start, *end - *start);
  if (pos == -1 && next == -1) {
    AppendWithoutNamespace(&sb, t, *start, *end);
    *start = *end;
    return sb;
  }
  if (next == -1) return GenericTypeName(t, start, end, depth);
  if (pos == -1 || pos > next) {
    AppendWithoutNamespace(&sb, t, *start, next - 1);
    *start = next + 1;
    return sb;
  }
  return GenericTypeName(t, start, end, depth);
}

std::vector<std::string> ShortParameters(const std::string& sig) {
  std::vector<std::string> params;
  const size_t open = sig.rfind('(');
  if (open == std::string::npos || sig.empty() || sig.back() != ')') return params;
  int pos = static_cast<int>(open);
  int next = pos;
  const int last = static_cast<int>(sig.size()) - 1;
  for (int guard = 0; next != last && guard < 1000; ++guard) {
    size_t comma = sig.find(", ", pos);
    next = comma == std::string::npos ? static_cast<int>(sig.find(')')) : static_cast<int>(comma);
    if (next < 0) break;
    int start = pos + 1, end = next - 1;
    if (start < end) params.push_back(NextTypeName(sig, &start, &end, 0));
    pos = next + 1;
  }
  return params;
}

// ---- The merged tree --------------------------------------------------------------------

struct Frame {
  std::string text;  // the DAC's signature: what stacks are merged on
  std::string display;
};

struct Node {
  Frame frame;
  std::vector<uint32_t> threads;
  std::vector<std::unique_ptr<Node>> children;
};

void AddStack(Node* node, uint32_t tid, const std::vector<Frame>& frames, size_t index) {
  node->threads.push_back(tid);
  Node* child = nullptr;
  for (auto& c : node->children) {
    if (c->frame.text == frames[index].text) child = c.get();
  }
  if (!child) {
    node->children.push_back(std::make_unique<Node>());
    child = node->children.back().get();
    child->frame = frames[index];
  }
  if (index + 1 == frames.size()) {
    child->threads.push_back(tid);
    return;
  }
  AddStack(child, tid, frames, index + 1);
}

std::string ThreadList(const std::vector<uint32_t>& ids, bool all) {
  const size_t n = all ? ids.size() : std::min<size_t>(ids.size(), 4);
  std::vector<std::string> hex;
  for (size_t i = 0; i < n; ++i) hex.push_back(absl::StrFormat("%x", ids[i]));
  std::string s = absl::StrJoin(hex, ",");
  if (n < ids.size()) s += "...";
  return s;
}

std::vector<const Node*> ByCount(const Node& n) {
  std::vector<const Node*> v;
  for (const auto& c : n.children) v.push_back(c.get());
  std::stable_sort(v.begin(), v.end(), [](const Node* a, const Node* b) {
    return a->threads.size() < b->threads.size();
  });
  return v;
}

void Render(const Node& n, int increment, bool all, std::string* out) {
  const std::string align(5 * increment, ' ');
  if (n.children.empty()) {
    absl::StrAppend(out, "\n", align, " ~~~~ ", ThreadList(n.threads, all));
    absl::StrAppendFormat(out, "\n%s%5d %s", align, n.threads.size(), n.frame.display);
    return;
  }
  if (n.children.size() == 1 && n.children[0]->threads.size() != n.threads.size()) {
    std::vector<uint32_t> unique;
    for (uint32_t t : n.threads) {
      const auto& ct = n.children[0]->threads;
      if (std::find(ct.begin(), ct.end(), t) == ct.end() &&
          std::find(unique.begin(), unique.end(), t) == unique.end()) {
        unique.push_back(t);
      }
    }
    absl::StrAppend(out, "\n", align, " ~~~~ ", ThreadList(unique, all));
  }
  for (const Node* c : ByCount(n)) {
    Render(*c, c->threads.size() == n.threads.size() ? increment : increment + 1, all, out);
  }
  absl::StrAppendFormat(out, "\n%s%5d %s", align, n.threads.size(), n.frame.display);
}

Json NodeJson(const Node& n) {
  Json ids = Json::array();
  for (uint32_t t : n.threads) ids.push_back(t);
  Json children = Json::array();
  for (const Node* c : ByCount(n)) children.push_back(NodeJson(*c));
  return Json{{"frame", n.frame.display},
              {"signature", n.frame.text},
              {"thread_count", n.threads.size()},
              {"os_thread_ids", ids},
              {"children", children}};
}

CommandResult ParallelStacks(CommandContext& ctx, const CommandSpec& spec,
                             const std::vector<std::string>& args) {
  bool all = false, runtime = false;
  for (const std::string& a : args) {
    const std::string l = absl::AsciiStrToLower(a);
    if (l == "-a" || l == "--allthreads") {
      all = true;
    } else if (l == "-r" || l == "--runtime") {
      runtime = true;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  auto ts = ctx.dac.GetThreadStore();
  if (!ts.ok()) return Failure(std::string(ts.status().message()));
  ManagedReader r(ctx.dac);
  std::unordered_map<uint64_t, Frame> frame_cache;
  Node root;
  for (const dac::ManagedThread& t : ts->threads) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    if (t.os_id == 0) continue;
    auto stack = ctx.dac.WalkStack(t.os_id, dac::StackWalkOptions{}, ctx.cancel);
    if (!stack.ok() || stack->not_managed) continue;
    std::vector<Frame> frames;
    for (auto it = stack->frames.rbegin(); it != stack->frames.rend(); ++it) {
      const dac::StackFrame& f = *it;
      if (f.method_desc == 0) continue;
      if (f.is_runtime_frame() && !runtime) continue;
      auto cached = frame_cache.find(f.method_desc);
      if (cached == frame_cache.end()) {
        Frame fr;
        const std::string sig = r.MethodSignature(f.method_desc);
        fr.text = sig.empty() ? "?" : sig;
        const std::string type = r.MethodTypeName(f.method_desc);
        std::string method = MethodNameFromSignature(sig, type);
        if (method.size() >= 2 && method.compare(method.size() - 2, 2, "]]") == 0) {
          const size_t b = sig.find("[[");
          if (b != std::string::npos) {
            const size_t dot = sig.rfind('.', b);
            const size_t s = dot == std::string::npos ? 0 : dot + 1;
            method = sig.substr(s, b - s);
          }
        }
        if (sig.empty()) method = "";
        fr.display = absl::StrCat(type.empty() ? "" : type + ".", method, "(",
                                  absl::StrJoin(ShortParameters(sig), ", "), ")");
        cached = frame_cache.emplace(f.method_desc, fr).first;
      }
      frames.push_back(cached->second);
    }
    if (frames.empty()) continue;
    AddStack(&root, t.os_id, frames, 0);
  }
  if (ctx.json) {
    Json roots = Json::array();
    for (const auto& c : root.children) roots.push_back(NodeJson(*c));
    WriteJson(ctx, Json{{"thread_count", root.threads.size()},
                        {"root_count", root.children.size()},
                        {"roots", roots}});
    return {};
  }
  std::string out = "\n";
  for (const auto& c : root.children) {
    out += "________________________________________________";
    Render(*c, 0, all, &out);
    out += "\n\n\n";
  }
  absl::StrAppendFormat(&out, "==> %d threads with %d roots\n\n", root.threads.size(),
                        root.children.size());
  ctx.out.Write(out);
  return {};
}

// ----------------------------------------------------------------------------------------
// eestack: SOS's DumpStack on every thread the runtime knows. DumpStack scrapes the stack: from
// the stack pointer up (0xFFFF bytes, as SOS assumes without TEB information), every word that
// is a return address (a call instruction precedes it) is printed with the code it returns to.

class StackScraper {
 public:
  StackScraper(CommandContext& ctx, bool ee_only) : ctx_(ctx), ee_only_(ee_only) {}

  // SOS's IsReturnAddress (AMD64): the call instruction before `ret`; *where is its target when
  // known, 0xFFFFFFFF for an indirect call through a register, 0 when `ret` is not a return
  // address.
  uint64_t WhereCalled(uint64_t ret) {
    uint8_t b[8] = {};
    if (ret < 8 || ctx_.dac.ReadTargetMemory(ret - 8, b, 8) != 8) return 0;
    auto at = [&](int k) { return b[8 + k]; };  // at(-1) is the byte before ret
    int32_t rel = 0;
    std::memcpy(&rel, b + 4, 4);
    if (at(-5) == 0xE8) {  // call rel32
      const uint64_t target = ret + static_cast<int64_t>(rel);
      uint64_t probe = 0;
      if (ctx_.dac.ReadTargetMemory(target, &probe, 8) == 8) return target;
      return 0;
    }
    if (at(-6) == 0xFF && at(-5) == 025) {  // call [rip+disp32]
      uint64_t target = 0, probe = 0;
      if (ctx_.dac.ReadTargetMemory(ret + static_cast<int64_t>(rel), &target, 8) == 8 &&
          ctx_.dac.ReadTargetMemory(target, &probe, 8) == 8) {
        return target;
      }
      return 0;
    }
    constexpr uint64_t kIndirect = 0xFFFFFFFF;
    if (at(-3) == 0xFF && (at(-2) & ~7) == 0120 && (at(-2) & 7) != 4) return kIndirect;
    if (at(-4) == 0xFF && at(-3) == 0124) return kIndirect;
    if (at(-6) == 0xFF && (at(-5) & ~7) == 0220 && (at(-5) & 7) != 4) return kIndirect;
    if (at(-7) == 0xFF && at(-6) == 0224) return kIndirect;
    if (at(-2) == 0xFF && (at(-1) & ~7) == 0020 && (at(-1) & 7) != 4 && (at(-1) & 7) != 5) {
      return kIndirect;
    }
    if (at(-2) == 0xFF && (at(-1) & ~7) == 0320 && (at(-1) & 7) != 4) return kIndirect;
    return 0;
  }

  // SOS's PrintCallInfo: managed code as "(MethodDesc MD + 0xOFF Name)"; other code (unless
  // -EE) as module+offset, clrdiag having no native symbols. False if nothing was printed.
  bool CallInfo(uint64_t sp, uint64_t ip, bool symbol_only, std::string* out, Json* j) {
    auto ch = ctx_.dac.GetCodeHeader(ip);
    if (ch.ok() && ch->method_desc != 0) {
      if (!symbol_only) absl::StrAppendFormat(out, "%016x %016x ", sp, ip);
      absl::StrAppendFormat(out, "(MethodDesc %016x ", ch->method_desc);
      if (ip >= ch->method_start) absl::StrAppendFormat(out, "+ %#x ", ip - ch->method_start);
      auto name = ctx_.dac.GetMethodDescName(ch->method_desc);
      absl::StrAppend(out, name.ok() ? *name : absl::StrFormat("%016x", ip), ")");
      (*j)["method_desc"] = JsonHex(ch->method_desc);
      (*j)["offset"] = ip >= ch->method_start ? ip - ch->method_start : 0;
      (*j)["method"] = name.ok() ? *name : "";
      return true;
    }
    if (ee_only_) return false;
    if (!symbol_only) absl::StrAppendFormat(out, "%016x %016x ", sp, ip);
    std::string where = absl::StrFormat("%016x", ip);
    for (const auto& m : ctx_.core.modules()) {
      if (ip >= m.base && ip < m.end && m.base != 0) {
        const size_t slash = m.path.rfind('/');
        where = absl::StrFormat(
            "%s+0x%x", m.path.substr(slash == std::string::npos ? 0 : slash + 1), ip - m.base);
        (*j)["module"] = m.path;
        break;
      }
    }
    *out += where;
    (*j)["native"] = where;
    return true;
  }

 private:
  CommandContext& ctx_;
  bool ee_only_;
};

CommandResult EEStack(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  bool short_list = false, ee_only = false;
  for (const std::string& a : args) {
    const std::string l = absl::AsciiStrToLower(a);
    if (l == "-short") {
      short_list = true;
    } else if (l == "-ee") {
      ee_only = true;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  auto ts = ctx.dac.GetThreadStore();
  if (!ts.ok()) return Failure("Failed to request ThreadStore");
  StackScraper scraper(ctx, ee_only);
  std::string out;
  Json threads = Json::array();
  for (const dac::ManagedThread& t : ts->threads) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    const int index = DebuggerThreadIndex(t, ctx.core);
    if (index < 0) continue;
    const elf::CoreThread& ct = ctx.core.threads()[index];
    out += "---------------------------------------------\n";
    absl::StrAppendFormat(&out, "Thread %3d\n", index);
    Json jt{{"thread", index}, {"os_thread_id", t.os_id}};
    bool show = !short_list;
    constexpr uint32_t kHijacked = 0x80;
    if (!show) {
      auto ch = ctx.dac.GetCodeHeader(ct.regs.rip);
      show = t.lock_count > 0 || (t.state & kHijacked) || (ch.ok() && ch->method_desc != 0);
    }
    if (!show) {
      threads.push_back(std::move(jt));
      continue;
    }
    // The first readable stack word at or above the stack pointer.
    uint64_t top = ct.regs.rsp, word = 0;
    for (int pages = 0; ctx.dac.ReadTargetMemory(top, &word, 8) != 8 && pages < 16; ++pages) {
      top = (top + 0x1000) & ~uint64_t{0xfff};
    }
    const uint64_t end = top + 0xFFFF;
    out += "TEB information is not available so a stack size of 0xFFFF is assumed\n";
    out += "Current frame: ";
    Json current = Json::object();
    scraper.CallInfo(0, ct.regs.rip, true, &out, &current);
    out += "\nChild-SP         RetAddr          Caller, Callee\n";
    jt["current_frame"] = current;
    Json frames = Json::array();
    for (uint64_t p = top & ~uint64_t{7}; p < end; p += 8) {
      uint64_t ret = 0;
      if (ctx.dac.ReadTargetMemory(p, &ret, 8) != 8) continue;
      const uint64_t called = scraper.WhereCalled(ret);
      if (called == 0) continue;
      Json jf{{"child_sp", JsonHex(p - 8)}, {"return_address", JsonHex(ret)}};
      std::string line;
      bool printed = scraper.CallInfo(p - 8, ret, false, &line, &jf);
      if (!ee_only && called != 0xFFFFFFFF) {
        line += ", calling ";
        Json callee = Json::object();
        scraper.CallInfo(0, called, true, &line, &callee);
        jf["callee"] = callee;
      }
      if (printed) {
        out += line + "\n";
        frames.push_back(std::move(jf));
      }
    }
    jt["frames"] = frames;
    threads.push_back(std::move(jt));
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"threads", threads}});
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterParallelStacksCommands(CommandRegistry& r) {
  r.Add({{"parallelstacks", "pstacks"},
         "[options]",
         "Displays the merged threads stack similarly to the Visual Studio 'Parallel Stacks' "
         "panel.",
         "parallelstacks [-a|--allthreads] [-r|--runtime]\n"
         "  The managed stacks of all threads merged into trees: each frame with the number of\n"
         "  threads whose stacks pass through it, branches where the stacks part (fewest threads\n"
         "  first), and the OS thread ids (hex) of each group.\n"
         "  -a, --allthreads  list every thread id of a group (default: at most 4, then ...).\n"
         "  -r, --runtime     include the runtime's frames (transition frames with a method).",
         ParallelStacks});
  r.Add({{"eestack", "EEStack"},
         "[-short] [-EE]",
         "Runs dumpstack on all threads in the process.",
         "eestack [-short] [-EE]\n"
         "  For every thread the runtime knows, SOS's DumpStack: the current frame, then each\n"
         "  return address found on the stack (0xFFFF bytes up from the stack pointer) with the\n"
         "  code it returns to and the call's target: managed code as (MethodDesc + offset\n"
         "  name), other code as module+offset (no native symbols).\n"
         "  -EE     only managed code.\n"
         "  -short  only threads holding a lock, hijacked for a GC, or running managed code.",
         EEStack});
}

}  // namespace clrdiag::sos
