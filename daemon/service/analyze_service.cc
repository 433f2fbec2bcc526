// The Analyze RPC: one worker process per session; the handler relays frames both ways, and
// enforces the session limits (count, idle time, command time, output size). ListSessions and
// CloseSession.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/phase_log.h"
#include "core/base/unique_fd.h"
#include "core/base/utf8.h"
#include "daemon/service/diagnostics_service.h"
#include "daemon/service/graph_prebuilder.h"
#include "daemon/service/status_convert.h"
#include "daemon/service/warm_workers.h"
#include "daemon/worker/frame_io.h"
#include "daemon/worker/worker_process.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {

grpc::Status DiagnosticsService::Analyze(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::AnalyzeResponse, v1::AnalyzeRequest>* stream) {
  Call call;
  call.ev.action = "analyze.open";
  grpc::Status st = Authenticate(ctx, auth::Action::kAnalyze, &call);
  if (st.ok()) st = AnalyzeImpl(ctx, stream, &call);
  // A session that opened has its own lines (analyze.open, analyze.close).
  if (!call.audited) Audit(call, st);
  return st;
}

grpc::Status DiagnosticsService::AnalyzeImpl(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::AnalyzeResponse, v1::AnalyzeRequest>* stream, Call* call) {
  PhaseMark("daemon", "session");
  v1::AnalyzeRequest first;
  if (!stream->Read(&first) || !first.has_open()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an analysis session starts with an open request");
  }
  const int64_t uid = call->who->session_owner();
  // Resolve the dump: a catalog id, or a core file on this host.
  const std::string& what = first.open().dump();
  call->ev.target = what;
  std::string path;
  dump::DumpPin pin;  // retention and `rm` leave a catalog dump alone while the session lasts
  UniqueFd dump_fd;
  if (dump::IsValidDumpId(what)) {
    auto meta = deps_.store->Get(what);
    if (!meta.ok()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(meta.status().message()));
    }
    if (auto st = Authorize(*call, auth::Action::kAnalyze, DumpOwner(*meta), "dump " + what);
        !st.ok()) {
      return st;
    }
    auto p = deps_.store->Pin(what, "an analysis session");
    if (!p.ok()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(p.status().message()));
    }
    pin = std::move(*p);
    path = deps_.store->DumpPath(what);
  } else if (!what.empty() && what[0] == '/' && what.find('\0') == std::string::npos) {
    // A path on the daemon's host: remote identities have no rights on the host's files.
    if (!call->who->uid) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "files on the daemon's host can be analyzed only through its unix "
                          "socket; analyze a dump id from `clrdiag dumps`");
    }
    // Opened with the caller's own rights (not the daemon's): see auth::OpenAsUser.
    if (*call->who->uid != 0) {
      auto fd = auth::OpenAsUser(what, *call->who->uid, call->who->gid);
      if (!fd.ok()) return ToGrpc(fd.status());
      dump_fd = std::move(*fd);
    }
    path = what;
    // A store's dump named by its path is in use all the same.
    if (std::string id = deps_.store->IdForPath(path); !id.empty()) {
      auto p = deps_.store->Pin(id, "an analysis session");
      if (p.ok()) pin = std::move(*p);
    }
  } else {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        CapMessage(absl::StrCat("'", what, "' is neither a dump id nor an absolute path")));
  }
  // The worker gets the dump as an open file (its fd 3), not the right to open paths itself.
  if (!dump_fd) dump_fd.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!dump_fd) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat dst;
  if (::fstat(dump_fd.get(), &dst) != 0 || !S_ISREG(dst.st_mode)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no dump file at ", what, " on the daemon's host"));
  }

  SessionRegistry* registry = deps_.sessions;
  std::shared_ptr<Session> session;
  if (registry) {
    auto s = registry->Open(uid, what, path, call->who->name);
    if (!s.ok()) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(s.status().message()));
    }
    session = *s;
  }
  const config::AnalysisLimits limits = registry ? registry->limits() : config::AnalysisLimits{};
  struct Unregister {
    SessionRegistry* r;
    std::shared_ptr<Session> s;
    ~Unregister() {
      if (s) {
        s->Detach();
        r->Remove(s->id());
      }
    }
  } unregister{registry, session};

  WarmWorkers* warm =
      deps_.warm_workers != nullptr && deps_.warm_workers->enabled() ? deps_.warm_workers : nullptr;
  worker::WorkerProcess::Options wopts;
  wopts.fd3 = dump_fd.get();
  // A catalog dump's heap graph lives beside it (built in the background when it came).
  std::string graph_file;
  if (!pin.id().empty()) {
    GraphPrebuilder::Boost(pin.id());  // being built at nice 19? someone needs it now
    graph_file = deps_.store->GraphPath(pin.id());
  }
  // The same for every session on this dump file (and for the worker of its graph build)...
  const std::vector<std::string> base_args = WarmWorkers::SessionWorkerArgs(
      deps_.store->root(), path, limits.worker_memory_mib, graph_file);
  std::vector<std::string> wargs = base_args;
  // ... then the caller's: a local admin's session may use the daemon host's files and network
  // (setsymbolserver); remote identities never get the host's files, as for `analyze PATH`.
  const bool host_access = call->who->uid && call->who->role == auth::Role::kAdmin;
  if (host_access) wargs.emplace_back("--host-access");
  if (warm) wargs.emplace_back("--reusable");
  v1::AnalyzeRequest open = first;
  open.mutable_open()->set_dump(path);
  // The session's rights, also for a worker that was started for no one (a prebuilt one);
  // whatever the client put there is overwritten.
  open.mutable_open()->set_host_access(host_access);
  // A kept worker serves only a session that its own would have been started exactly like:
  // the same dump file (identity, not only path), the same arguments (rights, limits, graph
  // file), the same caller and the same DAC directories. The worker left by the dump's graph
  // build has served no one: the first session of any caller allowed to analyze the dump (it
  // was authorized above) may take it, if its worker would get the same arguments and it
  // names no DAC directories of its own (the build found the DAC without any).
  std::string warm_key, prebuilt_key;
  if (warm) {
    warm_key =
        absl::StrCat(WarmWorkers::DumpIdentity(dst), "|uid ", uid, "|", call->who->name, "|",
                     absl::StrJoin(wargs, " "), "|", absl::StrJoin(first.open().dac_dirs(), ":"));
    if (!graph_file.empty() && first.open().dac_dirs().empty()) {
      prebuilt_key = WarmWorkers::PrebuiltKey(dst, base_args);
    }
  }
  std::unique_ptr<worker::WorkerProcess> owner;
  bool reused = false;
  const char* reused_from = "";
  v1::AnalyzeResponse resp;
  // The first answer of a worker to an open request: opened, or a failure to open.
  auto open_worker = [&](worker::WorkerProcess& p) {
    return worker::WriteFrame(p.to_worker(), open).ok() &&
           worker::ReadFrame(p.from_worker(), &resp).ok();
  };
  if (warm) {
    // The caller's own kept worker first, else the one the dump's graph build left.
    const char* from = ", kept from an earlier session";
    auto kept = warm->Take(warm_key);
    if (!kept && !prebuilt_key.empty()) {
      kept = warm->Take(prebuilt_key);
      from = ", kept from the build of the dump's heap graph";
    }
    if (kept) {
      PhaseMark("daemon", "reuse");
      // Only a clean `opened` proves the pipe held nothing left from the previous session.
      if (open_worker(*kept) && resp.has_opened()) {
        owner = std::move(kept);
        reused = true;
        reused_from = from;
      } else {
        spdlog::warn("analyze: kept worker {} did not answer; starting a new one", kept->pid());
      }
    }
  }
  if (!owner) {
    PhaseMark("daemon", "spawn");
    auto w = worker::WorkerProcess::Start(worker::WorkerExecutablePath(), wargs, wopts);
    PhaseMark("daemon", "spawned");
    if (!w.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(w.status().message()));
    owner = std::move(*w);
  }
  dump_fd.Reset();
  auto& proc = *owner;
  spdlog::info("analyze: session {} on {} (worker pid {}{}, uid {})", session ? session->id() : "-",
               path, proc.pid(), reused_from, uid);
  std::mutex to_worker_mu;  // the handler's thread and the watchdog (cancel) write to the worker
  auto to_worker = [&](const v1::AnalyzeRequest& r) {
    std::lock_guard<std::mutex> lock(to_worker_mu);
    return worker::WriteFrame(proc.to_worker(), r).ok();
  };
  if (!reused && !open_worker(proc)) {
    bool clean;
    std::string how = proc.Wait(&clean);
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("the analysis worker ", how, " while opening ", path));
  }
  if (resp.has_done() && !resp.done().ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, resp.done().error());
  }
  PhaseMark("daemon", "worker-opened");
  if (session) resp.mutable_opened()->set_session_id(session->id());
  call->ev.bytes = static_cast<uint64_t>(dst.st_size);
  if (session) call->ev.target = absl::StrCat(what, " session:", session->id());
  Audit(*call, grpc::Status::OK);  // analyze.open
  call->audited = true;
  uint64_t commands_run = 0;
  std::mutex stream_mu;  // the relay thread and the watchdog (close) write to the client
  auto to_client = [&](const v1::AnalyzeResponse& r) {
    std::lock_guard<std::mutex> lock(stream_mu);
    return stream->Write(r);
  };
  to_client(resp);

  std::mutex mu;
  uint64_t running_id = 0;
  uint64_t done_id = 0;  // the last command the worker answered (guarded by mu)
  std::string running_cmd;
  std::atomic<bool> closing{false};
  std::atomic<bool> ended_by_exit{false};  // the worker answered an exit: the session is over
  // The id of the `exit` the daemon sends for a client that left without one (0: none); its
  // answer is not the client's (it has hung up its side; an exit it did not ask for would read
  // as the session ended under it).
  std::atomic<uint64_t> injected_exit{0};
  if (session) {
    Session::Callbacks cb;
    cb.close = [&](const std::string& reason) {
      closing = true;
      v1::AnalyzeResponse bye;
      bye.mutable_done()->set_id(0);
      bye.mutable_done()->set_ok(false);
      bye.mutable_done()->set_exit(true);
      bye.mutable_done()->set_error(reason);
      proc.Kill();
      // The client hangs up when it reads this, which ends the handler's Read below.
      if (!to_client(bye)) ctx->TryCancel();
    };
    cb.force = [&] { ctx->TryCancel(); };
    cb.cancel = [&](uint64_t id) {
      v1::AnalyzeRequest c;
      c.mutable_cancel()->set_id(id);
      to_worker(c);
    };
    session->Attach(proc.pid(), std::move(cb));
  }

  // Worker → client, on its own thread; it also notices a worker that dies mid-command, and
  // cuts off a command's output at the limit.
  const uint64_t max_output = static_cast<uint64_t>(limits.max_command_output_mib) << 20;
  std::thread relay([&] {
    v1::AnalyzeResponse r;
    uint64_t output_id = 0, output_bytes = 0;
    bool truncated = false;
    for (;;) {
      absl::Status st = worker::ReadFrame(proc.from_worker(), &r);
      if (absl::IsDataLoss(st)) {
        // A frame that does not parse: the worker is broken, and waiting for its next frame
        // could hang the client. End it; the report below says so.
        spdlog::warn("analyze: worker {}: {}", proc.pid(), std::string(st.message()));
        proc.Kill();
      }
      if (!st.ok()) break;
      if (r.has_output()) {
        if (r.output().id() != output_id) {
          output_id = r.output().id();
          output_bytes = 0;
          truncated = false;
        }
        if (truncated) continue;
        output_bytes += r.output().text().size();
        if (output_bytes > max_output) {
          // Keep what fits, add a note, and stop the command: more output helps nobody.
          truncated = true;
          std::string* text = r.mutable_output()->mutable_text();
          text->resize(text->size() - static_cast<size_t>(output_bytes - max_output));
          text->resize(Utf8CompletePrefix(*text));  // not inside a character
          absl::StrAppend(text, "\n<output cut off after ", limits.max_command_output_mib,
                          " MiB (analysis.max_command_output_mib)>\n");
          v1::AnalyzeRequest c;
          c.mutable_cancel()->set_id(output_id);
          to_worker(c);
        }
      }
      if (r.has_done()) {
        PhaseMark("daemon", "done-relayed");
        {
          // With done_id, under the same lock: the handler's keep decision reads both, and a
          // client that half-closed right after sending `exit` must not see the exit answered
          // but not yet taken for the session's end (it would send the worker a second exit).
          std::lock_guard<std::mutex> lock(mu);
          done_id = r.done().id();
          if (r.done().exit() && (injected_exit == 0 || r.done().id() != injected_exit)) {
            ended_by_exit = true;
          }
        }
        if (session) session->CommandEnded(r.done().id());
        if (truncated && r.done().id() == output_id) {
          r.mutable_done()->set_ok(false);
          r.mutable_done()->set_error(absl::StrCat(
              "the output was cut off after ", limits.max_command_output_mib,
              " MiB (analysis.max_command_output_mib); narrow the command (e.g. dumpheap -stat, "
              "-type, -mt)"));
        }
      }
      if (r.has_done() && injected_exit != 0 && r.done().id() == injected_exit) {
        ended_by_exit = r.done().exit();
        return;
      }
      to_client(r);
      if (r.has_done() && r.done().exit()) return;
    }
    bool clean;
    std::string how = proc.Wait(&clean);
    if (clean || closing) return;
    v1::AnalyzeResponse crash;
    {
      std::lock_guard<std::mutex> lock(mu);
      crash.mutable_done()->set_id(running_id);
      crash.mutable_done()->set_ok(false);
      crash.mutable_done()->set_exit(true);
      crash.mutable_done()->set_error(
          absl::StrCat("the analysis worker ", how,
                       running_cmd.empty() ? "" : " while running '" + running_cmd + "'",
                       "; this session is over (the daemon is fine): start a new one"));
    }
    spdlog::warn("analyze: worker {} {}", proc.pid(), how);
    to_client(crash);
  });
  v1::AnalyzeRequest req;
  while (stream->Read(&req)) {
    if (req.has_cancel()) {
      if (!to_worker(req)) break;
      continue;
    }
    if (!req.has_command()) continue;
    {
      std::lock_guard<std::mutex> lock(mu);
      running_id = req.command().id();
      running_cmd = req.command().command_line();
    }
    ++commands_run;
    if (session) session->CommandStarted(req.command().id(), req.command().command_line());
    if (!to_worker(req)) break;
  }
  if (session) session->Detach();  // no watchdog callback from here on
  // A worker that answered everything it was asked may be kept for the next session on this
  // dump (analysis.warm_workers): never one that was killed, crashed, or still runs a command.
  bool keep = warm != nullptr && !closing && !ctx->IsCancelled();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!keep || done_id != running_id) {
      keep = false;  // killed, cancelled, or asked something it has not answered
    } else if (!ended_by_exit) {
      // The client left without `exit`: end the session in the worker the same way.
      v1::AnalyzeRequest bye;
      bye.mutable_command()->set_id(running_id + 1);
      bye.mutable_command()->set_command_line("exit");
      injected_exit = running_id + 1;
      keep = to_worker(bye);
    }
  }
  if (!keep) {
    if (ctx->IsCancelled()) proc.Kill();  // the client is gone: stop whatever runs
    proc.CloseInput();                    // the worker exits at end of input
  }
  relay.join();
  if (keep && ended_by_exit) {
    warm->Keep(warm_key, pin.id(), std::move(owner));
  } else {
    // The relay stops reading at an exit: a worker still writing (commands sent after it)
    // would block on a full pipe instead of ending.
    if (ended_by_exit) proc.Kill();
    bool clean;
    proc.Wait(&clean);
  }
  PhaseMark("daemon", "worker-reaped");
  spdlog::info("analyze: session on {} ended", path);
  call->ev.action = "analyze.close";
  call->ev.bytes = commands_run;  // for a session's close: the number of commands it ran
  Audit(*call, grpc::Status::OK);
  return grpc::Status::OK;
}

