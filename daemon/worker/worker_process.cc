#include "daemon/worker/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    if (options.fd3 >= 0) {
      if (options.fd3 != 3)
        ::dup2(options.fd3, 3);  // dup2 clears O_CLOEXEC on the copy
      else
        ::fcntl(3, F_SETFD, 0);
    }
    // No other fd: not even one a library opened without O_CLOEXEC.
    ::close_range(options.fd3 >= 0 ? 4 : 3, ~0U, 0);
    struct rlimit no_core = {0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    if (options.data_limit > 0) {
      struct rlimit data = {options.data_limit, options.data_limit};
      ::setrlimit(RLIMIT_DATA, &data);
    }
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // Signals back to defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(exe.c_str(), argv.data());
    std::fprintf(stderr, "clrdiag-worker: exec %s failed: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  auto w = std::unique_ptr<WorkerProcess>(new WorkerProcess());
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
