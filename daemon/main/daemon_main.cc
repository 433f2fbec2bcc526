#include "daemon/main/daemon_main.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_join.h"
#include "core/dump/collector.h"
#include "core/dump/dump_store.h"
#include "core/inventory/inventory.h"
#include "core/listen/listen_server.h"
#include "core/procfs/procfs.h"
#include "daemon/config/config.h"
#include "daemon/main/sd_notify.h"
#include "daemon/service/diagnostics_service.h"
#include "daemon/service/output_fds.h"
#include "daemon/service/unix_listener.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace clrdiag {
namespace {

constexpr char kSystemConfig[] = "/etc/clrdiag/clrdiagd.yaml";
// Named limit: how long shutdown waits for in-flight RPCs (collections) before cancelling.
constexpr int kShutdownGraceSeconds = 60;

absl::StatusOr<config::DaemonConfig> ResolveConfig(const DaemonFlags& flags) {
  config::DaemonConfig cfg = config::DefaultConfig();
  std::string path = flags.config_path;
  if (path.empty() && ::access(kSystemConfig, R_OK) == 0) path = kSystemConfig;
  if (!path.empty()) {
    auto loaded = config::LoadConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    cfg = *loaded;
  }
  if (!flags.listen.empty()) {
    cfg.listen.clear();
    for (const auto& l : flags.listen) {
      auto a = config::ParseListenAddress(l);
      if (!a.ok())
        return absl::InvalidArgumentError(absl::StrCat("--listen: ", a.status().message()));
      cfg.listen.push_back(*a);
    }
  }
  if (!flags.diagnostic_ports.empty()) {
    cfg.diagnostic_ports.clear();
    for (const auto& path : flags.diagnostic_ports) {
      auto p = config::ParseDiagnosticPort(path);
      if (!p.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--diagnostic-port: ", p.status().message()));
      }
      cfg.diagnostic_ports.push_back(*p);
    }
  }
  if (!flags.dump_dir.empty()) {
    if (flags.dump_dir[0] != '/') {
      return absl::InvalidArgumentError("--dump-dir must be an absolute path");
    }
    cfg.dump_dir = flags.dump_dir;
  }
  if (!flags.log_level.empty()) {
    if (spdlog::level::from_str(flags.log_level) == spdlog::level::off &&
        flags.log_level != "off") {
      return absl::InvalidArgumentError("--log-level: use trace, debug, info, warn or error");
    }
    cfg.log_level = flags.log_level;
  }
  if (absl::Status st = config::ValidateConfig(cfg); !st.ok()) return st;
  return cfg;
}

// Blocks the signals we handle in every thread, so sigwait() in main receives them.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace

int RunDaemon(const DaemonFlags& flags) {
  sigset_t signals = BlockShutdownSignals();
  auto logger = spdlog::stderr_color_mt("clrdiagd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Step 1: configuration.
  auto cfg = ResolveConfig(flags);
  if (!cfg.ok()) {
    std::fprintf(stderr, "clrdiagd: invalid configuration:\n%s\n",
                 std::string(cfg.status().message()).c_str());
    return 1;
  }
  if (flags.check_config) {
    std::vector<std::string> listen;
    for (const auto& a : cfg->listen) listen.push_back(a.ToString());
    std::printf("configuration OK: listen %s, dump_dir %s\n", absl::StrJoin(listen, ", ").c_str(),
                cfg->dump_dir.c_str());
    for (const auto& p : cfg->diagnostic_ports) {
      std::printf("diagnostic port %s (mode %04o, resume %s, dumps via %s, %s in the app)\n",
                  p.path.c_str(), static_cast<unsigned>(p.mode), p.resume ? "true" : "false",
                  p.dump_dir.empty() ? "the socket's directory" : p.dump_dir.c_str(),
                  p.dump_dir_in_app.empty() ? "same path" : p.dump_dir_in_app.c_str());
    }
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  ::umask(077);  // dumps hold secrets: nothing we create is readable by others

  // Step 2: the dump store.
  auto store = dump::DumpStore::Open(cfg->dump_dir);
  if (!store.ok()) {
    spdlog::critical("{}", std::string(store.status().message()));
    return 1;
  }
  procfs::ProcFs fs("/proc");
  inventory::Inventory inventory(fs, cfg->process_info_timeout);
  dump::CollectorOptions copts;
  copts.max_concurrent_collections = cfg->max_concurrent_collections;
  copts.process_info_timeout = std::max(cfg->process_info_timeout, absl::Seconds(2));
  dump::Collector collector(fs, store->get(), copts);
  service::PeerRegistry peers;
  service::OutputFdRegistry output_fds;
  // Never destroyed, like the server: its watchdog may still look at a session of a call that
  // gRPC has not finished when the process exits.
  auto* sessions = new service::SessionRegistry(cfg->analysis);
  service::DiagnosticsService svc(
      {&inventory, &collector, store->get(), &peers, &output_fds, sessions});

  // Step 2b: listen-mode diagnostic ports (runtimes connect to us), before anything serves.
  std::unique_ptr<listen::ListenServer> listen_server;
  if (!cfg->diagnostic_ports.empty()) {
    std::vector<listen::PortOptions> ports;
    for (const auto& p : cfg->diagnostic_ports) {
      ports.push_back({p.path, p.mode, p.resume, p.dump_dir, p.dump_dir_in_app});
    }
    listen::ServerOptions lopts;
    lopts.log = [](listen::LogLevel level, const std::string& message) {
      if (level == listen::LogLevel::kWarning) {
        spdlog::warn("{}", message);
      } else {
        spdlog::info("{}", message);
      }
    };
    auto started = listen::ListenServer::Start(std::move(ports), std::move(lopts));
    if (!started.ok()) {
      spdlog::critical("{}", std::string(started.status().message()));
      return 1;
    }
    listen_server = *std::move(started);
    inventory.SetListenServer(listen_server.get());
    svc.SetListenServer(listen_server.get());
    for (const auto& p : cfg->diagnostic_ports) {
      spdlog::info(
          "diagnostic port {} (mode {:04o}, {}): start apps with DOTNET_DiagnosticPorts={}", p.path,
          static_cast<unsigned>(p.mode),
          p.resume ? "resumes runtimes waiting at start-up" : "resume: false", p.path);
    }
  }

  // Step 3: the gRPC server (TCP ports bound here; unix sockets are ours, below).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterService(&svc);
  // Dumps stream in 1 MiB messages: a large HTTP/2 window keeps the pipe full.
  builder.AddChannelArgument("grpc.http2.lookahead_bytes", 32 << 20);
  for (const auto& a : cfg->listen) {
    if (a.kind == config::ListenAddress::Kind::kTcp) {
      spdlog::warn(
          "listening on {} WITHOUT TLS (insecure_tcp: true): anyone who can reach this "
          "port can collect and download dumps",
          a.address);
      builder.AddListeningPort(a.address, grpc::InsecureServerCredentials());
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::critical("cannot start the gRPC server (is a TCP port already in use?)");
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(false);

  // Step 4: unix sockets.
  std::vector<std::unique_ptr<service::UnixListener>> listeners;
  for (const auto& a : cfg->listen) {
    if (a.kind != config::ListenAddress::Kind::kUnix) continue;
    auto l = service::UnixListener::Bind(a.address, cfg->socket_mode, cfg->socket_group);
    if (!l.ok()) {
      spdlog::critical("{}", std::string(l.status().message()));
      for (auto& x : listeners) x->Stop();
      server->Shutdown();
      return 1;
    }
    (*l)->Start(server.get(), &peers);
    listeners.push_back(std::move(*l));
    // The side socket for `collect -o` on this host (see output_fds.h); optional: clients
    // fall back to streaming without it.
    std::string fds_path = a.address + service::kOutputFdSocketSuffix;
    if (fds_path.size() < 108) {
      auto side = service::UnixListener::Bind(fds_path, cfg->socket_mode, cfg->socket_group);
      if (side.ok()) {
        (*side)->Start([&output_fds](UniqueFd conn, const service::PeerCred& cred) {
          output_fds.Serve(std::move(conn), cred);
        });
        listeners.push_back(std::move(*side));
      } else {
        spdlog::warn("no same-host output socket: {}", std::string(side.status().message()));
      }
    }
  }

  // Step 5: ready.
  server->GetHealthCheckService()->SetServingStatus(true);
  std::vector<std::string> where;
  for (const auto& a : cfg->listen) where.push_back(a.ToString());
  spdlog::info("clrdiagd ready: listening on {}; dumps in {}", absl::StrJoin(where, ", "),
               cfg->dump_dir);
  SdNotify("READY=1\nSTATUS=listening on " + absl::StrJoin(where, ", "));

  // Step 6: wait for a shutdown signal.
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("SIGHUP ignored (restart to reload the configuration)");
  }
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  SdNotify("STOPPING=1");

  // Teardown: stop taking connections, let in-flight collections finish (a dump half taken
  // is worth finishing), remove sockets.
  server->GetHealthCheckService()->SetServingStatus(false);
  for (auto& l : listeners) l->Stop();
  if (!svc.WaitForCollections(absl::Seconds(kShutdownGraceSeconds))) {
    spdlog::warn("collections still running after {} s; cancelling them", kShutdownGraceSeconds);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(kShutdownGraceSeconds));
  server->Wait();
  inventory.SetListenServer(nullptr);
  listen_server.reset();  // closes the runtimes' connections and removes the port sockets
  spdlog::info("clrdiagd stopped");
  // Destroying the server would run grpc_shutdown(), which waits for gRPC's executor; after
  // large streaming writes that executor can sit in a backup poller for up to 10 s. All RPCs
  // are done and the sockets are gone, so let the process exit without that wait.
  (void)server.release();
  return 0;
}

}  // namespace clrdiag
