#include "tests/harness/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace clrdiag::testing {
namespace {

using Clock = std::chrono::steady_clock;

void RemoveAll(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    // A test may have mounted a tmpfs here: unmount before deleting.
    if (DIR* d = ::opendir(path.c_str())) {
      std::vector<std::string> names;
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
      for (const auto& n : names) RemoveAll(path + "/" + n);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

std::vector<std::string> BuildEnv(const SpawnOptions& opts) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& k : opts.unset_env) env.erase(k);
  for (const auto& [k, v] : opts.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

std::string BinDir() { return CLRDIAG_BIN_DIR; }
std::string FixturesDir() { return CLRDIAG_FIXTURES_DIR; }
std::string SourceDir() { return CLRDIAG_SOURCE_DIR; }

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() { RemoveAll(path_); }

std::unique_ptr<Process> Process::Spawn(const std::vector<std::string>& argv,
                                        const SpawnOptions& opts) {
  auto p = std::unique_ptr<Process>(new Process());
  int out[2] = {-1, -1};
  if (opts.stdout_file.empty() && ::pipe2(out, O_CLOEXEC) != 0) return nullptr;
  std::vector<std::string> env = BuildEnv(opts);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    // Child: stdin from /dev/null (or stdin_file), stdout to the pipe or file, own process group.
    ::setpgid(0, 0);
    int in = ::open(opts.stdin_file.empty() ? "/dev/null" : opts.stdin_file.c_str(), O_RDONLY);
    ::dup2(in, 0);
    if (opts.stdout_file.empty()) {
      ::dup2(out[1], 1);
    } else {
      int fd = ::open(opts.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
    }
    if (!opts.stderr_file.empty()) {
      int fd = ::open(opts.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
    }
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  p->pid_ = pid;
  if (out[1] >= 0) ::close(out[1]);
  p->out_fd_ = out[0];
  return p;
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    // Politely first: a .NET runtime removes its diagnostic socket on SIGTERM.
    ::kill(pid_, SIGTERM);
    if (!Wait(std::chrono::seconds(3))) {
      ::kill(pid_, SIGKILL);
      Wait(std::chrono::seconds(30));
    }
  }
  if (pid_ > 0) RemoveDiagnosticSockets("/tmp", pid_);
  if (out_fd_ >= 0) ::close(out_fd_);
}

void RemoveDiagnosticSockets(const std::string& dir, pid_t pid) {
  // The runtime's diagnostic socket and its debugger transport pipes.
  std::vector<std::string> prefixes = {"dotnet-diagnostic-" + std::to_string(pid) + "-",
                                       "clr-debug-pipe-" + std::to_string(pid) + "-"};
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> doomed;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      for (const auto& prefix : prefixes) {
        if (n.rfind(prefix, 0) == 0) doomed.push_back(dir + "/" + n);
      }
    }
    ::closedir(d);
    for (const auto& p : doomed) ::unlink(p.c_str());
  }
}

std::optional<std::string> Process::WaitForLine(const std::string& prefix,
                                                std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t nl;
    while ((nl = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    if (out_fd_ < 0) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{out_fd_, POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffered_.append(buf, n);
  }
}

bool Process::Signal(int sig) { return !reaped_ && ::kill(pid_, sig) == 0; }

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = st;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::Running() { return !Wait(std::chrono::milliseconds(0)).has_value(); }

RunResult RunCommand(const std::vector<std::string>& argv, const SpawnOptions& opts,
                     std::chrono::milliseconds timeout) {
  TempDir tmp("clrdiag-run");
  SpawnOptions o = opts;
  o.stdout_file = tmp / "out";
  o.stderr_file = tmp / "err";
  auto p = Process::Spawn(argv, o);
  RunResult r;
  if (!p) return r;
  auto code = p->Wait(timeout);
  r.exit_code = code.value_or(-1);
  r.out = ReadFile(o.stdout_file);
  r.err = ReadFile(o.stderr_file);
  if (!code) r.err += "\n[harness: timed out]";
  return r;
}

Daemon::Daemon(Options opts) : dir_("clrdiagd-test"), opts_(std::move(opts)) {
  socket_ = dir_ / "d.sock";
  dump_dir_ = opts_.dump_dir.empty() ? dir_ / "store" : opts_.dump_dir;
}

Daemon::~Daemon() {
  if (proc_ && proc_->Running()) Stop(std::chrono::seconds(10));
}

bool Daemon::Start(std::chrono::milliseconds timeout) {
  // Readiness through sd_notify: a datagram socket the daemon writes READY=1 to.
  std::string notify = dir_ / "notify.sock";
  ::unlink(notify.c_str());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify.c_str(), sizeof(addr.sun_path) - 1);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
  SpawnOptions so;
  so.env["NOTIFY_SOCKET"] = notify;
  so.stdout_file = dir_ / "daemon.out";
  so.stderr_file = dir_ / "daemon.log";
  std::vector<std::string> argv = wrapper_;
  for (const std::string& a : {BinDir() + "/clrdiagd", std::string("--listen"), "unix:" + socket_,
                               std::string("--dump-dir"), dump_dir_}) {
    argv.push_back(a);
  }
  for (const auto& a : opts_.extra_args) argv.push_back(a);
  proc_ = Process::Spawn(argv, so);
  bool ready = false;
  auto deadline = Clock::now() + timeout;
  while (proc_ && !ready && Clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) == 1) {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof(buf) - 1, 0);
      if (n > 0 && std::string(buf, n).find("READY=1") != std::string::npos) ready = true;
    } else if (!proc_->Running()) {
      break;
    }
  }
  ::close(fd);
  return ready;
}

