#include "daemon/service/diagnostics_service.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/cancel.h"
#include "core/base/unique_fd.h"
#include "core/procfs/procfs.h"
#include "daemon/service/status_convert.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {
namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  timespec spec = absl::ToTimespec(t);
  ts.set_seconds(spec.tv_sec);
  ts.set_nanos(static_cast<int32_t>(spec.tv_nsec));
  return ts;
}

v1::DumpType ToProto(dump::DumpKind k) {
  switch (k) {
    case dump::DumpKind::kFull:
      return v1::DUMP_TYPE_FULL;
    case dump::DumpKind::kHeap:
      return v1::DUMP_TYPE_HEAP;
    case dump::DumpKind::kMini:
      return v1::DUMP_TYPE_MINI;
    case dump::DumpKind::kTriage:
      return v1::DUMP_TYPE_TRIAGE;
  }
  return v1::DUMP_TYPE_FULL;
}

absl::StatusOr<dump::DumpKind> FromProto(v1::DumpType t) {
  switch (t) {
    case v1::DUMP_TYPE_UNSPECIFIED:
    case v1::DUMP_TYPE_FULL:
      return dump::DumpKind::kFull;
    case v1::DUMP_TYPE_HEAP:
      return dump::DumpKind::kHeap;
    case v1::DUMP_TYPE_MINI:
      return dump::DumpKind::kMini;
    case v1::DUMP_TYPE_TRIAGE:
      return dump::DumpKind::kTriage;
    default:
      return absl::InvalidArgumentError("unknown dump type");
  }
}

void FillDumpInfo(const dump::DumpMeta& m, const dump::DumpStore& store, v1::DumpInfo* out) {
  out->set_id(m.id);
  out->set_type(ToProto(m.kind));
  out->set_pid(m.pid);
  out->set_namespace_pid(m.ns_pid);
  out->set_process_name(m.process_name);
  out->set_command_line(m.command_line);
  out->set_runtime_version(m.runtime_version);
  out->set_runtime_identifier(m.runtime_identifier);
  out->set_size_bytes(m.size_bytes);
  out->set_sha256(m.sha256);
  *out->mutable_started() = ToProto(m.started);
  *out->mutable_finished() = ToProto(m.finished);
  out->set_requested_by_uid(m.requested_by_uid);
  out->set_path(store.DumpPath(m.id));
  out->set_coreclr_build_id(m.coreclr_build_id);
  out->set_runtime_files_stored(m.runtime_files_stored);
  if (m.has_crash_report) out->set_crash_report_path(store.CrashReportPath(m.id));
  out->set_origin(m.origin);
  out->set_source_path(m.source_path);
  out->set_container_id(m.container_id);
  out->set_pod(m.pod);
  out->set_pod_namespace(m.pod_namespace);
  out->set_rule(m.rule);
  for (const auto& e : m.egress) {
    auto* r = out->add_egress();
    r->set_name(e.name);
    r->set_state(e.state);
    r->set_location(e.location);
    r->set_error(e.error);
    if (e.time != absl::Time()) *r->mutable_time() = ToProto(e.time);
  }
}

void FillProcess(const inventory::DotnetProcess& p, v1::ProcessInfo* out) {
  out->set_pid(p.facts.pid);
  out->set_namespace_pid(p.facts.ns_pid);
  out->set_name(p.facts.name);
  out->set_executable(p.facts.exe);
  out->set_command_line(absl::StrJoin(p.facts.cmdline, " "));
  for (const auto& a : p.facts.cmdline) out->add_argv(a);
  out->set_uid(p.facts.uid);
  out->set_user(p.user);
  out->set_diagnostic_socket(p.facts.socket.path);
  out->set_rss_bytes(p.facts.rss_bytes);
  out->set_container_id(p.facts.k8s.container_id);
  out->set_container_runtime(p.facts.k8s.container_runtime);
  out->set_pod_uid(p.facts.k8s.pod_uid);
  out->set_pod(p.facts.k8s.pod);
  out->set_pod_namespace(p.facts.k8s.namespace_);
  if (p.runtime) {
    out->set_runtime_version(p.runtime->runtime_version);
    out->set_os(p.runtime->os);
    out->set_arch(p.runtime->arch);
    out->set_runtime_identifier(p.runtime->runtime_id);
    out->set_entry_assembly(p.runtime->entry_assembly);
  }
  out->set_runtime_error(p.runtime_error);
  if (p.runtime) out->set_runtime_cookie(ipc::CookieHex(p.runtime->cookie));
  if (p.listen) {
    out->set_connection("listen:" + p.listen->port.path);
    out->set_listen_only(p.listen_only);
    out->set_resume_sent(p.listen->resume_sent);
  }
}