grpc::Status DiagnosticsService::ListSessions(grpc::ServerContext* ctx,
                                              const v1::ListSessionsRequest* req,
                                              v1::ListSessionsResponse* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kSessions, &call); !st.ok()) return st;
  if (!deps_.sessions) return grpc::Status::OK;
  // Admins see every session; others their own (remote identities: those opened remotely).
  std::optional<int64_t> only;
  if (call.who->role != auth::Role::kAdmin) only = call.who->session_owner();
  for (const Session::Snapshot& s : deps_.sessions->List(only)) {
    v1::SessionInfo* i = resp->add_sessions();
    i->set_id(s.id);
    i->set_uid(s.uid);
    i->set_owner(s.owner);
    i->set_dump(s.dump);
    i->set_dump_path(s.dump_path);
    *i->mutable_started() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(s.started));
    i->set_idle_ms(static_cast<uint64_t>(absl::ToInt64Milliseconds(s.idle)));
    i->set_running_command(s.running_command);
    i->set_commands(s.commands);
    i->set_worker_pid(s.worker_pid);
  }
  return grpc::Status::OK;
}

grpc::Status DiagnosticsService::CloseSession(grpc::ServerContext* ctx,
                                              const v1::CloseSessionRequest* req,
                                              v1::CloseSessionResponse* resp) {
  Call call;
  if (auto st = Authenticate(ctx, auth::Action::kSessions, &call); !st.ok()) return st;
  if (!deps_.sessions) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no sessions");
  // Admins close any session (the registry's "root"); others only their own.
  int64_t as = call.who->role == auth::Role::kAdmin ? 0 : call.who->session_owner();
  absl::Status st = deps_.sessions->Close(req->id(), as);
  if (st.ok()) return grpc::Status::OK;
  auto code =
      absl::IsNotFound(st) ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::PERMISSION_DENIED;
  return grpc::Status(code, std::string(st.message()));
}

}  // namespace clrdiag::service
