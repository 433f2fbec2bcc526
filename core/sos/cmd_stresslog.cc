// The stress log commands: dumplog, and the GC history family built from the log's relocation
// records (histinit, histstats, histroot, histobj, histobjfind, histclear).
//
// Where dumplog writes: the reference writes StressLog.txt in the debugger's directory. A
// session here runs in the daemon's worker, whose directory means nothing to the user, so
// `dumplog` without a file name streams the log into the command's output (the client shows
// it or redirects it), and `dumplog <absolute path>` writes the file on the daemon host, for a
// session whose owner is a local admin (the worker writes with its own rights).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/stress_log.h"

namespace clrdiag::sos {

// The GC history of histinit: per GC (newest first), its relocation records in the order the
// runtime logged them (oldest first).
struct GcHistory {
  struct Plug {
    uint64_t start, end, delta;
  };
  struct Reloc {
    uint64_t root, prev, now, mt;
  };
  struct Promote {
    uint64_t root, value, mt;
  };
  struct Gc {
    uint64_t count = 0;
    std::vector<Plug> plugs;
    std::vector<Reloc> relocs;
    std::vector<Promote> promotes;
  };
  std::vector<Gc> gcs;                    // closed by their BEGINGC record
  Gc open;                                // records older than the oldest BEGINGC in the log
  static constexpr size_t kMaxGcs = 500;  // the reference's MAX_GCRECORDS

