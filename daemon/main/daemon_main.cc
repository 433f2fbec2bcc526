#include "daemon/main/daemon_main.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include "absl/strings/str_join.h"
#include "core/base/fs.h"
#include "core/base/status_macros.h"
#include "core/dump/collector.h"
#include "core/dump/crash_ingest.h"
#include "core/dump/dump_store.h"
#include "core/inventory/inventory.h"
#include "core/ipc/codec.h"
#include "core/listen/listen_server.h"
#include "core/procfs/procfs.h"
#include "daemon/auth/audit.h"
#include "daemon/auth/auth.h"
#include "daemon/automation/automation_host.h"
#include "daemon/automation/bridges.h"
#include "daemon/automation/crash_watch.h"
#include "daemon/config/config.h"
#include "daemon/main/sd_notify.h"
#include "daemon/metrics/daemon_metrics.h"
#include "daemon/metrics/http_server.h"
#include "daemon/metrics/rpc_interceptor.h"
#include "daemon/service/diagnostics_service.h"
#include "daemon/service/graph_prebuilder.h"
#include "daemon/service/output_fds.h"
#include "daemon/service/unix_listener.h"
#include "daemon/service/warm_workers.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace clrdiag {
namespace {

constexpr char kSystemConfig[] = "/etc/clrdiag/clrdiagd.yaml";
// Named limit: the largest request message the server accepts (requests are small: a pid, a
// dump id, a command line; dumps only flow from the server to clients).
constexpr int kMaxRequestBytes = 64 << 10;
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
  if (!flags.metrics_listen.empty()) {
    auto a = config::ParseMetricsAddress(flags.metrics_listen);
    if (!a.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: ", a.status().message()));
    }
    cfg.metrics.listen = *a;
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

// The TLS credentials of TCP listeners, from the PEM files in `tls`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(
    const config::TlsConfig& tls) {
  auto read = [](const std::string& key, const std::string& path) -> absl::StatusOr<std::string> {
    auto text = ReadFileToString(path, 1 << 20);
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          absl::StrCat(key, ": cannot read ", path, ": ", text.status().message()));
    }
    return text;
  };
  grpc::SslServerCredentialsOptions opts(tls.client_ca.empty()
                                             ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                             : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, read("tls.cert", tls.cert));
  ASSIGN_OR_RETURN(pair.private_key, read("tls.key", tls.key));
  opts.pem_key_cert_pairs.push_back(pair);
  if (!tls.client_ca.empty()) {
    ASSIGN_OR_RETURN(opts.pem_root_certs, read("tls.client_ca", tls.client_ca));
  }
  return grpc::SslServerCredentials(opts);
}

metrics::DaemonMetrics* NewDaemonMetrics(const dump::DumpStore* store,
                                         const service::SessionRegistry* sessions) {
  metrics::MetricSources src;
  src.store_totals = [store] {
    metrics::MetricSources::StoreTotals t;
    for (const auto& m : store->List()) {
      ++t.dumps;
      t.bytes += m.size_bytes;
    }
    return t;
  };
  src.store_free_bytes = [store]() -> uint64_t {
    auto free = store->FreeBytes();
    return free.ok() ? *free : 0;
  };
  src.active_sessions = [sessions] { return sessions->List(std::nullopt).size(); };
  return new metrics::DaemonMetrics(CLRDIAG_VERSION, src);
}

}  // namespace

