// clrdiag-worker: one analysis session, started by clrdiagd. Reads AnalyzeRequest frames on
// stdin, writes AnalyzeResponse frames on stdout, logs on stderr. It opens one dump and hosts
// the DAC; if the DAC faults, only this process dies.
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clrdiag/v1/clrdiag.pb.h"
#include "core/base/phase_log.h"
#include "core/base/utf8.h"
#include "core/sos/engine.h"
#include "core/sos/session_reset.h"
#include "daemon/worker/frame_io.h"

namespace {

using clrdiag::v1::AnalyzeRequest;
using clrdiag::v1::AnalyzeResponse;

using Clock = std::chrono::steady_clock;

// Output goes to the daemon in frames; small writes are batched (64 KiB, or 100 ms) so that a
// slow command still shows its output as it comes. One sink serves every command of the
// process (Begin): the frame and its text keep their memory from one frame to the next.
class FrameSink : public clrdiag::sos::OutputSink {
 public:
  void Begin(uint64_t id) {
    id_ = id;
    buffer_.clear();
    last_flush_ = Clock::now();
    last_progress_ = Clock::now() - std::chrono::milliseconds(150);
  }
  void Write(absl::string_view text) override {
    // A large piece with nothing pending (gcroot's held output comes in 1 MiB pieces) skips
    // the batch buffer: it is copied once, into the frame. Only a character cut at its end
    // waits (and then the next pieces go through the buffer: rare, only for non-ASCII text).
    if (buffer_.empty() && text.size() >= kBatch) {
      const size_t n = clrdiag::Utf8CompletePrefix(text);
      Send(text.substr(0, n));
      buffer_.assign(text.data() + n, text.size() - n);
      return;
    }
    buffer_.append(text.data(), text.size());
    if (buffer_.size() >= kBatch || Clock::now() - last_flush_ > std::chrono::milliseconds(100)) {
      Flush();
    }
  }
  // At most four progress frames a second.
  void Progress(const clrdiag::sos::ProgressInfo& p) override {
    auto now = Clock::now();
    if (now - last_progress_ < std::chrono::milliseconds(250)) return;
    last_progress_ = now;
    AnalyzeResponse r;
    auto* m = r.mutable_progress();
    m->set_id(id_);
    m->set_stage(p.stage);
    m->set_done(p.done);
    m->set_total(p.total);
    m->set_unit(p.unit);
    m->set_items(p.items);
    (void)clrdiag::worker::WriteFrame(STDOUT_FILENO, r);
  }
  // A frame's text must be valid UTF-8 (a protobuf string: the daemon cannot parse a frame that
  // is not, and the command would never end). A character cut by the batching waits for the
  // next frame (at most 3 bytes stay behind); `last` sends all.
  void Flush(bool last = false) {
    const size_t n = last ? buffer_.size() : clrdiag::Utf8CompletePrefix(buffer_);
    if (n == 0) return;
    Send(absl::string_view(buffer_).substr(0, n));
    buffer_.erase(0, n);
  }

 private:
  static constexpr size_t kBatch = 64 * 1024;
  // One output frame; bytes from the dump that are not UTF-8 become U+FFFD (valid text is
  // checked, not copied again).
  void Send(absl::string_view text) {
    frame_.mutable_output()->set_id(id_);
    std::string* t = frame_.mutable_output()->mutable_text();
    t->assign(text.data(), text.size());
    clrdiag::Utf8Sanitize(t);
    last_flush_ = Clock::now();
    (void)clrdiag::worker::WriteFrame(STDOUT_FILENO, frame_);
  }