  // One message, newest first (the reference's GcHistAddLog).
  void Add(const StressLogMessage& m) {
    if (gcs.size() >= kMaxGcs) return;
    auto arg = [&](size_t i) { return i < m.args.size() ? m.args[i] : 0; };
    if (m.format == kGcPlugMoveFormat) {
      open.plugs.push_back({arg(0), arg(1), arg(2)});
    } else if (m.format == kGcRootFormat) {
      open.relocs.push_back({arg(0), arg(1), arg(2), arg(3)});
    } else if (m.format == kGcRootPromoteFormat) {
      open.promotes.push_back({arg(0), arg(1), arg(2)});
    } else if (m.format == kGcStartFormat) {
      open.count = arg(0);
      // Records were met newest first; keep them oldest first, the reference's list order.
      std::reverse(open.plugs.begin(), open.plugs.end());
      std::reverse(open.relocs.begin(), open.relocs.end());
      std::reverse(open.promotes.begin(), open.promotes.end());
      gcs.push_back(std::move(open));
      open = Gc{};
    }
  }
};

namespace {

std::string Ptr(uint64_t v) { return absl::StrFormat("%016X", v); }

// `s` with each byte that is not part of a valid UTF-8 sequence replaced by U+FFFD: a %s
// argument may point at anything, and the session's output travels as protobuf strings. A file
// gets the bytes as they are, as the reference writes them.
std::string ValidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok && n > 1) {
      // Overlong forms, surrogates and values past U+10FFFF are invalid too.
      uint32_t cp = c & (0xFF >> (n + 1));
      for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// The header lines of the log (the reference's vDoOut calls). In a file, the two clock lines
// stop where glibc's fprintf fails on the UTF-16 %S argument: dumplog's files have them so.
std::string HeaderText(const StressLogHeader& h, bool as_file) {
  std::string s = absl::StrFormat(
      "STRESS LOG:\n    facilitiesToLog  = 0x%x\n    levelToLog       = %d\n"
      "    MaxLogSizePerThread = 0x%x (%d)\n    MaxTotalLogSize = 0x%x (%d)\n"
      "    CurrentTotalLogChunk = %d\n    ThreadsWithLogs  = %d\n",
      h.facilities_to_log, h.level_to_log, h.max_size_per_thread, h.max_size_per_thread,
      h.max_size_total, h.max_size_total, h.total_chunks, h.threads_with_logs);
  absl::StrAppendFormat(&s, "    Clock frequency  = %5.3f GHz\n",
                        static_cast<double>(h.tick_frequency) / 1.0E9);
  if (as_file) {
    s += "    Start time             Last message time  ";
  } else {
    absl::StrAppend(&s, "    Start time         ", FileTimeClock(h.start_filetime), "\n",
                    "    Last message time  ", FileTimeClock(h.end_filetime()), "\n");
  }
  absl::StrAppendFormat(&s, "    Total elapsed time %5.3f sec\n", h.elapsed_seconds());
  return s;
}

Json HeaderJson(const StressLogHeader& h) {
  return Json{{"address", JsonHex(h.address)},
              {"module", JsonHex(h.module_offset)},
              {"facilities_to_log", h.facilities_to_log},
              {"level_to_log", h.level_to_log},
              {"max_size_per_thread", h.max_size_per_thread},
              {"max_size_total", h.max_size_total},
              {"total_chunks", h.total_chunks},
              {"threads_with_logs", h.threads_with_logs},
              {"tick_frequency", h.tick_frequency},
              {"start_time", FileTimeClock(h.start_filetime)},
              {"last_message_time", FileTimeClock(h.end_filetime())},
              {"elapsed_seconds", h.elapsed_seconds()}};
}

// The log's address and contents, or the reference's message why there is none.
absl::StatusOr<StressLog> OpenLog(CommandContext& ctx) {
  auto address = ctx.dac.GetStressLogAddress();
  if (!address.ok()) return absl::NotFoundError("Unable to find stress log via DAC");
  return StressLog::Read(ctx.dac, *address);
}

// Writes text to the output or a file in pieces.
class LogWriter {
 public:
  LogWriter(OutputSink* out, FILE* file) : out_(out), file_(file) {}
  void Write(const std::string& s) {
    buf_ += s;
    if (buf_.size() >= kFlush) Flush();
  }
  bool Flush() {
    if (file_ != nullptr) {
      if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) {
        ok_ = false;
      }
    } else if (out_ != nullptr && !buf_.empty()) {
      out_->Write(buf_);
    }
    buf_.clear();
    return ok_;
  }

 private:
  static constexpr size_t kFlush = 64 * 1024;
  OutputSink* out_;
  FILE* file_;
  std::string buf_;
  bool ok_ = true;
};

CommandResult DumpLog(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  std::string file_name;
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "-")) {
      return UsageError(spec, absl::StrCat("unknown option '", a,
                                           "' (-addr is not supported: the log is the "
                                           "runtime's, found through the DAC)"));
    }
    if (!file_name.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    file_name = a;
  }
  if (!file_name.empty()) {
    if (!ctx.state.host_access) {
      return Failure(
          "dumplog writes a file on the daemon host only for a local admin's session; run "
          "dumplog without a file name to receive the log in the output");
    }
    if (file_name[0] != '/') {
      return Failure(absl::StrCat("dumplog: name the file with an absolute path ('", file_name,
                                  "' would be relative to the daemon's worker, not to you)"));
    }
  }
  bool to_file = !file_name.empty();
  if (!ctx.json) {
    ctx.out.Write(to_file
                      ? absl::StrCat("Attempting to dump Stress log to file '", file_name, "'\n")
                      : "Attempting to dump Stress log to the session output\n");
  }
  auto log = OpenLog(ctx);
  if (!log.ok()) {
    if (absl::IsNotFound(log.status())) {
      return Failure(
          absl::StrCat(log.status().message(), "\nNo Stress log in the image, no file written"));
    }
    return Failure(absl::StrCat(log.status().message(), "\nFAILURE: Stress log not dumped"));
  }
  const StressLogHeader& h = log->header();
  DebugOut(ctx, absl::StrFormat("stress log at 0x%x: %d thread logs, %d chunks, format strings "
                                "of module 0x%x",
                                h.address, h.threads_with_logs, h.total_chunks, h.module_offset));
  if (!ctx.json) {
    ctx.out.Write(absl::StrCat(to_file ? absl::StrCat("Writing to file: ", file_name, "\n") : "",
                               "Stress log in module 0x", Ptr(h.module_offset), "\n",
                               "Stress log address = 0x", Ptr(h.address), "\n"));
  }
  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, &std::fclose);
  if (to_file) {
    file.reset(std::fopen(file_name.c_str(), "w"));
    if (!file) {
      return Failure(absl::StrCat("cannot write ", file_name, ": ", std::strerror(errno),
                                  "\nFAILURE: Stress log not dumped"));
    }
  }
  LogWriter w(to_file ? nullptr : &ctx.out, file.get());
  Json messages = Json::array();
  if (!ctx.json) {
    w.Write(HeaderText(h, to_file));
    w.Write(
        "\nTHREAD  TIMESTAMP     FACILITY                              MESSAGE\n"
        "  ID  (sec from start)\n"
        "--------------------------------------------------------------------------------------"
        "\n");
  }
  std::string dots;
  StressLogVisitor v;
  v.message = [&](const StressLogMessage& m) {
    if (m.format == kTaskSwitchFormat) {
      auto from = static_cast<uint32_t>(m.args.empty() ? 0 : m.args[0]);
      if (ctx.json) {
        messages.push_back(Json{{"task_switch_from", absl::StrFormat("%x", from)}});
      } else {
        w.Write(absl::StrFormat("Task was switched from %x\n", from));
      }
      return;
    }
    std::string text = FormatStressMessage(ctx.dac, m);
    if (!to_file || ctx.json) text = ValidUtf8(text);
    if (ctx.json) {
      messages.push_back(Json{{"thread", absl::StrFormat("%x", m.thread_id)},
                              {"seconds", m.seconds},
                              {"facility", FacilityName(m.facility)},
                              {"message", text}});
    } else {
      w.Write(absl::StrFormat("%4x %13.9f : %-20s %s\n", m.thread_id, m.seconds,
                              FacilityName(m.facility), text));
    }
  };
  v.thread_end = [&](uint32_t thread) {
    if (ctx.json) {
      messages.push_back(Json{{"last_message_from", absl::StrFormat("%x", thread)}});
    } else {
      w.Write(absl::StrFormat("------------ Last message from thread %x -----------\n", thread));
    }
  };
  v.progress = [&](bool newline) {
    if (to_file) dots += newline ? ".\n" : ".";
  };
  bool last_read = false;
  auto count = log->Walk(ctx.dac, v, ctx.cancel, &last_read);
  if (!count.ok()) return Failure(std::string(count.status().message()));
  if (!ctx.json) {
    w.Write(absl::StrFormat(
        "---------------------------- %d total entries ------------------------------------\n",
        *count));
  }
  if (!w.Flush()) {
    return Failure(absl::StrCat("cannot write ", file_name, ": ", std::strerror(errno),
                                "\nFAILURE: Stress log not dumped"));
  }
  if (ctx.json) {
    Json j{{"header", HeaderJson(h)}, {"entries", *count}};
    if (to_file) {
      j["file"] = file_name;
    } else {
      j["messages"] = std::move(messages);
    }
    WriteJson(ctx, j);
    return {};
  }
  if (to_file) ctx.out.Write(dots + "\n");
  // As the reference: no message counted, or the last format string unreadable.
  if (*count == 0) return Failure("No Stress log in the image, no file written");
  if (!last_read) return Failure("FAILURE: Stress log not dumped");
  ctx.out.Write("SUCCESS: Stress log dumped\n");
  return {};
}