// How to reach the process `pid` as `ps` lists it: nullopt through its own socket (the
// collector's procfs path), else through the listen port it is connected to.
absl::StatusOr<std::optional<dump::ReverseTarget>> ReverseTargetFor(
    inventory::Inventory& inventory, listen::ListenServer* server, pid_t pid,
    const std::string& cookie_prefix) {
  if (server == nullptr && cookie_prefix.empty()) return std::nullopt;
  std::vector<inventory::DotnetProcess> matches;
  for (auto& p : inventory.List()) {
    if (p.facts.pid != pid) continue;
    // A runtime known through the port carries its cookie from the advertise even before it
    // answered ProcessInfo (the rules engine keys it by that cookie).
    const bool cookie_matches =
        (p.runtime && absl::StartsWith(ipc::CookieHex(p.runtime->cookie), cookie_prefix)) ||
        (p.listen && absl::StartsWith(ipc::CookieHex(p.listen->cookie), cookie_prefix));
    if (!cookie_prefix.empty() && !cookie_matches) continue;
    matches.push_back(std::move(p));
  }
  if (!cookie_prefix.empty() && matches.empty()) {
    return absl::NotFoundError(absl::StrCat("no .NET process with pid ", pid,
                                            " has a runtime cookie starting with ", cookie_prefix,
                                            " (see `clrdiag ps --json`)"));
  }
  if (matches.size() > 1) {
    std::vector<std::string> rows;
    rows.reserve(matches.size());
    for (const auto& p : matches) {
      rows.push_back(absl::StrCat("  ", p.facts.pid, "  ", p.facts.name, "  runtime cookie ",
                                  p.runtime ? ipc::CookieHex(p.runtime->cookie) : std::string("?"),
                                  p.listen ? " [listen:" + p.listen->port.path + "]" : ""));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "pid ", pid,
        " is ambiguous: runtimes in other pid namespaces connected to a listen port advertise "
        "their own pids; pick one with --runtime-cookie:\n",
        absl::StrJoin(rows, "\n")));
  }
  if (matches.empty() || !matches[0].listen || server == nullptr) return std::nullopt;
  const inventory::DotnetProcess& p = matches[0];
  dump::ReverseTarget t;
  t.endpoint = server->EndpointFor(p.listen->cookie, p.listen->port.path);
  t.pid_visible = !p.listen_only;
  t.shared_dir = p.listen->port.dump_dir;
  t.shared_dir_in_app = p.listen->port.dump_dir_in_app;
  t.cookie_hex = ipc::CookieHex(p.listen->cookie);
  t.name = p.facts.name;
  t.command_line = absl::StrJoin(p.facts.cmdline, " ");
  if (p.runtime) {
    t.runtime_version = p.runtime->runtime_version;
    t.runtime_identifier = p.runtime->runtime_id;
  }
  return t;
}

// The uid that owns a process for authorization: its uid, or root's (0) when its real and
// effective uids differ (a setuid program is not its caller's to dump).
std::optional<int64_t> ProcessOwner(pid_t pid) {
  auto st = procfs::ProcFs("/proc").ReadStatus(pid);
  if (!st.ok()) return std::nullopt;  // gone: the collector reports that
  return st->uid == st->euid ? static_cast<int64_t>(st->uid) : 0;
}

}  // namespace

