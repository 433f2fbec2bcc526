// clrdiag-worker: one analysis session, started by clrdiagd. Reads AnalyzeRequest frames on
// stdin, writes AnalyzeResponse frames on stdout, logs on stderr. It opens one dump and hosts
// the DAC; if the DAC faults, only this process dies.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "clrdiag/v1/clrdiag.pb.h"
#include "core/sos/engine.h"
#include "daemon/worker/frame_io.h"

namespace {

using clrdiag::v1::AnalyzeRequest;
using clrdiag::v1::AnalyzeResponse;

// Output goes to the daemon in frames; small writes are batched per command piece.
class FrameSink : public clrdiag::sos::OutputSink {
 public:
  explicit FrameSink(uint64_t id) : id_(id) {}
  void Write(absl::string_view text) override {
    buffer_.append(text.data(), text.size());
    if (buffer_.size() >= 64 * 1024) Flush();
  }
  void Flush() {
    if (buffer_.empty()) return;
    AnalyzeResponse r;
    r.mutable_output()->set_id(id_);
    r.mutable_output()->set_text(std::move(buffer_));
    buffer_.clear();
    (void)clrdiag::worker::WriteFrame(STDOUT_FILENO, r);
  }

 private:
  uint64_t id_;
  std::string buffer_;
};

void SendDone(uint64_t id, bool ok, const std::string& error, uint64_t ms, bool exit) {
  AnalyzeResponse r;
  auto* d = r.mutable_done();
  d->set_id(id);
  d->set_ok(ok);
  d->set_error(error);
  d->set_elapsed_ms(ms);
  d->set_exit(exit);
  (void)clrdiag::worker::WriteFrame(STDOUT_FILENO, r);
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  std::string store_root;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--store") == 0) store_root = argv[++i];
  }
  AnalyzeRequest req;
  if (!clrdiag::worker::ReadFrame(STDIN_FILENO, &req).ok() || !req.has_open()) {
    std::fprintf(stderr, "clrdiag-worker: expected an open request on stdin\n");
    return 2;
  }
  clrdiag::sos::EngineOptions opts;
  opts.dump_path = req.open().dump();
  opts.dac_dirs.assign(req.open().dac_dirs().begin(), req.open().dac_dirs().end());
  opts.store_root = store_root;
  auto engine = clrdiag::sos::Engine::Open(opts);
  if (!engine.ok()) {
    SendDone(0, false, std::string(engine.status().message()), 0, true);
    return 1;
  }
  {
    AnalyzeResponse r;
    r.mutable_opened()->set_dump_path(opts.dump_path);
    r.mutable_opened()->set_runtime_version((*engine)->runtime_version());
    r.mutable_opened()->set_dac_dir((*engine)->dac_dir());
    if (!clrdiag::worker::WriteFrame(STDOUT_FILENO, r).ok()) return 1;
  }
  clrdiag::CancellationToken cancel;
  for (;;) {
    absl::Status st = clrdiag::worker::ReadFrame(STDIN_FILENO, &req);
    if (!st.ok()) return st.code() == absl::StatusCode::kNotFound ? 0 : 1;
    if (!req.has_command()) continue;
    uint64_t id = req.command().id();
    FrameSink sink(id);
    auto t0 = std::chrono::steady_clock::now();
    clrdiag::sos::CommandResult res = (*engine)->Run(req.command().command_line(), sink, cancel);
    sink.Flush();
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    SendDone(id, res.ok, res.error, static_cast<uint64_t>(ms), res.exit);
    // The session is over: the daemon waits for this process before it ends the RPC, so leave
    // without tearing down the DAC and the dump (the kernel frees it all at once).
    if (res.exit) ::_exit(0);
  }
}