int RunHashToken() {
  std::string token;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0 && token.size() < (1 << 16)) {
    token.append(buf, n);
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) {
    std::fprintf(stderr,
                 "clrdiagd --hash-token: give the token on standard input, e.g.\n"
                 "  head -c 32 /dev/urandom | base64 | tee token.txt | clrdiagd --hash-token\n");
    return 1;
  }
  if (token.find_first_of(" \t\n") != std::string::npos) {
    std::fprintf(stderr, "clrdiagd --hash-token: a token is one line without spaces\n");
    return 1;
  }
  std::printf("%s\n", auth::HashToken(token).c_str());
  return 0;
}

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
    for (const auto& r : cfg->automation.rules) {
      std::printf("rule %s: %s; %s; %s\n", r.name.c_str(),
                  automation::DescribeTrigger(r.trigger).c_str(),
                  daemon_automation::DescribeAction(r.action).c_str(),
                  daemon_automation::DescribeLimits(r.limits).c_str());
    }
    for (const auto& e : cfg->automation.egress) {
      std::printf("egress %s: %s\n", e.name.c_str(),
                  e.type == automation::EgressConfig::Type::kFilesystem
                      ? ("filesystem " + e.directory).c_str()
                      : ("s3 " + e.endpoint + " bucket " + e.bucket).c_str());
    }
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));
  ::umask(077);  // dumps hold secrets: nothing we create is readable by others

  // Step 2: the dump store: its lock, repairs after a crash (each one logged), retention.
  procfs::ProcFs fs("/proc");
  dump::StoreOptions store_opts;
  store_opts.retention.max_age = cfg->store.max_age;
  store_opts.retention.max_total_bytes = cfg->store.max_total_mib << 20;
  store_opts.retention.max_count = cfg->store.max_count;
  store_opts.log = [](dump::StoreLogLevel level, const std::string& line) {
    if (level == dump::StoreLogLevel::kWarning) {
      spdlog::warn("{}", line);
    } else {
      spdlog::info("{}", line);
    }
  };
  store_opts.on_interrupted = [&fs](const std::string& id, const std::string& note) {
    return dump::RecoverInterruptedCollection(fs, id, note);
  };
  // Workers kept between sessions on the same dump (analysis.warm_workers): a dump that
  // leaves the catalog ends its kept workers.
  auto warm_workers = std::make_unique<service::WarmWorkers>(service::WarmWorkers::Options{
      std::max(cfg->analysis.warm_workers, 0), cfg->analysis.warm_worker_idle,
      static_cast<uint64_t>(std::max(cfg->analysis.warm_worker_max_rss_mib, 0))});
  // gcroot's heap graph of every dump that enters the catalog, built in the background; the
  // worker that built it stays as the dump's warm worker, for its first session. (Declared
  // after warm_workers: destroyed, and stopped, before them.)
  service::GraphPrebuilder prebuilder({cfg->dump_dir, worker::WorkerExecutablePath(),
                                       std::max<int64_t>(cfg->analysis.worker_memory_mib, 0),
                                       warm_workers.get()});
  if (cfg->analysis.prebuild_heap_graph) {
    store_opts.on_committed = [&prebuilder](const std::string& id) { prebuilder.Enqueue(id); };
  }
  store_opts.on_removing = [&prebuilder, &warm_workers](const std::string& id) {
    prebuilder.Cancel(id);
    if (warm_workers) warm_workers->DropDump(id);
  };
  auto store = dump::DumpStore::Open(cfg->dump_dir, store_opts);
  if (!store.ok()) {
    spdlog::critical("{}", std::string(store.status().message()));
    return 1;
  }
  // Dumps already in the store without a valid graph (collected before graphs were built, or
  // while prebuild_heap_graph was off): built too, after any new dump's.
  if (cfg->analysis.prebuild_heap_graph) {
    for (const dump::DumpMeta& m : (*store)->List()) {
      if (service::GraphPrebuilder::GraphLooksValid((*store)->DumpPath(m.id),
                                                    (*store)->GraphPath(m.id))) {
        continue;
      }
      spdlog::info("heap graph of dump {}: none valid in the store, queued (lowest priority)",
                   m.id);
      prebuilder.EnqueueBacklog(m.id);
    }
  }
  inventory::Inventory inventory(fs, cfg->process_info_timeout);
  dump::CollectorOptions copts;
  copts.max_concurrent_collections = cfg->max_concurrent_collections;
  copts.process_info_timeout = std::max(cfg->process_info_timeout, absl::Seconds(2));
  copts.preflight = cfg->store.preflight;
  copts.free_space_reserve_bytes = cfg->store.free_space_reserve_mib << 20;
  dump::Collector collector(fs, store->get(), copts);
  service::PeerRegistry peers;
  service::OutputFdRegistry output_fds;
  // Never destroyed, like the server: its watchdog may still look at a session of a call that
  // gRPC has not finished when the process exits.
  auto* sessions = new service::SessionRegistry(cfg->analysis);
  // Step 2b: who may do what, and the audit log.
  bool has_tcp = false;
  for (const auto& a : cfg->listen) has_tcp |= a.kind == config::ListenAddress::Kind::kTcp;
  std::shared_ptr<grpc::ServerCredentials> tcp_creds = grpc::InsecureServerCredentials();
  if (has_tcp && cfg->tls.enabled()) {
    auto creds = TlsCredentials(cfg->tls);
    if (!creds.ok()) {
      spdlog::critical("{}", std::string(creds.status().message()));
      return 1;
    }
    tcp_creds = *creds;
  }
  auth::Authenticator authn(cfg->auth, cfg->tls.enabled(),
                            [&peers](const std::string& p) { return peers.Lookup(p); });
  std::string audit_path =
      cfg->audit.path.empty() ? cfg->dump_dir + "/audit.jsonl" : cfg->audit.path;
  auto audit = auth::AuditLog::Open(audit_path);
  if (!audit.ok()) {
    spdlog::critical("{}", std::string(audit.status().message()));
    return 1;
  }
  spdlog::info(
      "audit log: {}; admin group: {}", audit_path,
      authn.admin_group().empty() ? std::string("(none: root only)") : authn.admin_group());
  service::ServiceDeps deps;
  deps.inventory = &inventory;
  deps.collector = &collector;
  deps.store = store->get();
  deps.peers = &peers;
  deps.output_fds = &output_fds;
  deps.sessions = sessions;
  deps.warm_workers = warm_workers.get();
  deps.authn = &authn;
  deps.audit = audit->get();

  // Step 2c: metrics, when configured (off: nothing is counted, no interceptor runs). The port
  // is bound before any client socket, so a port in use stops the start-up before the daemon is
  // visible. Never destroyed: gRPC's interceptors may count a last call after RunDaemon returns.
  metrics::DaemonMetrics* metrics = nullptr;
  std::atomic<bool> ready{false};
  std::unique_ptr<metrics::HttpServer> metrics_http;
  if (!cfg->metrics.listen.empty()) {
    metrics = NewDaemonMetrics(store->get(), sessions);
    auto http = metrics::HttpServer::Start(
        cfg->metrics.listen,
        {[metrics] { return metrics->Render(); }, [&ready] { return ready.load(); }});
    if (!http.ok()) {
      spdlog::critical("{}", std::string(http.status().message()));
      return 1;
    }
    metrics_http = std::move(*http);
    spdlog::info("metrics on http://{}/metrics", cfg->metrics.listen);
  }
  if (metrics != nullptr) {
    deps.on_collection = [metrics](dump::DumpKind kind, const absl::Status& result,
                                   absl::Duration took) {
      metrics->ObserveCollection(std::string(dump::DumpKindName(kind)), result, took);
    };
  }
  service::DiagnosticsService svc(deps);

  // Step 2c': crash capture from the runtimes' own crash dumps (crash_dumps.directories).
  std::unique_ptr<dump::CrashIngester> crash_ingester;
  // Crash rules (docs/crash-capture.md): way 1 offers each ingested dump to them; set before
  // the ingester starts (below, after the automation host exists).
  std::unique_ptr<daemon_automation::AutomationHost> automation_host;
  if (!cfg->crash_dumps.directories.empty()) {
    dump::CrashIngestOptions io;
    for (const auto& d : cfg->crash_dumps.directories) {
      io.directories.push_back({d.path, *dump::ParseDumpKind(d.type)});
    }
    io.settle = cfg->crash_dumps.settle;
    io.scan_interval = cfg->crash_dumps.scan_interval;
    io.on_ingested = [&automation_host](const dump::DumpMeta& m) {
      spdlog::info("crash dump of {} (pid {}) from {} is in the catalog as {}", m.process_name,
                   m.pid, m.source_path, m.id);
      if (automation_host) automation_host->OfferCrashDump(m);
    };
    io.on_error = [](const std::string& path, const absl::Status& st) {
      spdlog::error("crash dump {}: {}", path, std::string(st.message()));
    };
    auto ing = dump::CrashIngester::Create(fs, store->get(), std::move(io));
    if (!ing.ok()) {
      spdlog::critical("crash_dumps: {}", std::string(ing.status().message()));
      return 1;
    }
    crash_ingester = std::move(*ing);
  }

  // Step 2d: listen-mode diagnostic ports (runtimes connect to us), before anything serves.
  std::unique_ptr<listen::ListenServer> listen_server;
  // The rules engine (set in step 2e) runs its startup check as soon as a runtime connects.
  std::atomic<automation::Engine*> engine_to_wake{nullptr};
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
    lopts.on_runtime_welcomed = [&engine_to_wake] {
      if (automation::Engine* e = engine_to_wake.load()) e->Wake();
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

  // Step 2e: collection rules (docs/automation.md), when configured. Rule collections take the
  // CollectDump RPC's path; events and rule states are served by WatchEvents and ListRules.
  // Runtime events for counter and exception rules: one EventPipe session per process, shared.
  std::unique_ptr<eventpipe::Hub> eventpipe_hub;
  std::unique_ptr<daemon_automation::EventPipeBridge> eventpipe_bridge;
  // Crash capture way 2: speculative dumps on exceptions (crash rules with EventPipe capture).
  std::unique_ptr<dump::CrashIngester> speculative_ingester;  // catalogues them (not started)
  std::unique_ptr<daemon_automation::CrashWatcher> crash_watcher;
  if (!cfg->automation.rules.empty()) {
    daemon_automation::AutomationDeps adeps;
    adeps.make_s3 = daemon_automation::MakeS3Egress;
    adeps.on_needs_changed = [&eventpipe_bridge] {
      if (eventpipe_bridge) eventpipe_bridge->Sync();
    };
    adeps.inventory = &inventory;
    adeps.store = store->get();
    adeps.collect = [&svc](const dump::CollectRequest& r, const std::string& cookie) {
      return svc.CollectForRule(r, cookie);
    };
    adeps.log = [](bool warning, const std::string& line) {
      if (warning) {
        spdlog::warn("{}", line);
      } else {
        spdlog::info("{}", line);
      }
    };
    auto host = daemon_automation::AutomationHost::Create(cfg->automation, std::move(adeps));
    if (!host.ok()) {
      spdlog::critical("{}", std::string(host.status().message()));
      return 1;
    }
    automation_host = std::move(*host);
    svc.SetAutomation(&automation_host->bus(), &automation_host->engine());
    engine_to_wake = &automation_host->engine();
    eventpipe_hub = std::make_unique<eventpipe::Hub>();
    auto log_line = [](bool warning, const std::string& l) {
      if (warning) {
        spdlog::warn("{}", l);
      } else {
        spdlog::info("{}", l);
      }
    };
    bool crash_eventpipe = false;
    for (const auto& r : cfg->automation.rules) {
      crash_eventpipe |=
          r.trigger.type == automation::TriggerType::kCrash && r.trigger.crash_eventpipe();
    }
    dump::CrashIngester* cataloguer = crash_ingester.get();
    if (crash_eventpipe && cataloguer == nullptr) {
      auto ing = dump::CrashIngester::Create(fs, store->get(), {});
      if (!ing.ok()) {
        spdlog::critical("crash capture: {}", std::string(ing.status().message()));
        return 1;
      }
      speculative_ingester = std::move(*ing);
      cataloguer = speculative_ingester.get();
    }
    if (crash_eventpipe) {
      daemon_automation::CrashWatchDeps cw;
      cw.engine = &automation_host->engine();
      cw.store = store->get();
      cw.ingester = cataloguer;
      cw.log = log_line;
      crash_watcher = std::make_unique<daemon_automation::CrashWatcher>(std::move(cw));
    }
    eventpipe_bridge = std::make_unique<daemon_automation::EventPipeBridge>(
        &automation_host->engine(), eventpipe_hub.get(), log_line, absl::Seconds(2),
        crash_watcher.get(),
        [cataloguer](pid_t) {
          // The process is alive now: keep its runtime files (and its facts) for its crash.
          if (cataloguer != nullptr) cataloguer->ScanProcesses();
        },
        // Listen-only runtimes (another pid namespace): their session goes through the port,
        // to the runtime with that cookie.
        [&listen_server](
            const automation::ProcessNeeds& n) -> absl::StatusOr<std::shared_ptr<ipc::Endpoint>> {
          if (!listen_server) return absl::UnavailableError("no diagnostic port");
          for (const auto& rt : listen_server->List()) {
            if (ipc::CookieHex(rt.cookie) != n.runtime_cookie) continue;
            return std::shared_ptr<ipc::Endpoint>(
                listen_server->EndpointFor(rt.cookie, rt.port.path));
          }
          return absl::NotFoundError("the runtime is no longer connected to a diagnostic port");
        });
    spdlog::info("automation: {} collection rule(s), {} egress target(s), polling every {}",
                 cfg->automation.rules.size(), cfg->automation.egress.size(),
                 absl::FormatDuration(cfg->automation.options.poll_interval));
  }

  if (crash_ingester) {
    if (absl::Status st = crash_ingester->Start(); !st.ok()) {
      spdlog::critical("crash_dumps: {}", std::string(st.message()));
      return 1;
    }
    std::vector<std::string> dirs;
    for (const auto& d : cfg->crash_dumps.directories) dirs.push_back(d.path);
    spdlog::info("crash dumps: watching {}", absl::StrJoin(dirs, ", "));
  }

  // Step 3: the gRPC server (TCP ports bound here; unix sockets are ours, below).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterService(&svc);
  if (metrics != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
    icpt.push_back(
        std::make_unique<metrics::RpcMetricsInterceptorFactory>(metrics, metrics::DaemonMethods()));
    builder.experimental().SetInterceptorCreators(std::move(icpt));
  }
  // Dumps stream in 1 MiB messages: a large HTTP/2 window keeps the pipe full.
  builder.AddChannelArgument("grpc.http2.lookahead_bytes", 32 << 20);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  for (const auto& a : cfg->listen) {
    if (a.kind == config::ListenAddress::Kind::kTcp) {
      if (!cfg->tls.enabled()) {
        spdlog::warn(
            "!!! listening on {} WITHOUT TLS (insecure: true): anyone who can reach this port "
            "can list processes, collect, download and delete dumps, unless they give a wrong "
            "token. Configure tls.cert and tls.key. !!!",
            a.address);
      } else {
        spdlog::info("listening on {} with TLS{}", a.address,
                     cfg->tls.client_ca.empty() ? "" : " (client certificates verified)");
      }
      builder.AddListeningPort(a.address, tcp_creds);
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::critical("cannot start the gRPC server (is a TCP port already in use?)");
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(false);

  // Step 4: unix sockets ("default" group: `clrdiag` when it exists, else the daemon's own).
  const std::string socket_group = config::ResolveGroupSetting(cfg->socket_group, "clrdiag");
  std::vector<std::unique_ptr<service::UnixListener>> listeners;
  for (const auto& a : cfg->listen) {
    if (a.kind != config::ListenAddress::Kind::kUnix) continue;
    auto l = service::UnixListener::Bind(a.address, cfg->socket_mode, socket_group);
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
      auto side = service::UnixListener::Bind(fds_path, cfg->socket_mode, socket_group);
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

  // Step 5: ready (rules start watching now, so their collections find the daemon serving).
  if (automation_host) automation_host->Start();
  server->GetHealthCheckService()->SetServingStatus(true);
  ready = true;
  std::vector<std::string> where;
  for (const auto& a : cfg->listen) where.push_back(a.ToString());
  spdlog::info("clrdiagd ready: listening on {}; dumps in {}", absl::StrJoin(where, ", "),
               cfg->dump_dir);
  SdNotify("READY=1\nSTATUS=listening on " + absl::StrJoin(where, ", "));

  // Step 6: wait for a shutdown signal.
  // Meanwhile, retention's age limit is applied every retention.check_interval, so a daemon that
  // collects nothing still lets old dumps go.
  int sig = 0;
  const bool by_age = cfg->store.max_age > absl::ZeroDuration();
  for (;;) {
    if (by_age) {
      timespec wait = absl::ToTimespec(cfg->store.check_interval);
      sig = sigtimedwait(&signals, nullptr, &wait);
    } else if (sigwait(&signals, &sig) != 0) {
      sig = -1;
    }
    if (sig < 0) {
      if (errno == EAGAIN) {
        (*store)->EnforceRetention();  // logs each removal through the store's log hook
        continue;
      }
      if (errno == EINTR) continue;
      break;
    }
    if (sig != SIGHUP) break;
    spdlog::info("SIGHUP ignored (restart to reload the configuration)");
  }
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  SdNotify("STOPPING=1");

  // Teardown: stop taking connections, let in-flight collections finish (a dump half taken
  // is worth finishing), remove sockets.
  server->GetHealthCheckService()->SetServingStatus(false);
  ready = false;
  if (crash_ingester) crash_ingester->Stop();
  for (auto& l : listeners) l->Stop();
  // Rules stop first: no new collection starts; a running one finishes below; followers of
  // WatchEvents see their stream end.
  engine_to_wake = nullptr;
  if (automation_host) automation_host->Stop();
  eventpipe_bridge.reset();  // ends the EventPipe sessions
  crash_watcher.reset();     // waits for speculative dumps in flight
  eventpipe_hub.reset();
  if (!svc.WaitForCollections(absl::Seconds(kShutdownGraceSeconds))) {
    spdlog::warn("collections still running after {} s; cancelling them", kShutdownGraceSeconds);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(kShutdownGraceSeconds));
  server->Wait();
  prebuilder.Stop();     // no build worker joins the pool from here on
  warm_workers.reset();  // every session is over: end the kept workers
  inventory.SetListenServer(nullptr);
  listen_server.reset();  // closes the runtimes' connections and removes the port sockets
  metrics_http.reset();   // last: /readyz says "not ready" until the very end
  spdlog::info("clrdiagd stopped");
  // Destroying the server would run grpc_shutdown(), which waits for gRPC's executor; after
  // large streaming writes that executor can sit in a backup poller for up to 10 s. All RPCs
  // are done and the sockets are gone, so let the process exit without that wait.
  (void)server.release();
  return 0;
}

}  // namespace clrdiag