CommandResult HistInit(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  ctx.state.gc_history.reset();
  auto address = ctx.dac.GetStressLogAddress();
  if (!address.ok()) return Failure("Unable to find stress log via DAC");
  if (!ctx.json) ctx.out.Write("Attempting to read Stress log\n");
  auto log = StressLog::Read(ctx.dac, *address);
  if (!log.ok()) {
    if (absl::IsNotFound(log.status())) {
      return Failure(absl::StrCat(log.status().message(),
                                  "\nNo Stress log in the image, GCHist commands unavailable"));
    }
    return Failure(absl::StrCat(log.status().message(), "\nFAILURE: Stress log unreadable"));
  }
  DebugOut(ctx,
           absl::StrFormat("stress log at 0x%x: %d thread logs, %d chunks", log->header().address,
                           log->header().threads_with_logs, log->header().total_chunks));
  auto history = std::make_shared<GcHistory>();
  std::string text = ctx.json ? "" : HeaderText(log->header(), false);
  StressLogVisitor v;
  v.message = [&](const StressLogMessage& m) { history->Add(m); };
  v.progress = [&](bool newline) {
    if (!ctx.json) text += newline ? ".\n" : ".";
  };
  bool last_read = false;
  auto count = log->Walk(ctx.dac, v, ctx.cancel, &last_read);
  if (!count.ok()) return Failure(std::string(count.status().message()));
  ctx.state.gc_history = history;
  if (ctx.json) {
    WriteJson(ctx, Json{{"header", HeaderJson(log->header())},
                        {"entries", *count},
                        {"gcs", history->gcs.size()}});
    return {};
  }
  absl::StrAppendFormat(
      &text,
      "\n---------------------------- %d total entries ------------------------------------\n",
      *count);
  ctx.out.Write(text);
  if (*count == 0) {
    return Failure("No Stress log in the image, GCHist commands unavailable");
  }
  if (!last_read) return Failure("FAILURE: Stress log unreadable");
  ctx.out.Write("SUCCESS: GCHist structures initialized\n");
  return {};
}

