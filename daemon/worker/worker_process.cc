#include "daemon/worker/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace clrdiag::worker {

std::string WorkerExecutablePath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "clrdiag-worker";
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/') + 1) + "clrdiag-worker";
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Start(
    const std::string& exe, const std::vector<std::string>& args, const Options& options) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return ErrnoStatus(errno, "pipe");
  }
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  // posix_spawn (a vfork-style clone in glibc) instead of fork + exec: the daemon's page tables
  // are not copied, which is measurable in every analysis session's start-up on this kind of
  // VM. The child gets the pipes as stdin/stdout (dup2 clears their O_CLOEXEC), everything else
  // the daemon has open is O_CLOEXEC; signal mask and SIGPIPE back to defaults.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  // The dump as fd 3 (for fd 3 itself, glibc's adddup2 clears O_CLOEXEC), then no other fd:
  // not even one a library opened without O_CLOEXEC. Limits and privileges are the worker's
  // own first steps (worker_main.cc), as posix_spawn cannot set them.
  if (options.fd3 >= 0) posix_spawn_file_actions_adddup2(&actions, options.fd3, 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, options.fd3 >= 0 ? 4 : 3);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return ErrnoStatus(err, absl::StrCat("start ", exe));
  }
  ::close(in[0]);
  ::close(out[1]);
  auto w = std::make_unique<WorkerProcess>();
  w->pid_ = pid;
  w->to_.Reset(in[1]);
  w->from_.Reset(out[0]);
  return w;
}

WorkerProcess::~WorkerProcess() {
  to_.Reset();
  from_.Reset();
  if (!reaped_) {
    Kill();
    bool clean;
    Wait(&clean);
  }
}

void WorkerProcess::Kill() {
  if (!reaped_ && pid_ > 0) ::kill(pid_, SIGKILL);
}

std::string WorkerProcess::Wait(bool* clean) {
  *clean = false;
  if (reaped_) return "exited";
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  if (WIFEXITED(st)) {
    *clean = WEXITSTATUS(st) == 0;
    return absl::StrCat("exited with status ", WEXITSTATUS(st));
  }
  if (WIFSIGNALED(st)) {
    const char* name = sigabbrev_np(WTERMSIG(st));
    return absl::StrCat("was killed by SIG", name ? name : std::to_string(WTERMSIG(st)));
  }
  return "ended";
}

}  // namespace clrdiag::worker
