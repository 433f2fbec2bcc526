// Listen mode ("reverse" diagnostic connections): the daemon listens on unix sockets named in
// the runtimes' DOTNET_DiagnosticPorts, and runtimes connect to it. Every connection starts
// with a 34-byte advertise (cookie + pid) and then carries exactly one command; after each
// command the runtime connects again. So the server keeps, per runtime, the idle connections
// it opened, and hands one out per command.
//
// A runtime told to connect waits at start-up (the default `suspend` tag) until a ResumeRuntime
// arrives on one of that port's connections; the server sends it on the first connection after
// a runtime's first advertise unless the port's options say not to.
#pragma once

#include <sys/types.h>

#include <array>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "core/ipc/client.h"
#include "core/ipc/codec.h"

namespace clrdiag::listen {

using Cookie = std::array<uint8_t, 16>;

// One diagnostic port (config `diagnostic_ports[]`).
struct PortOptions {
  std::string path;    // the unix socket, as the daemon sees it
  mode_t mode = 0666;  // the app's user must be able to connect
  bool resume = true;  // send ResumeRuntime to runtimes waiting at start-up
  // A directory both the daemon (`dump_dir`) and the app (`dump_dir_in_app`) see, for dumps of
  // runtimes whose process the daemon cannot reach through /proc. Empty: the socket's
  // directory, and the same path in the app.
  std::string dump_dir;
  std::string dump_dir_in_app;
};

enum class LogLevel { kInfo, kWarning };
using LogFn = std::function<void(LogLevel, const std::string&)>;

struct ServerOptions {
  // Named limits.
  // A connection that has not sent its whole advertise by then is dropped.
  absl::Duration advertise_timeout = absl::Seconds(2);
  // A runtime with no connection for this long is gone (it reconnects within milliseconds
  // after each command; only an exited runtime stays away).
  absl::Duration reconnect_grace = absl::Seconds(2);
  // ResumeRuntime and ProcessInfo on a new runtime's connections.
  absl::Duration command_timeout = absl::Seconds(5);
  // Runtimes known at once over all ports; connections of further runtimes are dropped.
  int max_runtimes = 1024;
  LogFn log;  // may be empty
  // Called (on the server's thread, no locks held) once a new runtime has been welcomed:
  // resumed if its port says so, and its ProcessInfo asked. May be empty. The daemon uses it
  // to run the rules' startup check at once rather than at the next poll.
  std::function<void()> on_runtime_welcomed;
};

// What the server knows of one connected runtime.
struct RuntimeSnapshot {
  Cookie cookie{};
  uint64_t pid = 0;  // as advertised: the pid in the runtime's own pid namespace
  PortOptions port;
  absl::Time first_seen;
  bool resume_sent = false;              // ResumeRuntime was answered OK
  std::optional<ipc::ProcessInfo> info;  // ProcessInfo3/2/1 over a listen connection
  std::string info_error;
};

class ListenServer {
 public:
  // Binds every port (a stale socket file left at a path is replaced; a live one is an error)
  // and starts serving. InvalidArgument/AlreadyExists/errno statuses name the path.
  static absl::StatusOr<std::unique_ptr<ListenServer>> Start(std::vector<PortOptions> ports,
                                                             ServerOptions options);
  // Stops serving, closes every connection and removes the socket files.
  ~ListenServer();
  ListenServer(const ListenServer&) = delete;
  ListenServer& operator=(const ListenServer&) = delete;

  // The runtimes connected now (or within the reconnect grace), by port then pid.
  std::vector<RuntimeSnapshot> List() const;

  // An endpoint for commands to the runtime with `cookie` on `port_path`: each Open() takes
  // that runtime's next idle connection, waiting for it up to the timeout (the runtime
  // reconnects after every command). NotFound once the runtime is gone.
  std::unique_ptr<ipc::Endpoint> EndpointFor(const Cookie& cookie, const std::string& port_path);

 private:
  struct Runtime;
  struct Pending;
  struct State;
  class PoolEndpoint;

  explicit ListenServer(ServerOptions options);
  void Run();
  void Welcome(const std::string& port_path, Cookie cookie);
  void Log(LogLevel level, const std::string& message) const;

  ServerOptions options_;
  std::shared_ptr<State> state_;
  std::thread thread_;
  std::vector<std::thread> welcomes_;  // guarded by state_->mu
};

}  // namespace clrdiag::listen