grpc::Status DiagnosticsService::Authenticate(grpc::ServerContext* ctx, auth::Action action,
                                              Call* call) {
  call->peer = ctx->peer();
  if (!deps_.authn) {
    auth::Identity trusted;
    trusted.name = "trusted";
    trusted.role = auth::Role::kAdmin;
    trusted.peer = call->peer;
    if (auto p = deps_.peers ? deps_.peers->Lookup(call->peer) : std::nullopt) trusted.uid = p->uid;
    call->who = trusted;
    return grpc::Status::OK;
  }
  auto who = deps_.authn->Resolve(*ctx);
  if (!who.ok()) return ToGrpc(who.status());
  call->who = *who;
  return ToGrpc(auth::Authorize(*who, action, std::nullopt));
}

grpc::Status DiagnosticsService::Authorize(const Call& call, auth::Action action,
                                           std::optional<int64_t> owner, const std::string& what) {
  return ToGrpc(auth::Authorize(*call.who, action, owner, what));
}

void DiagnosticsService::Audit(const Call& call, const grpc::Status& st) {
  if (!deps_.audit) return;
  deps_.audit->Record(call.who ? &*call.who : nullptr, call.peer, call.ev,
                      static_cast<int>(st.error_code()), st.error_message());
}

grpc::Status DiagnosticsService::ListProcesses(grpc::ServerContext* ctx,
                                               const v1::ListProcessesRequest* req,
                                               v1::ListProcessesResponse* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kListProcesses, &call); !st.ok()) return st;
  for (const auto& p : deps_.inventory->List()) {
    if (!req->name().empty() && p.facts.name != req->name()) continue;
    // Owner-scoped callers see only their own processes.
    if (call.who->owner_scoped && static_cast<int64_t>(p.facts.uid) != call.who->owner_id())
      continue;
    FillProcess(p, resp->add_processes());
  }
  return grpc::Status::OK;
}

bool DiagnosticsService::WaitForCollections(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                        [this] { return collections_running_ == 0; });
}

grpc::Status DiagnosticsService::CollectDump(grpc::ServerContext* ctx,
                                             const v1::CollectDumpRequest* req,
                                             grpc::ServerWriter<v1::CollectDumpEvent>* writer) {
  Call call;
  call.ev.action = "collect";
  call.ev.target = req->pid() ? absl::StrCat("pid:", req->pid()) : "name:" + req->name();
  grpc::Status st = Authenticate(ctx, auth::Action::kCollect, &call);
  if (st.ok()) st = CollectDumpImpl(ctx, req, writer, &call);
  Audit(call, st);
  return st;
}

