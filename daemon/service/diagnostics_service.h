// gRPC handlers of clrdiag.v1.Diagnostics. Each one identifies the caller, converts the
// request to domain types, calls one core function, and converts back.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "clrdiag/v1/clrdiag.grpc.pb.h"
#include "core/automation/engine.h"
#include "core/automation/events.h"
#include "core/dump/collector.h"
#include "core/dump/dump_store.h"
#include "core/inventory/inventory.h"
#include "core/listen/listen_server.h"
#include "daemon/auth/audit.h"
#include "daemon/auth/auth.h"
#include "daemon/service/output_fds.h"
#include "daemon/service/peer_registry.h"
#include "daemon/service/session_registry.h"

namespace clrdiag::service {

class WarmWorkers;  // warm_workers.h

struct ServiceDeps {
  inventory::Inventory* inventory = nullptr;
  dump::Collector* collector = nullptr;
  dump::DumpStore* store = nullptr;
  const PeerRegistry* peers = nullptr;
  OutputFdRegistry* output_fds = nullptr;
  SessionRegistry* sessions = nullptr;
  // Who may do what (daemon/auth). Null: every caller is trusted (tests of other parts).
  const auth::Authenticator* authn = nullptr;
  auth::AuditLog* audit = nullptr;  // null: no audit log
  // Told about every collection that reached the collector (metrics); may be empty.
  std::function<void(dump::DumpKind, const absl::Status&, absl::Duration)> on_collection;
  listen::ListenServer* listen = nullptr;  // listen mode (may be null: no diagnostic ports)
  WarmWorkers* warm_workers = nullptr;     // kept analysis workers (null: none are kept)
};

class DiagnosticsService final : public clrdiag::v1::Diagnostics::Service {
 public:
  explicit DiagnosticsService(ServiceDeps deps) : deps_(std::move(deps)) {}
  // Listen mode, set before serving (the server starts after the gRPC service is built).
  void SetListenServer(listen::ListenServer* server) { deps_.listen = server; }
  // Automation (set before serving; null: WatchEvents and ListRules answer with no rules).
  void SetAutomation(automation::EventBus* bus, const automation::Engine* engine) {
    events_ = bus;
    engine_ = engine;
  }

  // The CollectDump RPC's collection path for the daemon's own callers (collection rules):
  // listen-mode targets, the collector's limits, metrics, and shutdown's wait all apply.
  // `runtime_cookie` (hex, may be empty) picks a listen runtime among those advertising the pid.
  absl::StatusOr<dump::DumpMeta> CollectForRule(const dump::CollectRequest& request,
                                                const std::string& runtime_cookie = "");

  // For shutdown: waits until no CollectDump call is running (up to `timeout`); returns
  // whether they all finished.
  bool WaitForCollections(absl::Duration timeout);

  grpc::Status ListProcesses(grpc::ServerContext* ctx, const v1::ListProcessesRequest* req,
                             v1::ListProcessesResponse* resp) override;
  grpc::Status CollectDump(grpc::ServerContext* ctx, const v1::CollectDumpRequest* req,
                           grpc::ServerWriter<v1::CollectDumpEvent>* writer) override;
  grpc::Status ListDumps(grpc::ServerContext* ctx, const v1::ListDumpsRequest* req,
                         v1::ListDumpsResponse* resp) override;
  grpc::Status GetDump(grpc::ServerContext* ctx, const v1::GetDumpRequest* req,
                       v1::DumpInfo* resp) override;
  grpc::Status DownloadDump(grpc::ServerContext* ctx, const v1::DownloadDumpRequest* req,
                            grpc::ServerWriter<v1::DumpChunk>* writer) override;
  grpc::Status DeleteDump(grpc::ServerContext* ctx, const v1::DeleteDumpRequest* req,
                          v1::DeleteDumpResponse* resp) override;
  // analyze_service.cc
  grpc::Status Analyze(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::AnalyzeResponse, v1::AnalyzeRequest>* stream) override;
  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* req,
                            v1::ListSessionsResponse* resp) override;
  grpc::Status CloseSession(grpc::ServerContext* ctx, const v1::CloseSessionRequest* req,
                            v1::CloseSessionResponse* resp) override;
  // automation_rpc.cc
  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::AutomationEvent>* writer) override;
  grpc::Status ListRules(grpc::ServerContext* ctx, const v1::ListRulesRequest* req,
                         v1::ListRulesResponse* resp) override;

 private:
  // One call's caller and audit record (see daemon/auth).
  struct Call {
    std::optional<auth::Identity> who;
    std::string peer;
    auth::AuditEvent ev;
    bool audited = false;  // the handler wrote its own lines (analyze)
  };
  // Resolves the caller into call->who (UNAUTHENTICATED otherwise) and checks `action` for
  // no particular owner.
  grpc::Status Authenticate(grpc::ServerContext* ctx, auth::Action action, Call* call);
  // Checks `action` on something `owner` owns (a process uid, a dump's requester).
  grpc::Status Authorize(const Call& call, auth::Action action, std::optional<int64_t> owner,
                         const std::string& what);
  void Audit(const Call& call, const grpc::Status& st);
  grpc::Status CollectDumpImpl(grpc::ServerContext* ctx, const v1::CollectDumpRequest* req,
                               grpc::ServerWriter<v1::CollectDumpEvent>* writer, Call* call);
  grpc::Status DownloadDumpImpl(grpc::ServerContext* ctx, const v1::DownloadDumpRequest* req,
                                grpc::ServerWriter<v1::DumpChunk>* writer, Call* call);
  grpc::Status AnalyzeImpl(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::AnalyzeResponse, v1::AnalyzeRequest>* stream, Call* call);

  ServiceDeps deps_;
  automation::EventBus* events_ = nullptr;
  const automation::Engine* engine_ = nullptr;
  std::mutex mu_;
  std::condition_variable idle_;
  int collections_running_ = 0;
};

// The owner of a dump for authorization: who collected it (-1: a remote identity).
inline int64_t DumpOwner(const dump::DumpMeta& m) {
  return m.requested_by_uid == static_cast<uid_t>(-1) ? -1
                                                      : static_cast<int64_t>(m.requested_by_uid);
}

// Size of DownloadDump chunks (named limit; below gRPC's 4 MiB default message cap).
inline constexpr size_t kDownloadChunkBytes = 1 << 20;

}  // namespace clrdiag::service
