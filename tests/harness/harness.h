// Test harness for integration tests: real processes, real sockets, temp dirs that clean up.
// Tests end only the processes they started, by pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clrdiag::testing {

// Build-tree locations, from compile definitions.
std::string BinDir();       // build/bin
std::string FixturesDir();  // build/fixtures (built by the build_fixtures ctest fixture)
std::string SourceDir();

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "clrdiag-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct SpawnOptions {
  std::map<std::string, std::string> env;  // added to (or overriding) the test's environment
  std::vector<std::string> unset_env;
  std::string stdout_file;  // empty: a pipe read by the harness
  std::string stderr_file;  // empty: inherit
  std::string stdin_file;   // empty: /dev/null (a FIFO the test writes to works)
  std::string cwd;
};

// A child process. The destructor kills (SIGKILL) and reaps it if still running.
class Process {
 public:
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const SpawnOptions& opts = {});
  ~Process();
  pid_t pid() const { return pid_; }
  // Reads stdout until a line starting with `prefix`; returns it, or nullopt on EOF/timeout.
  std::optional<std::string> WaitForLine(const std::string& prefix,
                                         std::chrono::milliseconds timeout);
  // Sends `sig`; returns false if already gone.
  bool Signal(int sig);
  // Waits for exit; returns the exit status (128+signal for signals), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
  bool reaped_ = false;
  int status_ = 0;
};

// A long-running client (e.g. an interactive `clrdiag analyze`) whose stdin is a FIFO the test
// writes lines into; its stdout and stderr go to files in `dir` named after `name`.
class InteractiveClient {
 public:
  InteractiveClient(const std::vector<std::string>& argv, const std::string& dir,
                    const std::string& name, SpawnOptions opts = {});
  ~InteractiveClient();
  InteractiveClient(const InteractiveClient&) = delete;
  InteractiveClient& operator=(const InteractiveClient&) = delete;
  // Writes `line` and a newline; false if the write failed.
  bool Send(const std::string& line);
  std::string out() const;
  std::string err() const;
  // Polls stdout for `text` until `timeout`.
  bool WaitOut(const std::string& text, std::chrono::milliseconds timeout) const;
  Process& proc() { return *proc_; }

 private:
  std::string fifo_, out_, err_;
  int fd_ = -1;
  std::unique_ptr<Process> proc_;
};

// Result of running a command to completion.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunCommand(const std::vector<std::string>& argv, const SpawnOptions& opts = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(120));

// clrdiagd on a private socket and store, ready (sd_notify READY=1) when Start() returns.
class Daemon {
 public:
  struct Options {
    std::string dump_dir;  // default: <tmp>/store
    std::vector<std::string> extra_args;
  };
  explicit Daemon(Options opts = {});
  ~Daemon();
  // Starts and waits for readiness; returns false (with the log in `log()`) on failure.
  bool Start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGTERM and wait; returns the exit status.
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void Kill();
  // Before Start(): runs the daemon under this command (e.g. `unshare --pid --fork
  // --mount-proc --kill-child`, a daemon in its own pid namespace). Such a wrapper may ignore
  // SIGTERM: end it with Kill().
  void set_wrapper(std::vector<std::string> wrapper) { wrapper_ = std::move(wrapper); }
  const std::string& socket_path() const { return socket_; }
  std::string server() const { return "unix:" + socket_; }
  const std::string& dump_dir() const { return dump_dir_; }
  std::string log() const;
  Process* process() { return proc_.get(); }

  // Runs build/bin/clrdiag --server <this daemon> args...
  RunResult Client(const std::vector<std::string>& args,
                   std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

 private:
  TempDir dir_;
  Options opts_;
  std::string socket_;
  std::string dump_dir_;
  std::vector<std::string> wrapper_;
  std::unique_ptr<Process> proc_;
};

// Starts a fixture app (build/fixtures/<name>/<name>) and waits for its READY line.
std::unique_ptr<Process> StartFixture(const std::string& name,
                                      const std::vector<std::string>& args = {},
                                      const SpawnOptions& opts = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The runtimes a fixture can run on (target frameworks): kDefaultRuntime is the
// framework-dependent build in build/fixtures/<name>/ that runs on the SDK's shared runtime;
// the others are self-contained publishes in build/fixtures/<tfm>/<name>/ (HeapApp only; see
// scripts/build-fixtures.sh), each carrying its own libcoreclr.so and libmscordaccore.so.
inline constexpr const char* kDefaultRuntime = "net10.0";
const std::vector<std::string>& FixtureRuntimes();  // {"net8.0", "net9.0", "net10.0"}

// The fixture's executable for `runtime` (a TFM from FixtureRuntimes()).
std::string FixturePath(const std::string& name, const std::string& runtime = kDefaultRuntime);

// Starts the fixture built for `runtime` and waits for its READY line. If that build is
// missing, prints why (the build script's saved error log, if any) to stderr and returns null.
std::unique_ptr<Process> StartFixture(const std::string& name, const std::vector<std::string>& args,
                                      const std::string& runtime, const SpawnOptions& opts = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Removes <dir>/dotnet-diagnostic-<pid>-* and clr-debug-pipe-<pid>-* (left behind by runtimes
// that were killed).
void RemoveDiagnosticSockets(const std::string& dir, pid_t pid);

// Number of threads of a live process (/proc/<pid>/task).
int ThreadCount(pid_t pid);
std::string ReadFile(const std::string& path);
bool FileExists(const std::string& path);
uint64_t FileSizeOf(const std::string& path);
// Recursively lists files under `dir` whose name ends with `suffix`.
std::vector<std::string> FindFiles(const std::string& dir, const std::string& suffix);

}  // namespace clrdiag::testing
