// clrdiagd: flags live here only.
#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "daemon/main/daemon_main.h"

int main(int argc, char** argv) {
  clrdiag::DaemonFlags flags;
  CLI::App app{"clrdiagd: the clrdiag node daemon (discovery, dump collection, dump catalog)"};
  app.add_option("--config", flags.config_path, "YAML configuration file");
  app.add_option("--listen", flags.listen,
                 "address to serve on: unix:/path or host:port (repeatable; replaces the "
                 "config's list)");
  app.add_option("--dump-dir", flags.dump_dir, "directory of the dump catalog");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn or error");
  app.add_flag("--check-config", flags.check_config,
               "validate the configuration, print the result and exit (0 valid, 1 invalid)");
  CLI11_PARSE(app, argc, argv);
  int rc = clrdiag::RunDaemon(flags);
  // RunDaemon has finished every RPC and removed its sockets; skip static teardown (see the
  // note at the end of RunDaemon).
  std::fflush(nullptr);
  std::_Exit(rc);
}