grpc::Status DiagnosticsService::CollectDumpImpl(grpc::ServerContext* ctx,
                                                 const v1::CollectDumpRequest* req,
                                                 grpc::ServerWriter<v1::CollectDumpEvent>* writer,
                                                 Call* call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++collections_running_;
  }
  struct Done {
    DiagnosticsService* s;
    ~Done() {
      std::lock_guard<std::mutex> lock(s->mu_);
      if (--s->collections_running_ == 0) s->idle_.notify_all();
    }
  } done_guard{this};
  if ((req->pid() != 0) == !req->name().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "give exactly one of a process id and a process name");
  }
  auto kind = FromProto(req->type());
  if (!kind.ok()) return ToGrpc(kind.status());
  pid_t pid = req->pid();
  if (!req->name().empty()) {
    auto matches = deps_.inventory->FindByName(req->name());
    if (!matches.ok()) return ToGrpc(matches.status());
    if (call->who->owner_scoped) {  // only the caller's own processes are candidates
      std::erase_if(*matches, [&](const inventory::DotnetProcess& p) {
        return static_cast<int64_t>(p.facts.uid) != call->who->owner_id();
      });
      if (matches->empty()) {
        return grpc::Status(
            grpc::StatusCode::NOT_FOUND,
            CapMessage(absl::StrCat("no .NET process named '", req->name(), "' runs as ",
                                    call->who->name, " (you may collect only your own)")));
      }
    }
    if (!req->runtime_cookie().empty()) {
      std::erase_if(*matches, [&](const inventory::DotnetProcess& p) {
        return !(p.runtime &&
                 absl::StartsWith(ipc::CookieHex(p.runtime->cookie), req->runtime_cookie()));
      });
      if (matches->empty()) {
        return grpc::Status(
            grpc::StatusCode::NOT_FOUND,
            absl::StrCat("no .NET process named '", req->name(),
                         "' has a runtime cookie starting with ", req->runtime_cookie()));
      }
    }
    if (matches->size() > 1) {
      std::vector<std::string> rows;
      for (const auto& p : *matches) {
        rows.push_back(absl::StrCat("  ", p.facts.pid, "  ", absl::StrJoin(p.facts.cmdline, " ")));
      }
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("there are ", matches->size(), " .NET processes named '", req->name(),
                       "'; pick one with -p:\n", absl::StrJoin(rows, "\n")));
    }
    pid = (*matches)[0].facts.pid;
  }
  call->ev.target = absl::StrCat("pid:", pid);
  if (call->who->owner_scoped) {
    if (auto owner = ProcessOwner(pid)) {
      if (auto st = Authorize(*call, auth::Action::kCollect, *owner, absl::StrCat("process ", pid));
          !st.ok()) {
        return st;
      }
    }
  }
  dump::CollectRequest creq;
  creq.pid = pid;
  creq.kind = *kind;
  creq.diag = req->diag();
  creq.crash_report = req->crash_report();
  creq.requested_by = static_cast<uid_t>(call->who->owner_id());
  auto reverse = ReverseTargetFor(*deps_.inventory, deps_.listen, pid, req->runtime_cookie());
  if (!reverse.ok()) return ToGrpc(reverse.status());
  // A runtime out of this host's process namespace has no owner we can check (its pid may name
  // another process here): only root and the admin group collect it.
  if (call->who->owner_scoped && *reverse && !(*reverse)->pid_visible) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("process ", pid,
                                     " is connected through a listen port from another pid "
                                     "namespace; only root and the admin group (auth.admin_group) "
                                     "may collect it"));
  }
  creq.reverse = *std::move(reverse);
  CancellationToken cancel;
  auto progress = [&](const dump::CollectProgress& p) {
    if (ctx->IsCancelled()) cancel.Cancel();
    v1::CollectDumpEvent ev;
    auto* pr = ev.mutable_progress();
    pr->set_phase(static_cast<v1::CollectProgress::Phase>(static_cast<int>(p.phase) + 1));
    pr->set_bytes(p.bytes);
    pr->set_total_bytes(p.total_bytes);
    pr->set_message(p.message);
    writer->Write(ev);
  };
  spdlog::info("collect: {} dump of pid {} for uid {}{}", std::string(dump::DumpKindName(*kind)),
               pid, creq.requested_by,
               creq.reverse ? " through " + creq.reverse->endpoint->Describe() : "");
  dump::DataFn on_data;
  std::unique_ptr<BlockWriter> output;
  if (!req->output_token().empty()) {
    // Same-host fast path: write into the client's own file as the runtime writes the dump.
    auto fd = deps_.output_fds->Take(req->output_token(), creq.requested_by);
    if (!fd.ok()) return ToGrpc(fd.status());
    output = std::make_unique<BlockWriter>(std::move(*fd));
    on_data = [&](int file, uint64_t offset, const char*, size_t len) {
      output->Copy(file, offset, len);
    };
  } else if (req->stream_data()) {
    on_data = [&](int, uint64_t offset, const char* data, size_t len) {
      v1::CollectDumpEvent ev;
      ev.mutable_data()->set_offset(offset);
      ev.mutable_data()->set_data(data, len);
      if (!writer->Write(ev)) cancel.Cancel();
    };
  }
  const absl::Time collect_start = absl::Now();
  auto meta = deps_.collector->Collect(creq, progress, on_data, cancel);
  if (deps_.on_collection) deps_.on_collection(*kind, meta.status(), absl::Now() - collect_start);
  if (output) output->Finish();  // the client's file is complete before it hears "done"
  if (!meta.ok()) {
    spdlog::warn("collect: pid {} failed: {}", pid, std::string(meta.status().message()));
    return ToGrpc(meta.status());
  }
  spdlog::info("collect: stored {} ({} bytes)", meta->id, meta->size_bytes);
  call->ev.target = absl::StrCat("pid:", pid, " dump:", meta->id);
  call->ev.bytes = meta->size_bytes;
  v1::CollectDumpEvent done;
  FillDumpInfo(*meta, *deps_.store, done.mutable_done());
  writer->Write(done);
  malloc_trim(0);  // give the freed 1 MiB data buffers back to the kernel (idle RSS)
  return grpc::Status::OK;
}

