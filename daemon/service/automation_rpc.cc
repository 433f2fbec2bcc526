// WatchEvents and ListRules: the automation engine's events and rule states over gRPC.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/automation/automation_host.h"
#include "daemon/service/diagnostics_service.h"
#include "daemon/service/status_convert.h"

namespace clrdiag::service {
namespace {

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  timespec spec = absl::ToTimespec(t);
  ts.set_seconds(spec.tv_sec);
  ts.set_nanos(static_cast<int32_t>(spec.tv_nsec));
  return ts;
}

void FillEvent(const automation::Event& e, v1::AutomationEvent* out) {
  out->set_seq(e.seq);
  *out->mutable_time() = Ts(e.time);
  out->set_kind(automation::EventKindName(e.kind));
  out->set_rule(e.rule);
  out->set_pid(e.pid);
  out->set_process_name(e.process_name);
  out->set_dump_id(e.dump_id);
  out->set_egress(e.egress);
  out->set_ok(e.ok);
  out->set_message(e.message);
  out->set_runtime_cookie(e.runtime_cookie);
}

// How often a following stream checks whether its client went away.
constexpr absl::Duration kWatchPoll = absl::Milliseconds(500);

}  // namespace

grpc::Status DiagnosticsService::WatchEvents(grpc::ServerContext* ctx,
                                             const v1::WatchEventsRequest* req,
                                             grpc::ServerWriter<v1::AutomationEvent>* writer) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kListProcesses, &call); !st.ok()) return st;
  automation::EventFilter filter;
  for (const auto& k : req->kinds()) {
    auto kind = automation::ParseEventKind(k);
    if (!kind) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("unknown event kind '", k,
                                       "' (known: process_start, process_exit, rule_fired, "
                                       "rule_throttled, dump_collected, collect_failed, egress, "
                                       "rule_finished)"));
    }
    filter.kinds.insert(*kind);
  }
  filter.rule = req->rule();
  filter.pid = req->pid();
  // Callers limited to their own processes see only those processes' events.
  const bool scoped = call.who->owner_scoped;
  const int64_t me = scoped ? call.who->owner_id() : -1;
  auto visible = [&](const automation::Event& e) {
    return !scoped || e.pid == 0 || (e.uid >= 0 && e.uid == me);
  };
  if (events_ == nullptr) return grpc::Status::OK;  // no automation: nothing ever happens
  if (!req->follow()) {
    if (req->replay()) {
      for (const auto& e : events_->Recent(filter)) {
        if (!visible(e)) continue;
        v1::AutomationEvent ev;
        FillEvent(e, &ev);
        if (!writer->Write(ev)) break;
      }
    }
    return grpc::Status::OK;
  }
  auto sub = events_->Subscribe(filter, req->replay());
  // Headers go out now, so the client knows the subscription is in place before any event.
  writer->SendInitialMetadata();
  std::vector<automation::Event> batch;
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    batch.clear();
    bool open = sub->Next(kWatchPoll, &batch);
    for (const auto& e : batch) {
      if (!visible(e)) continue;
      v1::AutomationEvent ev;
      FillEvent(e, &ev);
      if (!writer->Write(ev)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    if (!open) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down");
    }
  }
}

grpc::Status DiagnosticsService::ListRules(grpc::ServerContext* ctx,
                                           const v1::ListRulesRequest* /*req*/,
                                           v1::ListRulesResponse* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kListProcesses, &call); !st.ok()) return st;
  if (engine_ == nullptr) return grpc::Status::OK;
  const auto& rules = engine_->rules();
  auto states = engine_->ListRules();
  for (size_t i = 0; i < states.size() && i < rules.size(); ++i) {
    const auto& s = states[i];
    auto* r = resp->add_rules();
    r->set_name(s.name);
    r->set_trigger(s.trigger);
    r->set_action(daemon_automation::DescribeAction(rules[i].action));
    r->set_limits(daemon_automation::DescribeLimits(rules[i].limits));
    r->set_fires(s.fires);
    r->set_throttled(s.throttled);
    if (s.last_fire) *r->mutable_last_fire() = Ts(*s.last_fire);
    if (s.next_allowed) *r->mutable_next_allowed() = Ts(*s.next_allowed);
    r->set_finished(s.finished);
    r->set_finished_reason(s.finished_reason);
    r->set_processes(s.processes);
  }
  return grpc::Status::OK;
}

}  // namespace clrdiag::service
