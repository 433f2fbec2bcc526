// Shared pieces of the clrdiag CLI: the daemon connection, exit codes, output helpers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clrdiag/v1/clrdiag.grpc.pb.h"

namespace clrdiag::cli {

// Exit codes (documented in the README).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,        // the operation failed (runtime error, internal error)
  kExitUsage = 2,         // bad command line
  kExitUnreachable = 3,   // the daemon is not running or not reachable
  kExitNotFound = 4,      // no such process or dump
  kExitDenied = 5,        // permission denied
  kExitBusy = 6,          // busy target, a limit, or out of space
  kExitPrecondition = 7,  // not a .NET process, diagnostics disabled, ambiguous name
};

struct GlobalOptions {
  std::string server;  // --server, else $CLRDIAG_SERVER, else the default socket
  bool json = false;
  // Remote access (TCP): TLS when `ca` or `cert` is given; a bearer token from --token or
  // $CLRDIAG_TOKEN. PEM file paths.
  std::string ca, cert, key, token;
};

// Checks the TLS/token options (files readable, --cert with --key) and fills `tls` with their
// contents; prints an error and returns false otherwise.
struct TlsMaterial {
  bool enabled = false;
  std::string ca, cert, key;
};
bool LoadTlsMaterial(GlobalOptions& opts, TlsMaterial* tls);

class Client {
 public:
  explicit Client(const GlobalOptions& opts, const TlsMaterial& tls = {});
  const std::string& target() const { return target_; }
  clrdiag::v1::Diagnostics::Stub& stub() { return *stub_; }

  // Prints "clrdiag: <message>" (plus advice for unreachable daemons) to stderr and returns
  // the exit code for `status`.
  int Fail(const grpc::Status& status) const;

 private:
  std::string target_;
  bool tls_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<clrdiag::v1::Diagnostics::Stub> stub_;
};

// Resolves the daemon address: explicit, $CLRDIAG_SERVER, the caller's own daemon socket if
// it exists, else the system daemon's socket. Bare paths become "unix:PATH".
std::string ResolveServer(const std::string& flag);

// Output helpers.
bool StdoutIsTty();
bool StderrIsTty();
std::string HumanBytes(uint64_t bytes);         // "1.5 MiB"
std::string WithThousands(uint64_t n);          // "1,234,567"
std::string TypeName(clrdiag::v1::DumpType t);  // "Full", ...

// A one-line progress display on stderr: redrawn in place on a TTY, plain lines otherwise
// (at most one per `plain_interval_ms`). Clear() erases it.
class ProgressLine {
 public:
  ProgressLine();
  void Update(const std::string& text, bool force = false);
  void Clear();

 private:
  bool tty_;
  size_t last_len_ = 0;
  int64_t last_plain_ms_ = 0;
  std::string last_text_;
};

// Downloads dump `id` to `path` on this machine: writes `path`.partial (resuming from its size
// if present), verifies the sha256, renames to `path`. Returns an exit code; prints errors.
int DownloadToFile(Client& client, const std::string& id, const std::string& path,
                   ProgressLine* progress);

// The client-side copy of a dump streamed during `collect -o`: written to PATH.partial,
// hashed as it arrives, renamed to PATH once the sha256 matches. Removes the partial file
// unless committed. Errors are printed.
class OutputFile {
 public:
  static std::unique_ptr<OutputFile> Create(const std::string& path);
  ~OutputFile();
  // Appends bytes that must start at `offset` (== size()).
  bool Append(uint64_t offset, const std::string& data);
  uint64_t size() const { return size_; }
  bool failed() const { return failed_; }
  // Verifies size and digest, then renames into place. Returns an exit code.
  int Commit(uint64_t expected_size, const std::string& expected_sha256);
  // For the same-host path, where the daemon wrote the file through `fd()`: checks the size
  // (the daemon hashed exactly the bytes it wrote), then renames into place.
  int CommitWrittenByDaemon(uint64_t expected_size);
  int fd() const { return fd_; }

 private:
  OutputFile() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool failed_ = false;
  bool committed_ = false;
  struct Hash;
  std::unique_ptr<Hash> hash_;
};

// Hands `fd` to the daemon's side socket for same-host `collect -o` (see the daemon's
// output_fds.h); returns the token, or "" if that path is not available (then stream).
std::string SendOutputFd(const std::string& server_target, int fd);

// Checks that `path`'s directory exists and is writable; prints an error and returns false.
bool CheckOutputPath(const std::string& path);

int RunPs(Client& client, const GlobalOptions& opts);
struct CollectOptions {
  int pid = 0;
  std::string name;
  std::string type = "Full";
  std::string output;
  bool diag = false;
  bool crash_report = false;
  std::string runtime_cookie;  // hex prefix; picks one of several runtimes with the same pid
};
int RunCollect(Client& client, const GlobalOptions& opts, const CollectOptions& copts);
int RunDumps(Client& client, const GlobalOptions& opts);
int RunDownload(Client& client, const std::string& id, const std::string& output);
int RunRm(Client& client, const std::string& id);
// `sessions`: the open analysis sessions; with `close_id`, closes that one.
int RunSessions(Client& client, const GlobalOptions& opts, const std::string& close_id);
// automation.cc
struct EventsOptions {
  bool follow = false;
  std::vector<std::string> kinds;
  std::string rule;
  int pid = 0;
};
int RunEvents(Client& client, const GlobalOptions& opts, const EventsOptions& eo);
int RunRules(Client& client, const GlobalOptions& opts);
// Opens DUMP (catalog id or daemon-side path), runs `commands`, then reads more from stdin
// (a `> ` prompt on a terminal) until exit. Exit code 1 if any command failed.
// `json`: each command prints its JSON form (one document per line, see docs/json-output.md).
int RunAnalyze(Client& client, const std::string& dump, const std::vector<std::string>& commands,
               bool json);

}  // namespace clrdiag::cli
