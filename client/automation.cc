// `clrdiag events` and `clrdiag rules`: the daemon's automation events and rule states.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "nlohmann/json.hpp"

namespace clrdiag::cli {
namespace {

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string Iso(const google::protobuf::Timestamp& ts, bool millis) {
  return absl::FormatTime(millis ? "%Y-%m-%dT%H:%M:%E3SZ" : "%Y-%m-%dT%H:%M:%SZ", FromProto(ts),
                          absl::UTCTimeZone());
}

nlohmann::ordered_json EventJson(const clrdiag::v1::AutomationEvent& e) {
  nlohmann::ordered_json j;
  j["seq"] = e.seq();
  j["time"] = Iso(e.time(), true);
  j["kind"] = e.kind();
  j["rule"] = e.rule();
  j["pid"] = e.pid();
  j["process_name"] = e.process_name();
  j["dump_id"] = e.dump_id();
  j["egress"] = e.egress();
  j["ok"] = e.ok();
  j["message"] = e.message();
  j["runtime_cookie"] = e.runtime_cookie();
  return j;
}

void PrintEvent(const clrdiag::v1::AutomationEvent& e, bool json) {
  if (json) {
    std::printf("%s\n", EventJson(e).dump().c_str());
  } else {
    std::string who = e.pid() ? absl::StrCat("pid ", e.pid(), " (", e.process_name(), ")") : "";
    // A runtime known only through a listen port: its pid may be another runtime's too.
    if (!who.empty() && !e.runtime_cookie().empty()) {
      absl::StrAppend(&who, " runtime ", e.runtime_cookie().substr(0, 8));
    }
    std::string what = e.message();
    if (!e.dump_id().empty()) what = absl::StrCat("dump ", e.dump_id(), ": ", what);
    if (!e.egress().empty()) {
      what = absl::StrCat("egress ", e.egress(), e.ok() ? " ok: " : " FAILED: ", e.message(),
                          " (dump ", e.dump_id(), ")");
    }
    std::printf("%s  #%-5llu %-15s %-16s %-24s %s\n", Iso(e.time(), true).c_str(),
                static_cast<unsigned long long>(e.seq()), e.kind().c_str(),
                e.rule().empty() ? "-" : e.rule().c_str(), who.c_str(), what.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int RunEvents(Client& client, const GlobalOptions& opts, const EventsOptions& eo) {
  grpc::ClientContext ctx;
  if (!eo.follow) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }
  clrdiag::v1::WatchEventsRequest req;
  for (const auto& k : eo.kinds) req.add_kinds(k);
  req.set_rule(eo.rule);
  req.set_pid(eo.pid);
  req.set_replay(true);
  req.set_follow(eo.follow);
  if (eo.follow) {
    // Ctrl-C / SIGTERM (blocked in every thread by main) end the stream cleanly (exit 0)
    // instead of killing the process mid-line.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    std::thread([set, &ctx]() mutable {
      int sig = 0;
      sigwait(&set, &sig);
      ctx.TryCancel();
    }).detach();
  }
  auto reader = client.stub().WatchEvents(&ctx, req);
  clrdiag::v1::AutomationEvent ev;
  size_t n = 0;
  while (reader->Read(&ev)) {
    PrintEvent(ev, opts.json);
    ++n;
  }
  grpc::Status st = reader->Finish();
  if (st.error_code() == grpc::StatusCode::CANCELLED && eo.follow) return kExitOk;
  if (!st.ok()) return client.Fail(st);
  if (n == 0 && !opts.json && !eo.follow) {
    std::printf("No automation events (the daemon keeps the most recent; see `clrdiag rules`).\n");
  }
  return kExitOk;
}

int RunRules(Client& client, const GlobalOptions& opts) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  clrdiag::v1::ListRulesRequest req;
  clrdiag::v1::ListRulesResponse resp;
  grpc::Status st = client.stub().ListRules(&ctx, req, &resp);
  if (!st.ok()) return client.Fail(st);
  if (opts.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& r : resp.rules()) {
      nlohmann::ordered_json j;
      j["name"] = r.name();
      j["trigger"] = r.trigger();
      j["action"] = r.action();
      j["limits"] = r.limits();
      j["fires"] = r.fires();
      j["throttled"] = r.throttled();
      j["last_fire"] = r.has_last_fire() ? nlohmann::ordered_json(Iso(r.last_fire(), true))
                                         : nlohmann::ordered_json(nullptr);
      j["next_allowed"] = r.has_next_allowed() ? nlohmann::ordered_json(Iso(r.next_allowed(), true))
                                               : nlohmann::ordered_json(nullptr);
      j["finished"] = r.finished();
      j["finished_reason"] = r.finished_reason();
      j["processes"] = r.processes();
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return kExitOk;
  }
  if (resp.rules().empty()) {
    std::printf("No collection rules configured (see docs/automation.md).\n");
    return kExitOk;
  }
  size_t wname = 4;
  for (const auto& r : resp.rules()) wname = std::max(wname, r.name().size());
  std::printf("%-*s  %5s  %9s  %5s  %-20s  %-20s  %s\n", static_cast<int>(wname), "NAME", "FIRES",
              "THROTTLED", "PROCS", "LAST FIRE (UTC)", "NEXT ALLOWED", "TRIGGER");
  for (const auto& r : resp.rules()) {
    std::string next = r.finished()           ? "never (finished)"
                       : r.has_next_allowed() ? Iso(r.next_allowed(), false)
                                              : "now";
    std::printf("%-*s  %5llu  %9llu  %5d  %-20s  %-20s  %s\n", static_cast<int>(wname),
                r.name().c_str(), static_cast<unsigned long long>(r.fires()),
                static_cast<unsigned long long>(r.throttled()), r.processes(),
                r.has_last_fire() ? Iso(r.last_fire(), false).c_str() : "-", next.c_str(),
                r.trigger().c_str());
    std::printf("%-*s  action: %s; limits: %s%s\n", static_cast<int>(wname), "", r.action().c_str(),
                r.limits().c_str(),
                r.finished() ? ("; finished: " + r.finished_reason()).c_str() : "");
  }
  return kExitOk;
}

}  // namespace clrdiag::cli