const std::vector<GcHistory::Gc>& Gcs(const CommandContext& ctx) {
  static const std::vector<GcHistory::Gc> kNone;
  return ctx.state.gc_history ? ctx.state.gc_history->gcs : kNone;
}

CommandResult HistClear(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  ctx.state.gc_history.reset();
  if (ctx.json) {
    WriteJson(ctx, Json{{"cleared", true}});
  } else {
    ctx.out.Write("Completed successfully.\n");
  }
  return {};
}

CommandResult HistStats(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError(spec, absl::StrCat("unexpected argument '", args[0], "'"));
  std::string s = absl::StrFormat("%8s %8s %8s\n-----------------------------------\n", "GCCount",
                                  "Promotes", "Relocs");
  Json rows = Json::array(), dups = Json::array();
  for (const auto& gc : Gcs(ctx)) {
    absl::StrAppendFormat(&s, "%8d %8d %8d\n", static_cast<uint32_t>(gc.count), gc.promotes.size(),
                          gc.relocs.size());
    rows.push_back(
        Json{{"gc", gc.count}, {"promotes", gc.promotes.size()}, {"relocs", gc.relocs.size()}});
  }
  bool found = false;
  for (const auto& gc : Gcs(ctx)) {
    auto gc_count = static_cast<uint32_t>(gc.count);
    for (size_t i = 0; i < gc.promotes.size(); ++i) {
      for (size_t k = i + 1; k < gc.promotes.size(); ++k) {
        if (gc.promotes[i].root != gc.promotes[k].root) continue;
        absl::StrAppendFormat(&s, "Root %s promoted multiple times in gc %d\n",
                              Ptr(gc.promotes[i].root), gc_count);
        dups.push_back(
            Json{{"gc", gc.count}, {"root", JsonHex(gc.promotes[i].root)}, {"kind", "promote"}});
        found = true;
      }
    }
    for (size_t i = 0; i < gc.relocs.size(); ++i) {
      for (size_t k = i + 1; k < gc.relocs.size(); ++k) {
        if (gc.relocs[i].root != gc.relocs[k].root) continue;
        absl::StrAppendFormat(&s, "Root %s relocated multiple times in gc %d\n",
                              Ptr(gc.relocs[i].root), gc_count);
        dups.push_back(
            Json{{"gc", gc.count}, {"root", JsonHex(gc.relocs[i].root)}, {"kind", "relocate"}});
        found = true;
      }
    }
  }
  if (!found) s += "No duplicate promote or relocate messages found in the log.\n";
  if (ctx.json) {
    WriteJson(ctx, Json{{"initialized", ctx.state.gc_history != nullptr},
                        {"gcs", rows},
                        {"duplicates", dups}});
  } else {
    ctx.out.Write(s);
  }
  return {};
}

