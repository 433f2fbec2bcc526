#include "daemon/automation/crash_watch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/unique_fd.h"
#include "core/ipc/client.h"
#include "core/procfs/discovery.h"
#include "core/procfs/procfs.h"

namespace clrdiag::daemon_automation {

struct CrashWatcher::Spec {
  pid_t pid = 0;
  uint64_t thread_id = 0;
  std::string type;
  std::string message;
  absl::Time thrown;
  automation::Rule rule;
  automation::ProcessInfo process;
  // Settled by the reader's events (under mu_).
  bool handled = false;
  std::string handled_by;
  bool base_frame = false;  // .NET 10: the thread's base frame filtered it (no handler left)
  bool exited = false;
  bool finished = false;
};

namespace {

// True while `pid` runs (a zombie or a vanished entry is dead).
bool Alive(const std::string& proc_root, pid_t pid) {
  std::ifstream in(absl::StrCat(proc_root, "/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  const char state = text[close + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

}  // namespace

CrashWatcher::CrashWatcher(CrashWatchDeps deps) : deps_(std::move(deps)) {}

CrashWatcher::~CrashWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  std::vector<std::pair<std::shared_ptr<Spec>, std::thread>> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.second.join();
}

CrashWatcher::Stats CrashWatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CrashWatcher::OnThrown(pid_t pid, const std::string& target,
                            const eventpipe::ExceptionThrown& x) {
  automation::ProcessInfo process;
  std::optional<automation::Rule> rule = deps_.engine->SpeculationFor(target, x.type, &process);
  if (!rule) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  if (inflight_.count(pid)) {
    ++stats_.skipped;
    return;
  }
  const automation::Trigger& t = rule->trigger;
  auto& hist = history_[pid];
  const absl::Time now = absl::Now();
  while (!hist.empty() && hist.front() <= now - t.speculative_window) hist.pop_front();
  if (static_cast<int>(hist.size()) >= t.speculative_max) {
    ++stats_.skipped;
    return;
  }
  hist.push_back(now);
  auto spec = std::make_shared<Spec>();
  spec->pid = pid;
  spec->thread_id = x.thread_id;
  spec->type = x.type;
  spec->message = x.message;
  spec->thrown = x.timestamp;
  spec->rule = *std::move(rule);
  spec->process = process;
  inflight_[pid] = spec;
  ++stats_.speculative;
  // Finished workers only return after marking themselves finished: joining them is quick.
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->first->finished) {
      it->second.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  workers_.emplace_back(spec, std::thread([this, spec] { Work(spec); }));
}

void CrashWatcher::OnFlow(pid_t pid, const eventpipe::ExceptionFlow& f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = inflight_.find(pid);
    if (it == inflight_.end() || it->second->thread_id != f.thread_id) return;
    Spec& s = *it->second;
    if (f.kind == eventpipe::ExceptionFlow::Kind::kFilter) {
      // A filter on the thread's base frame: the exception left every handler behind.
      if (absl::StrContains(f.method, "System.Threading.Thread::StartCallback")) {
        s.base_frame = true;
      } else {
        return;
      }
    } else if (!s.base_frame && !s.handled) {
      s.handled = true;
      s.handled_by = f.kind == eventpipe::ExceptionFlow::Kind::kCatch
                         ? absl::StrCat("caught in ", f.method)
                         : std::string("its dispatch ended (ExceptionThrownStop)");
    }
  }
  cv_.notify_all();
}

void CrashWatcher::OnExit(pid_t pid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = inflight_.find(pid); it != inflight_.end()) it->second->exited = true;
  }
  cv_.notify_all();
}