absl::StatusOr<dump::DumpMeta> DiagnosticsService::CollectForRule(
    const dump::CollectRequest& request, const std::string& runtime_cookie) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++collections_running_;
  }
  struct Done {
    DiagnosticsService* s;
    ~Done() {
      std::lock_guard<std::mutex> lock(s->mu_);
      if (--s->collections_running_ == 0) s->idle_.notify_all();
    }
  } done_guard{this};
  dump::CollectRequest creq = request;
  auto reverse = ReverseTargetFor(*deps_.inventory, deps_.listen, creq.pid, runtime_cookie);
  if (!reverse.ok()) return reverse.status();
  creq.reverse = *std::move(reverse);
  CancellationToken cancel;
  const absl::Time start = absl::Now();
  auto meta = deps_.collector->Collect(creq, nullptr, nullptr, cancel);
  if (deps_.on_collection) deps_.on_collection(creq.kind, meta.status(), absl::Now() - start);
  if (deps_.audit) {
    auth::AuditEvent ev;
    ev.action = "collect";
    ev.target = meta.ok() ? absl::StrCat("pid:", creq.pid, " dump:", meta->id)
                          : absl::StrCat("pid:", creq.pid);
    if (meta.ok()) ev.bytes = meta->size_bytes;
    auth::Identity rule;
    rule.name = "collection-rule";
    rule.role = auth::Role::kAdmin;
    rule.uid = 0;
    deps_.audit->Record(&rule, "daemon", ev, meta.ok() ? 0 : static_cast<int>(meta.status().code()),
                        std::string(meta.status().message()));
  }
  malloc_trim(0);
  return meta;
}

grpc::Status DiagnosticsService::ListDumps(grpc::ServerContext* ctx,
                                           const v1::ListDumpsRequest* req,
                                           v1::ListDumpsResponse* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kListDumps, &call); !st.ok()) return st;
  for (const auto& m : deps_.store->List()) {
    // Owner-scoped callers see only the dumps they collected.
    if (call.who->owner_scoped &&
        static_cast<int64_t>(m.requested_by_uid) != call.who->owner_id()) {
      continue;
    }
    FillDumpInfo(m, *deps_.store, resp->add_dumps());
  }
  return grpc::Status::OK;
}

grpc::Status DiagnosticsService::GetDump(grpc::ServerContext* ctx, const v1::GetDumpRequest* req,
                                         v1::DumpInfo* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kListDumps, &call); !st.ok()) return st;
  auto m = deps_.store->Get(req->id());
  if (!m.ok()) return ToGrpc(m.status());
  if (auto st = Authorize(call, auth::Action::kListDumps, DumpOwner(*m), "dump " + m->id);
      !st.ok()) {
    return st;
  }
  FillDumpInfo(*m, *deps_.store, resp);
  return grpc::Status::OK;
}