std::optional<int> Daemon::Stop(std::chrono::milliseconds timeout) {
  if (!proc_) return std::nullopt;
  proc_->Signal(SIGTERM);
  return proc_->Wait(timeout);
}

void Daemon::Kill() {
  if (proc_) {
    proc_->Signal(SIGKILL);
    proc_->Wait(std::chrono::seconds(10));
  }
}

std::string Daemon::log() const { return ReadFile(dir_ / "daemon.log"); }

RunResult Daemon::Client(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {BinDir() + "/clrdiag", "--server", server()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {}, timeout);
}

std::unique_ptr<Process> StartFixture(const std::string& name, const std::vector<std::string>& args,
                                      const SpawnOptions& opts, std::chrono::milliseconds timeout) {
  return StartFixture(name, args, kDefaultRuntime, opts, timeout);
}

const std::vector<std::string>& FixtureRuntimes() {
  static const std::vector<std::string> runtimes = {"net8.0", "net9.0", kDefaultRuntime};
  return runtimes;
}

std::string FixturePath(const std::string& name, const std::string& runtime) {
  if (runtime == kDefaultRuntime) return FixturesDir() + "/" + name + "/" + name;
  return FixturesDir() + "/" + runtime + "/" + name + "/" + name;
}

std::unique_ptr<Process> StartFixture(const std::string& name, const std::vector<std::string>& args,
                                      const std::string& runtime, const SpawnOptions& opts,
                                      std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {FixturePath(name, runtime)};
  if (::access(argv[0].c_str(), X_OK) != 0) {
    std::string error = FixturesDir() + "/" + runtime + "/" + name + ".error";
    std::fprintf(stderr, "fixture %s for %s is not built (%s)%s\n%s", name.c_str(), runtime.c_str(),
                 argv[0].c_str(), FileExists(error) ? ": the build script said" : "",
                 FileExists(error) ? ReadFile(error).c_str() : "");
    return nullptr;
  }
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::Spawn(argv, opts);
  if (!p || !p->WaitForLine("READY", timeout)) return nullptr;
  return p;
}

int ThreadCount(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

uint64_t FileSizeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<std::string> FindFiles(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (n.size() >= suffix.size() &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(p);
      }
      auto sub = FindFiles(p, suffix);
      out.insert(out.end(), sub.begin(), sub.end());
    } else if (n.size() >= suffix.size() &&
               n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(p);
    }
  }
  ::closedir(d);
  return out;
}

InteractiveClient::InteractiveClient(const std::vector<std::string>& argv, const std::string& dir,
                                     const std::string& name, SpawnOptions opts)
    : fifo_(dir + "/" + name + ".in"),
      out_(dir + "/" + name + ".out"),
      err_(dir + "/" + name + ".err") {
  ::mkfifo(fifo_.c_str(), 0600);
  fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);  // a writer, so the client never sees EOF
  opts.stdin_file = fifo_;
  opts.stdout_file = out_;
  opts.stderr_file = err_;
  proc_ = Process::Spawn(argv, opts);
}

InteractiveClient::~InteractiveClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool InteractiveClient::Send(const std::string& line) {
  std::string l = line + "\n";
  return ::write(fd_, l.data(), l.size()) == static_cast<ssize_t>(l.size());
}

std::string InteractiveClient::out() const { return ReadFile(out_); }
std::string InteractiveClient::err() const { return ReadFile(err_); }

bool InteractiveClient::WaitOut(const std::string& text, std::chrono::milliseconds timeout) const {
  for (auto end = std::chrono::steady_clock::now() + timeout;
       std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
    if (out().find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace clrdiag::testing