// The one address argument of histroot/histobj/histobjfind.
bool OneAddress(const std::vector<std::string>& args, uint64_t* out) {
  return args.size() == 1 && ParseHexAddress(args[0], out);
}

CommandResult HistRoot(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  uint64_t root = 0;
  if (!OneAddress(args, &root)) return UsageError(spec, "!Root <valid object pointer>");
  std::string s = absl::StrFormat(
      "%8s %16s %16s %9s %20s\n---------------------------------------------------------\n",
      "GCCount", "Value", "MT", "Promoted?", "Notes");
  Json rows = Json::array();
  bool quiet = false;
  for (const auto& gc : Gcs(ctx)) {
    auto gc_count = static_cast<uint32_t>(gc.count);
    const GcHistory::Promote* promote = nullptr;
    bool promoted_twice = false;
    for (const auto& p : gc.promotes) {
      if (p.root != root) continue;
      if (promote) promoted_twice = true;
      if (!promote) promote = &p;
    }
    const GcHistory::Reloc* reloc = nullptr;
    bool relocated_twice = false;
    for (const auto& r : gc.relocs) {
      if (r.root != root) continue;
      if (reloc) relocated_twice = true;
      if (!reloc) reloc = &r;
    }
    if (reloc) {
      quiet = false;
      absl::StrAppendFormat(&s, "%8d %s %s %9s ", gc_count, Ptr(reloc->now), Ptr(reloc->mt),
                            promote ? "yes" : "no");
      std::string notes;
      if (promote) {
        if (promote->value != reloc->prev || promote->mt != reloc->mt) {
          notes += "promote/reloc records in error ";
        }
        if (promoted_twice || relocated_twice) notes += "Duplicate promote/relocs";
      }
      s += notes + "\n";
      rows.push_back(Json{{"gc", gc.count},
                          {"value", JsonHex(reloc->now)},
                          {"method_table", JsonHex(reloc->mt)},
                          {"promoted", promote != nullptr},
                          {"notes", notes}});
    } else if (promote) {
      absl::StrAppendFormat(
          &s, "Error: There is a promote record for root %s, but no relocation record\n",
          Ptr(promote->root));
      rows.push_back(Json{{"gc", gc.count}, {"error", "promote record without relocation"}});
    } else if (!quiet) {
      s += "...\n";
      quiet = true;
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"root", JsonHex(root)}, {"gcs", rows}});
  } else {
    ctx.out.Write(s);
  }
  return {};
}

CommandResult HistObjFind(CommandContext& ctx, const CommandSpec& spec,
                          const std::vector<std::string>& args) {
  uint64_t object = 0;
  if (!OneAddress(args, &object)) return UsageError(spec, "!ObjSearch <valid object pointer>");
  std::string s =
      absl::StrFormat("%8s %16s %40s\n---------------------------------------------------------\n",
                      "GCCount", "Object", "Message");
  Json rows = Json::array();
  bool quiet = false;
  for (const auto& gc : Gcs(ctx)) {
    if (object == 0) break;
    auto gc_count = static_cast<uint32_t>(gc.count);
    for (const auto& p : gc.promotes) {
      if (p.value != object) continue;
      quiet = false;
      absl::StrAppendFormat(&s, "%8d %s Promotion for root %s (MT = %s)\n", gc_count, Ptr(object),
                            Ptr(p.root), Ptr(p.mt));
      rows.push_back(Json{{"gc", gc.count},
                          {"kind", "promotion"},
                          {"root", JsonHex(p.root)},
                          {"method_table", JsonHex(p.mt)}});
    }
    for (const auto& r : gc.relocs) {
      if (r.now != object && r.prev != object) continue;
      quiet = false;
      bool is_new = r.now == object;
      absl::StrAppendFormat(&s, "%8d %s Relocation %s for root %s\n", gc_count, Ptr(object),
                            is_new ? "NEWVALUE" : "PREVVALUE", Ptr(r.root));
      rows.push_back(Json{{"gc", gc.count},
                          {"kind", is_new ? "relocation_new_value" : "relocation_previous_value"},
                          {"root", JsonHex(r.root)}});
    }
    if (!quiet) {
      s += "...\n";
      quiet = true;
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"object", JsonHex(object)}, {"records", rows}});
  } else {
    ctx.out.Write(s);
  }
  return {};
}

