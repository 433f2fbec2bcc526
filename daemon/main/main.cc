// clrdiagd: flags live here only.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "daemon/main/daemon_main.h"

int main(int argc, char** argv) {
  // Streaming a dump moves ~1 MiB buffers through gRPC's threads. With glibc's defaults each
  // thread arena hands those pages back and faults them in again for the next chunk, which
  // cost seconds of CPU per collection (bench/README.md): one arena, no mmap/trim churn.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  clrdiag::DaemonFlags flags;
  CLI::App app{"clrdiagd: the clrdiag node daemon (discovery, dump collection, dump catalog)"};
  app.add_option("--config", flags.config_path, "YAML configuration file");
  app.add_option("--listen", flags.listen,
                 "address to serve on: unix:/path or host:port (repeatable; replaces the "
                 "config's list)");
  app.add_option("--dump-dir", flags.dump_dir, "directory of the dump catalog");
  app.add_option("--diagnostic-port", flags.diagnostic_ports,
                 "listen-mode diagnostic port: a unix socket PATH that runtimes started with "
                 "DOTNET_DiagnosticPorts=PATH connect to (repeatable; replaces the config's "
                 "diagnostic_ports, with their defaults)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn or error");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "serve Prometheus /metrics, /healthz and /readyz over HTTP on IPV4:PORT "
                 "(overrides the config's metrics.listen)");
  app.add_flag("--check-config", flags.check_config,
               "validate the configuration, print the result and exit (0 valid, 1 invalid)");
  bool hash_token = false;
  app.add_flag("--hash-token", hash_token,
               "read a bearer token from stdin, print its SHA-256 for auth.identities[]."
               "token_sha256, and exit");
  CLI11_PARSE(app, argc, argv);
  if (hash_token) return clrdiag::RunHashToken();
  int rc = clrdiag::RunDaemon(flags);
  // RunDaemon has finished every RPC and removed its sockets; skip static teardown (see the
  // note at the end of RunDaemon).
  std::fflush(nullptr);
  std::_Exit(rc);
}