  uint64_t id_ = 0;
  std::string buffer_;
  AnalyzeResponse frame_;
  Clock::time_point last_flush_ = Clock::now();
  // The first progress frame comes after 100 ms (quick commands send none), then at most four
  // a second.
  Clock::time_point last_progress_ = Clock::now() - std::chrono::milliseconds(150);
};

// Requests from the daemon, read on their own thread so that a cancel reaches the running
// command while it runs.
class RequestQueue {
 public:
  void Start() {
    reader_ = std::thread([this] { ReadLoop(); });
    reader_.detach();  // blocked in read() until the daemon closes the pipe; exit ends it
  }
  // The next command; false at end of input (or a broken pipe).
  bool Next(AnalyzeRequest* req, std::shared_ptr<clrdiag::CancellationToken>* token) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return false;
    *req = std::move(queue_.front());
    queue_.pop_front();
    if (req->has_open()) {
      cancelled_.clear();  // a new session: its command ids start again
      running_id_ = 0;
      running_.reset();
      return true;
    }
    running_id_ = req->command().id();
    running_ = std::make_shared<clrdiag::CancellationToken>();
    if (cancelled_.erase(running_id_)) running_->Cancel();
    *token = running_;
    return true;
  }
  bool closed_status_ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return clean_end_;
  }

 private:
  void ReadLoop() {
    for (;;) {
      AnalyzeRequest req;
      absl::Status st = clrdiag::worker::ReadFrame(STDIN_FILENO, &req);
      std::lock_guard<std::mutex> lock(mu_);
      if (!st.ok()) {
        closed_ = true;
        clean_end_ = st.code() == absl::StatusCode::kNotFound;
        cv_.notify_all();
        return;
      }
      if (req.has_cancel()) {
        if (running_ && running_id_ == req.cancel().id()) {
          running_->Cancel();
        } else {
          cancelled_.insert(req.cancel().id());  // still queued: skipped when its turn comes
        }
      } else if (req.has_command() || req.has_open()) {
        // An open request: the next session on this dump (a kept worker, --reusable).
        queue_.push_back(std::move(req));
        cv_.notify_all();
      }
    }
  }

  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AnalyzeRequest> queue_;
  std::set<uint64_t> cancelled_;
  uint64_t running_id_ = 0;
  std::shared_ptr<clrdiag::CancellationToken> running_;
  bool closed_ = false;
  bool clean_end_ = false;
};

void SendDone(uint64_t id, bool ok, const std::string& error, uint64_t ms, bool exit) {
  AnalyzeResponse r;
  auto* d = r.mutable_done();
  d->set_id(id);
  d->set_ok(ok);
  std::string text = error;  // may quote the dump's bytes: kept valid UTF-8 as the output is
  clrdiag::Utf8Sanitize(&text);
  d->set_error(std::move(text));
  d->set_elapsed_ms(ms);
  d->set_exit(exit);
  (void)clrdiag::worker::WriteFrame(STDOUT_FILENO, r);
}