CommandResult HistObj(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  uint64_t object = 0;
  if (!OneAddress(args, &object)) return UsageError(spec, "!object <valid object pointer>");
  std::string s =
      absl::StrFormat("%8s %16s %40s\n---------------------------------------------------------\n",
                      "GCCount", "Object", "Roots");
  Json rows = Json::array();
  uint64_t current = object;
  for (const auto& gc : Gcs(ctx)) {
    if (current == 0) break;
    absl::StrAppendFormat(&s, "%8d %s ", static_cast<uint32_t>(gc.count), Ptr(current));
    Json roots = Json::array();
    uint64_t previous = current;
    bool first = true, differing = false;
    for (const auto& r : gc.relocs) {
      if (r.now != current) continue;
      absl::StrAppend(&s, Ptr(r.root), ", ");
      roots.push_back(JsonHex(r.root));
      if (first) {
        previous = r.prev;
        first = false;
      } else if (previous != r.prev) {
        s += "differing reloc values for this object!\n";
        differing = true;
      }
    }
    s += "\n";
    rows.push_back(Json{{"gc", gc.count},
                        {"object", JsonHex(current)},
                        {"roots", roots},
                        {"differing_reloc_values", differing}});
    current = previous;
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"object", JsonHex(object)}, {"gcs", rows}});
  } else {
    ctx.out.Write(s);
  }
  return {};
}

}  // namespace

void RegisterStressLogCommands(CommandRegistry& r) {
  r.Add({{"dumplog", "DumpLog"},
         "<arguments>",
         "Writes the contents of an in-memory stress log to the specified file.",
         "dumplog [<absolute file path>]\n"
         "  Writes the runtime's stress log (DOTNET_StressLog=1): without a file name into the\n"
         "  output, with one into that file on the daemon host (local admin sessions only).\n"
         "  The log lists each thread's messages, newest first: thread id, seconds since the\n"
         "  log started, facilities (`GC`GCROOTS`) and the message.",
         DumpLog});
  r.Add(
      {{"histinit", "HistInit"},
       "<arguments>",
       "Initializes the SOS structures from the stress log saved in the debuggee.",
       "histinit\n  Reads the stress log and keeps its GC relocation records for the other hist*\n"
       "  commands. The log needs the GC facilities at level 6 (DOTNET_LogFacility with\n"
       "  GC|GCROOTS, DOTNET_LogLevel=6).",
       HistInit});
  r.Add({{"histclear", "HistClear"},
         "<arguments>",
         "Releases any resources used by the family of Hist commands.",
         "histclear\n  Forgets what histinit read.",
         HistClear});
  r.Add({{"histstats", "HistStats"},
         "<arguments>",
         "Displays stress log stats.",
         "histstats\n  Promotions and relocations per GC, and roots recorded twice in one GC.",
         HistStats});
  r.Add({{"histroot", "HistRoot"},
         "<arguments>",
         "Displays information related to both promotions and relocations of the specified "
         "root.",
         "histroot <root>\n  Per GC: the root's new value, its MethodTable and whether it was "
         "promoted.",
         HistRoot});
  r.Add({{"histobj", "HistObj"},
         "<arguments>",
         "Examines all stress log relocation records and displays the chain of garbage "
         "collection relocations that may have led to the address passed in as an argument.",
         "histobj <object>\n  Follows the object back through the GCs that moved it, with the "
         "roots that\n  pointed to it.",
         HistObj});
  r.Add({{"histobjfind", "HistObjFind"},
         "<arguments>",
         "Displays all the log entries that reference the object at the specified address.",
         "histobjfind <object>\n  The promotion and relocation records naming the object.",
         HistObjFind});
}

}  // namespace clrdiag::sos