grpc::Status DiagnosticsService::DownloadDump(grpc::ServerContext* ctx,
                                              const v1::DownloadDumpRequest* req,
                                              grpc::ServerWriter<v1::DumpChunk>* writer) {
  Call call;
  call.ev.action = "download";
  call.ev.target = req->id();
  grpc::Status st = Authenticate(ctx, auth::Action::kDownload, &call);
  if (st.ok()) st = DownloadDumpImpl(ctx, req, writer, &call);
  Audit(call, st);
  return st;
}

grpc::Status DiagnosticsService::DownloadDumpImpl(grpc::ServerContext* ctx,
                                                  const v1::DownloadDumpRequest* req,
                                                  grpc::ServerWriter<v1::DumpChunk>* writer,
                                                  Call* call) {
  auto m = deps_.store->Get(req->id());
  if (!m.ok()) return ToGrpc(m.status());
  if (auto st = Authorize(*call, auth::Action::kDownload, DumpOwner(*m), "dump " + m->id);
      !st.ok()) {
    return st;
  }
  // Retention and `rm` leave the dump alone until the download ends.
  auto pin = deps_.store->Pin(m->id, "a download");
  if (!pin.ok()) return ToGrpc(pin.status());
  if (req->offset() > m->size_bytes) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        absl::StrCat("offset ", req->offset(), " is past the end of dump ",
                                     req->id(), " (", m->size_bytes, " bytes)"));
  }
  std::string path = deps_.store->DumpPath(m->id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("dump ", req->id(),
                                     " is in the catalog but its file cannot "
                                     "be opened: ",
                                     std::strerror(errno)));
  }
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  v1::DumpChunk first;
  FillDumpInfo(*m, *deps_.store, first.mutable_info());
  first.set_offset(req->offset());
  uint64_t off = req->offset();
  std::string buf;
  bool first_sent = false;
  while (off < m->size_bytes || !first_sent) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled");
    size_t want = static_cast<size_t>(std::min<uint64_t>(kDownloadChunkBytes, m->size_bytes - off));
    buf.resize(want);
    ssize_t n = want ? ::pread(fd.get(), buf.data(), want, static_cast<off_t>(off)) : 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          absl::StrCat("read ", path, ": ", std::strerror(errno)));
    }
    if (n == 0 && want > 0) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          absl::StrCat("dump ", req->id(), " is shorter than its catalog entry"));
    }
    buf.resize(n);
    v1::DumpChunk chunk;
    if (!first_sent) {
      chunk.Swap(&first);  // the first chunk carries the metadata (once)
      first_sent = true;
    }
    chunk.set_offset(off);
    chunk.set_data(std::move(buf));
    buf.clear();
    if (!writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    off += n;
    call->ev.bytes += static_cast<uint64_t>(n);
  }
  malloc_trim(0);  // give the freed 1 MiB chunk buffers back to the kernel (idle RSS)
  return grpc::Status::OK;
}

grpc::Status DiagnosticsService::DeleteDump(grpc::ServerContext* ctx,
                                            const v1::DeleteDumpRequest* req,
                                            v1::DeleteDumpResponse* resp) {
  Call call;
  call.ev.action = "delete";
  call.ev.target = req->id();
  grpc::Status st = Authenticate(ctx, auth::Action::kDelete, &call);
  if (st.ok()) {
    auto m = deps_.store->Get(req->id());
    st = m.ok() ? Authorize(call, auth::Action::kDelete, DumpOwner(*m), "dump " + m->id)
                : ToGrpc(m.status());
  }
  if (!st.ok()) {
    Audit(call, st);
    return st;
  }
  auto freed = deps_.store->Delete(req->id());
  if (!freed.ok()) {
    Audit(call, ToGrpc(freed.status()));
    return ToGrpc(freed.status());
  }
  spdlog::info("delete: {} ({} bytes freed)", req->id(), *freed);
  call.ev.bytes = *freed;
  Audit(call, grpc::Status::OK);
  resp->set_freed_bytes(*freed);
  return grpc::Status::OK;
}

}  // namespace clrdiag::service