void CrashWatcher::Work(std::shared_ptr<Spec> spec) {
  auto log = [this](bool warning, const std::string& line) {
    if (deps_.log) deps_.log(warning, line);
  };
  const pid_t pid = spec->pid;
  const std::string what = absl::StrCat("pid ", pid, " (", spec->process.name, "): ", spec->type,
                                        " thrown on thread ", spec->thread_id);
  auto finish = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    spec->finished = true;
    inflight_.erase(pid);
  };
  log(false, absl::StrCat("crash capture: ", what, ": asking for a speculative ",
                          spec->rule.action.collect.type, " dump"));
  procfs::ProcFs fs(deps_.proc_root);
  auto socket = procfs::FindDiagnosticSocket(fs, pid);
  if (!socket.ok()) {
    log(true, absl::StrCat("crash capture: ", what,
                           ": no speculative dump: ", socket.status().message()));
    finish();
    return;
  }
  // The dump is written in the target's temp directory (as the target sees it), in a private
  // directory reached through an fd that stays valid after the process is gone.
  const std::string host_tmp = fs.RootPath(pid) + socket->tmpdir;
  UniqueFd tmp_fd(::open(host_tmp.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    name = absl::StrCat("clrdiag-crash-", pid, "-", ++seq_);
  }
  struct stat owner;
  if (!tmp_fd || ::mkdirat(tmp_fd.get(), name.c_str(), 0700) != 0 ||
      ::stat(absl::StrCat(deps_.proc_root, "/", pid).c_str(), &owner) != 0 ||
      ::fchownat(tmp_fd.get(), name.c_str(), owner.st_uid, owner.st_gid, AT_SYMLINK_NOFOLLOW) !=
          0) {
    log(true, absl::StrCat("crash capture: ", what, ": cannot prepare a directory in ", host_tmp,
                           ": ", std::strerror(errno)));
    if (tmp_fd) ::unlinkat(tmp_fd.get(), name.c_str(), AT_REMOVEDIR);
    finish();
    return;
  }
  UniqueFd dir_fd(::openat(tmp_fd.get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto kind = dump::ParseDumpKind(spec->rule.action.collect.type);
  ipc::DumpRequest req;
  req.path = socket->tmpdir + name + "/dump";
  switch (kind.ok() ? *kind : dump::DumpKind::kMini) {
    case dump::DumpKind::kFull:
      req.type = ipc::DumpType::kFull;
      break;
    case dump::DumpKind::kHeap:
      req.type = ipc::DumpType::kWithHeap;
      break;
    case dump::DumpKind::kTriage:
      req.type = ipc::DumpType::kTriage;
      break;
    case dump::DumpKind::kMini:
      req.type = ipc::DumpType::kNormal;
      break;
  }
  const absl::Time asked = absl::Now();
  absl::Status written = ipc::GenerateCoreDump(socket->path, req);
  const absl::Time done = absl::Now();
  // Settle: handled, base frame, or the process's death, within the confirm window.
  bool crash = false;
  std::string why;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const absl::Time deadline = done + spec->rule.trigger.confirm_window;
    while (!stopping_ && !spec->handled && !spec->base_frame && !spec->exited) {
      lock.unlock();
      const bool alive = Alive(deps_.proc_root, pid);
      lock.lock();
      if (!alive) {
        spec->exited = true;
        break;
      }
      if (absl::Now() >= deadline) break;
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (spec->handled) {
      why = spec->handled_by;
    } else if (spec->base_frame || spec->exited) {
      crash = true;
      why = spec->base_frame ? "no handler left (the thread's base frame filtered it)"
                             : "the process died without catching it";
    } else {
      why = stopping_ ? "the daemon is stopping"
                      : absl::StrCat("the process still ran ",
                                     absl::FormatDuration(spec->rule.trigger.confirm_window),
                                     " after the dump");
    }
  }
  const std::string file = absl::StrCat("/proc/self/fd/", dir_fd.get(), "/dump");
  auto remove_all = [&] {
    if (dir_fd) ::unlinkat(dir_fd.get(), "dump", 0);
    ::unlinkat(tmp_fd.get(), name.c_str(), AT_REMOVEDIR);
  };
  struct stat st;
  const bool have_file = dir_fd && ::fstatat(dir_fd.get(), "dump", &st, 0) == 0 && st.st_size > 0;
  if (!crash || !have_file) {
    if (crash) {
      log(true, absl::StrCat("crash capture: ", what, ": the process crashed (", why,
                             ") but the runtime wrote no dump",
                             written.ok() ? "" : absl::StrCat(": ", written.message())));
    } else {
      log(false, absl::StrCat("crash capture: ", what, ": not a crash (", why,
                              "); the speculative dump (written in ",
                              absl::ToInt64Milliseconds(done - asked), " ms) is deleted"));
    }
    remove_all();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.discarded;
    }
    finish();
    return;
  }
  // A crash: into the catalog, then the rules.
  auto meta = deps_.ingester->IngestFile(file, kind.ok() ? *kind : dump::DumpKind::kMini);
  remove_all();
  if (!meta.ok()) {
    log(true, absl::StrCat("crash capture: ", what,
                           ": cannot catalogue the dump: ", meta.status().message()));
    finish();
    return;
  }
  // What the daemon knew of the process (the core file only has its own pid and name).
  meta->pid = pid;
  if (!spec->process.name.empty()) meta->process_name = spec->process.name;
  if (!spec->process.command_line.empty()) meta->command_line = spec->process.command_line;
  meta->pod = spec->process.pod;
  meta->pod_namespace = spec->process.k8s_namespace;
  meta->container_id = spec->process.container_id;
  meta->source_path = absl::StrCat("requested over IPC when ", spec->type, " was thrown");
  meta->started = asked;
  (void)deps_.store->UpdateMeta(*meta);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.kept;
  }
  log(false, absl::StrCat("crash capture: ", what, ": a crash (", why, "); dump ", meta->id, " (",
                          meta->size_bytes, " bytes, written in ",
                          absl::ToInt64Milliseconds(done - asked), " ms) is in the catalog"));
  std::vector<std::string> fired = deps_.engine->OnCrashDump(
      spec->process, meta->id, spec->type, /*eventpipe=*/true,
      absl::StrCat("crash: unhandled ", spec->type, ": ", spec->message, " (", why, ")"));
  if (deps_.on_crash_dump) deps_.on_crash_dump(meta->id, fired);
  finish();
}

}  // namespace clrdiag::daemon_automation
