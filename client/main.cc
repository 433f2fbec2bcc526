// clrdiag: the command-line client of clrdiagd. Flags live here only.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "client/client.h"
#include "client/heapdiff.h"
#include "core/base/phase_log.h"

int main(int argc, char** argv) {
  using namespace clrdiag::cli;
  clrdiag::PhaseMark("client", "main");
  // Dumps arrive in 1 MiB messages: keep glibc from mapping and trimming the heap for every one
  // of them (measured: it tripled transfer time).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  GlobalOptions g;
  CLI::App app{"clrdiag: collect and analyze .NET dumps through clrdiagd"};
  app.require_subcommand(1);
  app.add_option("--server", g.server,
                 "daemon address: unix:/path, /path or host:port (default: $CLRDIAG_SERVER, "
                 "else the local daemon's socket)");

  app.add_option("--ca", g.ca, "TCP: verify the daemon with this CA certificate (PEM); uses TLS");
  app.add_option("--cert", g.cert, "TCP: this client certificate (PEM) for mTLS; uses TLS");
  app.add_option("--key", g.key, "TCP: the private key (PEM) of --cert");
  app.add_option("--token", g.token,
                 "bearer token for the daemon (default: $CLRDIAG_TOKEN); prefer the environment "
                 "variable: command lines are visible to other users");
  auto* ps = app.add_subcommand("ps", "List the .NET processes dumps can be collected from");
  ps->add_flag("--json", g.json, "print a JSON array");

  CollectOptions c;
  auto* collect = app.add_subcommand("collect", "Capture a dump of a process");
  auto* opt_pid = collect->add_option("-p,--process-id", c.pid, "process id to dump");
  auto* opt_name = collect->add_option("-n,--name", c.name, "process name to dump");
  opt_pid->excludes(opt_name);
  collect->add_option("--type", c.type, "Full (default), Heap, Mini or Triage");
  collect->add_option("-o,--output", c.output, "also write the dump to this path on this machine");
  collect->add_flag("--diag", c.diag, "enable dump collection diagnostic logging");
  collect->add_flag("--crashreport", c.crash_report, "also write a crash report (JSON)");
  collect->add_option("--runtime-cookie", c.runtime_cookie,
                      "of the processes -p/-n match, the one whose runtime cookie (ps --json) "
                      "starts with these hex digits (listen-mode runtimes sharing a pid)");
  collect->add_flag("--json", g.json, "print the result as JSON");

  auto* dumps = app.add_subcommand("dumps", "List the dumps in the daemon's catalog");
  dumps->add_flag("--json", g.json, "print a JSON array");

  std::string id, output;
  auto* download = app.add_subcommand("download", "Copy a dump from the catalog to this machine");
  download->add_option("id", id, "dump id (see `clrdiag dumps`)")->required();
  download->add_option("-o,--output", output, "destination file")->required();

  auto* rm = app.add_subcommand("rm", "Remove a dump from the catalog");
  rm->add_option("id", id, "dump id")->required();

  std::string dump;
  std::vector<std::string> commands;
  auto* analyze = app.add_subcommand(
      "analyze", "Analyze a dump in the daemon with SOS commands (as dotnet-dump analyze)");
  analyze->add_option("dump", dump, "dump id (see `clrdiag dumps`) or a path on the daemon's host")
      ->required();
  analyze->add_option("-c,--command", commands, "run this command at start (repeatable)");
  analyze->add_flag("--json", g.json,
                    "each command prints its JSON form: one document per command and line");

  std::string diff_a, diff_b;
  auto* heapdiff = app.add_subcommand(
      "heapdiff", "Per type, how the managed heap grew from dump A to dump B (dumpheap -stat)");
  heapdiff->add_option("dump_a", diff_a, "the earlier dump: catalog id or a daemon-host path")
      ->required();
  heapdiff->add_option("dump_b", diff_b, "the later dump: catalog id or a daemon-host path")
      ->required();
  heapdiff->add_flag("--json", g.json, "print one JSON document");

  std::string close_id;
  auto* sessions =
      app.add_subcommand("sessions", "List the daemon's analysis sessions, or close one");
  sessions->add_flag("--json", g.json, "print a JSON array");
  sessions->add_option("--close", close_id, "close this session (yours; any session as root)");

  EventsOptions ev;
  auto* events = app.add_subcommand(
      "events", "Show the daemon's automation events: processes, rules fired, dumps, egress");
  events->add_flag("-f,--follow", ev.follow,
                   "after the recent events, keep printing new ones until Ctrl-C");
  events->add_flag("--json", g.json, "one JSON object per event and line (JSON Lines)");
  events->add_option(
      "--kind", ev.kinds,
      "only these kinds (repeatable): process_start, process_exit, rule_fired, "
      "rule_throttled, dump_collected, collect_failed, egress, rule_finished, rule_skipped");
  events->add_option("--rule", ev.rule, "only this rule's events");
  events->add_option("-p,--process-id", ev.pid, "only this process's events");
  auto* rules = app.add_subcommand(
      "rules", "List the collection rules with fire counts, last fire and next allowed action");
  rules->add_flag("--json", g.json, "print a JSON array");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "clrdiag: [ERROR] %s\nRun `clrdiag --help` or `clrdiag COMMAND --help`.\n",
                 e.what());
    return kExitUsage;
  }

  if (collect->parsed()) {
    if (c.pid == 0 && c.name.empty()) {
      std::fprintf(stderr, "clrdiag: [ERROR] Must specify either --process-id or --name.\n");
      return kExitUsage;
    }
    if (c.runtime_cookie.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos ||
        c.runtime_cookie.size() > 32) {
      std::fprintf(stderr, "clrdiag: [ERROR] --runtime-cookie '%s': expected up to 32 hex digits\n",
                   c.runtime_cookie.c_str());
      return kExitUsage;
    }
    if (opt_pid->count() && c.pid <= 0) {
      std::fprintf(stderr, "clrdiag: [ERROR] %d is not a valid process ID\n", c.pid);
      return kExitUsage;
    }
  }
  int rc = kExitUsage;
  // Never destroyed: destroying the last channel runs grpc_shutdown(), which can wait up to
  // 10 s for gRPC's executor after large transfers. Every call has finished and every file is
  // closed when we exit below.
  if (analyze->parsed()) {
    // Ctrl-C in a session is for its sigwait thread (RunAnalyze): block it in every thread,
    // so before gRPC starts any.
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
  }
  if (events->parsed() && ev.follow) {
    // `events --follow` ends on Ctrl-C or SIGTERM through its sigwait thread (RunEvents): block
    // them in every thread, so before gRPC starts any.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  TlsMaterial tls;
  if (!LoadTlsMaterial(g, &tls)) return kExitUsage;
  Client& client = *new Client(g, tls);
  if (ps->parsed()) rc = RunPs(client, g);
  if (collect->parsed()) rc = RunCollect(client, g, c);
  if (dumps->parsed()) rc = RunDumps(client, g);
  if (download->parsed()) rc = RunDownload(client, id, output);
  if (rm->parsed()) rc = RunRm(client, id);
  if (analyze->parsed()) rc = RunAnalyze(client, dump, commands, g.json);
  if (sessions->parsed()) rc = RunSessions(client, g, close_id);
  if (heapdiff->parsed()) rc = RunHeapDiff(client, diff_a, diff_b, g.json);
  if (events->parsed()) rc = RunEvents(client, g, ev);
  if (rules->parsed()) rc = RunRules(client, g);
  std::fflush(nullptr);
  std::_Exit(rc);
}
