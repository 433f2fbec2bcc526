// Synchronization commands: syncblk.
//
// syncblk lists the sync block table's entries whose monitor is held (all of them with -all,
// one with its number), as the reference does: the owner's Thread*, OS thread id and debugger
// thread number, and the locked object. MonitorHeld counts 1 for the owner and 2 for each
// thread waiting to enter, so a deadlock shows as entries held by each other's waiters.
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/format.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

constexpr uint64_t kOrphaned = ~0ull;

CommandResult SyncBlk(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  bool all = false;
  uint32_t asked = 0;
  for (const std::string& a : args) {
    if (absl::AsciiStrToLower(a) == "-all") {
      all = true;
    } else if (asked == 0 && absl::SimpleAtoi(a, &asked) && asked > 0) {
      continue;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  auto first = ctx.dac.GetSyncBlock(1);
  if (!first.ok())
    return Failure("Error requesting SyncBlk data: " + std::string(first.status().message()));
  const uint32_t count = first->count;
  if (asked > count) {
    // The reference prints the empty table; a number past the end is a mistake worth saying.
    return Failure(absl::StrCat("there is no sync block ", asked, ": the table has ", count,
                                count == 1 ? " entry" : " entries"));
  }
  auto ts = ctx.dac.GetThreadStore();
  if (!ts.ok()) return Failure(std::string(ts.status().message()));

  std::string out =
      "Index         SyncBlock MonitorHeld Recursion Owning Thread Info          SyncBlock Owner\n";
  Json entries = Json::array();
  uint32_t free_count = 0;
  for (uint32_t nb = 1; nb <= count; ++nb) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    if (asked && nb != asked) continue;
    auto sb = nb == 1 ? first : ctx.dac.GetSyncBlock(nb);
    if (!sb.ok()) {
      absl::StrAppendFormat(&out, "SyncBlock %d is invalid%s\n", nb,
                            nb != asked ? ", continuing..." : "");
      continue;
    }
    if (sb->free) ++free_count;
    const bool print = all || nb == asked || (sb->monitor_held > 0 && !sb->free);
    if (!print) continue;
    Json e{{"index", nb},
           {"sync_block", JsonHex(sb->sync_block)},
           {"free", sb->free},
           {"monitor_held", sb->monitor_held},
           {"waiters", sb->monitor_held > 1 ? (sb->monitor_held - 1) / 2 : 0},
           {"recursion", sb->recursion}};
    absl::StrAppendFormat(&out, "%5d ", nb);
    if (!sb->free || nb != asked) {
      absl::StrAppendFormat(&out, "%016X  %11d %9d %016X ", sb->sync_block, sb->monitor_held,
                            sb->recursion, sb->holding_thread);
      e["holding_thread"] = JsonHex(sb->holding_thread);
      if (sb->holding_thread == kOrphaned) {
        out += " orphaned ";
        e["orphaned"] = true;
      } else if (sb->holding_thread != 0) {
        const dac::ManagedThread* owner = nullptr;
        for (const auto& t : ts->threads) {
          if (t.address == sb->holding_thread) owner = &t;
        }
        if (!owner) {
          return Failure(absl::StrFormat("Failed to request Thread at %016X", sb->holding_thread));
        }
        int dbg = DebuggerThreadIndex(*owner, ctx.core);
        absl::StrAppendFormat(&out, "%x", owner->os_id);
        out += dbg < 0 ? " XXX " : absl::StrFormat("%4d ", dbg);
        e["owner"] = Json{{"os_thread_id", owner->os_id},
                          {"managed_thread_id", owner->managed_id},
                          {"debugger_index", dbg < 0 ? Json() : Json(dbg)}};
      } else {
        out += "    none  ";
      }
      if (sb->free) {
        absl::StrAppendFormat(&out, "  %8d", 0);
      } else {
        auto obj = ctx.dac.GetObject(sb->object);
        std::string type;
        if (obj.ok()) {
          auto name = ctx.dac.GetMethodTableName(obj->mt);
          if (name.ok()) type = *name;
        }
        absl::StrAppendFormat(&out, "  %016x %s", sb->object, type);
        e["object"] = JsonHex(sb->object);
        e["type"] = type;
      }
    }
    if (sb->free) out += " Free";
    out += "\n";
    entries.push_back(std::move(e));
  }
  absl::StrAppendFormat(&out,
                        "-----------------------------\nTotal           %d\nFree            %d\n",
                        count, free_count);
  if (ctx.json) {
    WriteJson(ctx, Json{{"entries", entries}, {"total", count}, {"free", free_count}});
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterSyncCommands(CommandRegistry& r) {
  r.Add({{"syncblk"},
         "<arguments>",
         "Displays the SyncBlock holder info.",
         "syncblk [-all | <syncblk number>]\n"
         "  The sync blocks whose monitor is held: the owning thread (Thread*, OS id, debugger\n"
         "  thread number) and the locked object. MonitorHeld is 1 for the owner plus 2 for each\n"
         "  waiting thread. -all lists every entry, free ones too; a number lists that entry.",
         SyncBlk});
}

}  // namespace clrdiag::sos
