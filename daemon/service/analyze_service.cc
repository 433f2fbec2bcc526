// The Analyze RPC: one worker process per session; the handler relays frames both ways.
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "daemon/service/diagnostics_service.h"
#include "daemon/worker/frame_io.h"
#include "daemon/worker/worker_process.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {

grpc::Status DiagnosticsService::Analyze(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::AnalyzeResponse, v1::AnalyzeRequest>* stream) {
  v1::AnalyzeRequest first;
  if (!stream->Read(&first) || !first.has_open()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an analysis session starts with an open request");
  }
  auto peer = deps_.peers->Lookup(ctx->peer());
  // Resolve the dump: a catalog id, or a core file on this host.
  const std::string& what = first.open().dump();
  std::string path;
  if (dump::IsValidDumpId(what)) {
    auto meta = deps_.store->Get(what);
    if (!meta.ok())
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(meta.status().message()));
    path = deps_.store->DumpPath(what);
  } else if (!what.empty() && what[0] == '/') {
    struct stat st;
    if (::stat(what.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no dump file at ", what, " on the daemon's host"));
    }
    // A path on the daemon's host is read with the daemon's rights: only its owner or root
    // may open it this way.
    if (peer && peer->uid != 0 && peer->uid != st.st_uid) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat(what, " belongs to another user"));
    }
    path = what;
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("'", what, "' is neither a dump id nor an absolute path"));
  }

  auto w = worker::WorkerProcess::Start(worker::WorkerExecutablePath(),
                                        {"--store", deps_.store->root()});
  if (!w.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(w.status().message()));
  auto& proc = **w;
  spdlog::info("analyze: session on {} (worker pid {}, uid {})", path, proc.pid(),
               peer ? static_cast<int64_t>(peer->uid) : -1);
  v1::AnalyzeRequest open = first;
  open.mutable_open()->set_dump(path);
  if (!worker::WriteFrame(proc.to_worker(), open).ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the analysis worker did not start");
  }
  // The first answer: opened, or a failure to open.
  v1::AnalyzeResponse resp;
  if (!worker::ReadFrame(proc.from_worker(), &resp).ok()) {
    bool clean;
    std::string how = proc.Wait(&clean);
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("the analysis worker ", how, " while opening ", path));
  }
  if (resp.has_done() && !resp.done().ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, resp.done().error());
  }
  stream->Write(resp);

  // Worker → client, on its own thread; it also notices a worker that dies mid-command.
  std::mutex mu;
  uint64_t running_id = 0;
  std::string running_cmd;
  std::thread relay([&] {
    v1::AnalyzeResponse r;
    for (;;) {
      absl::Status st = worker::ReadFrame(proc.from_worker(), &r);
      if (!st.ok()) break;
      stream->Write(r);
      if (r.has_done() && r.done().exit()) return;
    }
    bool clean;
    std::string how = proc.Wait(&clean);
    if (clean) return;
    v1::AnalyzeResponse crash;
    std::lock_guard<std::mutex> lock(mu);
    crash.mutable_done()->set_id(running_id);
    crash.mutable_done()->set_ok(false);
    crash.mutable_done()->set_exit(true);
    crash.mutable_done()->set_error(
        absl::StrCat("the analysis worker ", how,
                     running_cmd.empty() ? "" : " while running '" + running_cmd + "'",
                     "; this session is over (the daemon is fine): start a new one"));
    spdlog::warn("analyze: worker {} {}", proc.pid(), how);
    stream->Write(crash);
  });
  v1::AnalyzeRequest req;
  while (stream->Read(&req)) {
    if (req.has_cancel()) {
      if (!worker::WriteFrame(proc.to_worker(), req).ok()) break;
      continue;
    }
    if (!req.has_command()) continue;
    {
      std::lock_guard<std::mutex> lock(mu);
      running_id = req.command().id();
      running_cmd = req.command().command_line();
    }
    if (!worker::WriteFrame(proc.to_worker(), req).ok()) break;
  }
  if (ctx->IsCancelled()) proc.Kill();  // the client is gone: stop whatever runs
  proc.CloseInput();                    // the worker exits at end of input
  relay.join();
  bool clean;
  proc.Wait(&clean);
  spdlog::info("analyze: session on {} ended", path);
  return grpc::Status::OK;
}

}  // namespace clrdiag::service