// Keeps only CAP_DAC_READ_SEARCH (reading module files and runtimes of other users and
// containers) of whatever capabilities the worker started with (all of them, as root): a DAC
// or a crafted dump that takes over the worker cannot signal, trace, mount or chown.
void DropCapabilities() {
  constexpr int kCapDacReadSearch = 2;
  for (int cap = 0; cap <= 63; ++cap) {
    if (cap != kCapDacReadSearch) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  struct {
    uint32_t version;
    int pid;
  } header = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return;
  const uint32_t keep = data[0].permitted & (1u << kCapDacReadSearch);
  data[0] = {keep, keep, 0};
  data[1] = {0, 0, 0};
  (void)::syscall(SYS_capset, &header, data);
}

// AddressSanitizer maps its shadow memory (terabytes of private writable address space, not
// backed) at start, and RLIMIT_DATA counts it: with any data limit every later allocation of an
// ASan build fails. The sanitizer build (CLRDIAG_SANITIZE) therefore runs its workers without it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kDataLimitWorks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kDataLimitWorks = false;
#else
constexpr bool kDataLimitWorks = true;
#endif
#else
constexpr bool kDataLimitWorks = true;
#endif

// --build-graph: builds the dump's heap graph into --graph-file at the lowest CPU priority (the
// daemon starts this when a dump enters the catalog). Without --reusable the worker then exits:
// 0 when the file is there. With --reusable it stays, its dump open, its DAC loaded and the
// graph in memory, as the dump's warm worker: it says so with an `opened` frame, and the first
// session that takes it over starts with an open request, as in a kept worker.
//
// The build runs on a thread of its own at nice 19 (the heap walk's helper threads inherit it
// and end with the build); the main thread keeps the priority the worker was started with. So
// a kept worker serves its sessions at normal priority without anyone lowering its nice value
// again, which an unprivileged process cannot do (this one has dropped CAP_SYS_NICE).
absl::StatusOr<std::unique_ptr<clrdiag::sos::Engine>> BuildGraph(
    const clrdiag::sos::EngineOptions& opts) {
  absl::StatusOr<std::unique_ptr<clrdiag::sos::Engine>> result =
      absl::InternalError("the graph build did not run");
  std::thread build([&] {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
    class NullSink : public clrdiag::sos::OutputSink {
     public:
      void Write(absl::string_view) override {}
    } sink;
    auto engine = clrdiag::sos::Engine::Open(opts);
    absl::Status st = engine.ok() ? (*engine)->PrepareHeapGraph(sink, clrdiag::CancellationToken())
                                  : engine.status();
    if (st.ok()) {
      result = std::move(engine);
    } else {
      result = st;
    }
  });
  build.join();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  clrdiag::PhaseMark("worker", "main");
  ::signal(SIGPIPE, SIG_IGN);
  // Output buffers of a few MiB are freed and allocated again by every large command: keep
  // them in the heap (not a fresh mapping each time, whose every page faults again). The big
  // arrays (heap graph, windows) are mapped explicitly and are not affected.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  std::string store_root, dump_name, graph_file;
  bool host_access = false;
  bool build_graph = false;
  bool reusable = false;
  int dump_fd = -1;
  uint64_t data_limit_mib = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--host-access") == 0) {  // the only flag without a value
      host_access = true;
      continue;
    }
    if (std::strcmp(argv[i], "--build-graph") == 0) {
      build_graph = true;
      continue;
    }
    // The daemon may keep this worker for the next session on the same dump: `exit` ends the
    // session, not the process, and a new open request starts the next one.
    if (std::strcmp(argv[i], "--reusable") == 0) {
      reusable = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (std::strcmp(argv[i], "--store") == 0) {
      store_root = argv[++i];
    } else if (std::strcmp(argv[i], "--dump-fd") == 0) {
      dump_fd = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
    } else if (std::strcmp(argv[i], "--dump-name") == 0) {
      dump_name = argv[++i];
    } else if (std::strcmp(argv[i], "--data-limit-mib") == 0) {
      data_limit_mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--graph-file") == 0) {
      graph_file = argv[++i];
    }
  }
  // First steps, before any byte of the dump is read: limits, then privileges.
  struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  if (data_limit_mib > 0 && kDataLimitWorks) {
    struct rlimit data = {data_limit_mib << 20, data_limit_mib << 20};
    ::setrlimit(RLIMIT_DATA, &data);
  }
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  DropCapabilities();
  AnalyzeRequest req;
  clrdiag::sos::EngineOptions opts;
  std::unique_ptr<clrdiag::sos::Engine> engine;
  auto send_opened = [&] {
    AnalyzeResponse r;
    r.mutable_opened()->set_dump_path(opts.display_path);
    r.mutable_opened()->set_runtime_version(engine->runtime_version());
    r.mutable_opened()->set_dac_dir(engine->dac_dir());
    return clrdiag::worker::WriteFrame(STDOUT_FILENO, r).ok();
  };
  if (build_graph) {
    if (dump_fd < 0 || graph_file.empty()) {
      std::fprintf(stderr, "clrdiag-worker: --build-graph needs --dump-fd and --graph-file\n");
      return 2;
    }
    // As a session's worker on this catalog dump opens it (no DAC directories of a caller's,
    // no host access: a session that takes this worker over sets its own).
    opts.dump_path = absl::StrCat("/proc/self/fd/", dump_fd);
    opts.display_path = dump_name;
    opts.store_root = store_root;
    opts.graph_path = graph_file;
    auto built = BuildGraph(opts);
    if (!built.ok()) {
      std::fprintf(stderr, "clrdiag-worker: heap graph of %s: %s\n", dump_name.c_str(),
                   std::string(built.status().message()).c_str());
      return 1;
    }
    if (!reusable) ::_exit(0);  // as a session's end: the kernel frees the DAC and the dump
    engine = std::move(*built);
    ::malloc_trim(0);  // the walk's scratch memory: an idle worker should not sit on it
    // The graph is built: the daemon may now keep this worker for the dump's first session.
    if (!send_opened()) return 1;
  } else {
    if (!clrdiag::worker::ReadFrame(STDIN_FILENO, &req).ok() || !req.has_open()) {
      std::fprintf(stderr, "clrdiag-worker: expected an open request on stdin\n");
      return 2;
    }
    // The daemon opened the dump for us (fd 3); its path is for messages only.
    opts.dump_path = dump_fd >= 0 ? absl::StrCat("/proc/self/fd/", dump_fd) : req.open().dump();
    opts.display_path = dump_name.empty() ? req.open().dump() : dump_name;
    opts.dac_dirs.assign(req.open().dac_dirs().begin(), req.open().dac_dirs().end());
    opts.store_root = store_root;
    // The daemon passes the session's rights both ways (it sets the open request's field for
    // every session; --host-access is also part of the key it keeps workers under).
    opts.host_access = host_access || req.open().host_access();
    opts.graph_path = graph_file;
    clrdiag::PhaseMark("worker", "open-request");
    auto opened = clrdiag::sos::Engine::Open(opts);
    clrdiag::PhaseMark("worker", "engine-opened");
    if (!opened.ok()) {
      SendDone(0, false, std::string(opened.status().message()), 0, true);
      return 1;
    }
    engine = std::move(*opened);
    if (!send_opened()) return 1;
  }
  RequestQueue requests;
  requests.Start();
  std::shared_ptr<clrdiag::CancellationToken> cancel;
  FrameSink sink;
  for (;;) {
    if (!requests.Next(&req, &cancel)) return requests.closed_status_ok() ? 0 : 1;
    if (req.has_open()) {
      // The next session (a kept worker): what the last one set up is forgotten; the dump,
      // the DAC and the heap graph stay.
      clrdiag::sos::ResetSession(*engine);
      clrdiag::sos::SetHostAccess(*engine, host_access || req.open().host_access());
      if (!send_opened()) return 1;
      continue;
    }
    uint64_t id = req.command().id();
    clrdiag::PhaseMark("worker", "command");
    sink.Begin(id);
    auto t0 = std::chrono::steady_clock::now();
    clrdiag::sos::CommandResult res;
    if (cancel->cancelled()) {
      res = {false, "cancelled", false};
    } else {
      res = engine->Run(req.command().command_line(),
                        clrdiag::sos::RunOptions{req.command().json()}, sink, *cancel);
    }
    // Whatever a command reports when it was cancelled, the client hears "cancelled".
    if (cancel->cancelled() && !res.exit) res = {false, "cancelled", false};
    clrdiag::PhaseMark("worker", "command-ran");
    sink.Flush(/*last=*/true);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    SendDone(id, res.ok, res.error, static_cast<uint64_t>(ms), res.exit);
    clrdiag::PhaseMark("worker", "done-sent");
    // The session is over: the daemon waits for this process before it ends the RPC, so leave
    // without tearing down the DAC and the dump (the kernel frees it all at once).
    if (res.exit && !reusable) ::_exit(0);
  }
}
