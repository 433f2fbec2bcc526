#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace clrdiag::cli {
namespace {

constexpr int kRpcSeconds = 30;

void SetDeadline(grpc::ClientContext* ctx, int seconds = kRpcSeconds) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

nlohmann::ordered_json DumpJson(const clrdiag::v1::DumpInfo& d) {
  nlohmann::ordered_json j;
  j["id"] = d.id();
  j["type"] = TypeName(d.type());
  j["pid"] = d.pid();
  j["namespace_pid"] = d.namespace_pid();
  j["process_name"] = d.process_name();
  j["command_line"] = d.command_line();
  j["runtime_version"] = d.runtime_version();
  j["runtime_identifier"] = d.runtime_identifier();
  j["size_bytes"] = d.size_bytes();
  j["sha256"] = d.sha256();
  j["started"] = FormatTimestamp(d.started());
  j["finished"] = FormatTimestamp(d.finished());
  j["requested_by_uid"] = d.requested_by_uid();
  j["path"] = d.path();
  j["coreclr_build_id"] = d.coreclr_build_id();
  j["runtime_files_stored"] = d.runtime_files_stored();
  if (!d.crash_report_path().empty()) j["crash_report_path"] = d.crash_report_path();
  j["origin"] = d.origin().empty() ? "collect" : d.origin();
  if (!d.source_path().empty()) j["source_path"] = d.source_path();
  if (!d.container_id().empty()) j["container_id"] = d.container_id();
  if (!d.pod().empty()) j["pod"] = d.pod();
  if (!d.pod_namespace().empty()) j["pod_namespace"] = d.pod_namespace();
  if (!d.rule().empty()) j["rule"] = d.rule();
  if (d.egress_size() > 0) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& e : d.egress()) {
      nlohmann::ordered_json x;
      x["name"] = e.name();
      x["state"] = e.state();
      x["location"] = e.location();
      x["error"] = e.error();
      x["time"] = FormatTimestamp(e.time());
      arr.push_back(std::move(x));
    }
    j["egress"] = std::move(arr);
  }
  return j;
}

int TerminalWidth() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

// Keeps the tail of an overlong value, as dotnet-dump does.
std::string Fit(const std::string& s, size_t width) {
  if (width == 0 || s.size() <= width) return s;
  if (width <= 3) return s.substr(s.size() - width);
  return "..." + s.substr(s.size() - (width - 3));
}

// "  [pod NAMESPACE/NAME]" ('?' for a part not known; the pod UID when the name is not), or
// "  [container ID]" (12 digits, as docker and crictl show ids) outside pods, or "".
std::string IdentityMarker(const clrdiag::v1::ProcessInfo& p) {
  if (!p.pod().empty() || !p.pod_uid().empty() || !p.pod_namespace().empty()) {
    std::string name = !p.pod().empty()       ? p.pod()
                       : !p.pod_uid().empty() ? absl::StrCat("uid:", p.pod_uid())
                                              : "?";
    return absl::StrCat("  [pod ", p.pod_namespace().empty() ? "?" : p.pod_namespace(), "/", name,
                        "]");
  }
  if (!p.container_id().empty()) {
    return absl::StrCat("  [container ", p.container_id().substr(0, 12), "]");
  }
  return "";
}

}  // namespace

int RunPs(Client& client, const GlobalOptions& opts) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  clrdiag::v1::ListProcessesRequest req;
  clrdiag::v1::ListProcessesResponse resp;
  grpc::Status st = client.stub().ListProcesses(&ctx, req, &resp);
  if (!st.ok()) return client.Fail(st);
  if (opts.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& p : resp.processes()) {
      nlohmann::ordered_json j;
      j["pid"] = p.pid();
      j["namespace_pid"] = p.namespace_pid();
      j["name"] = p.name();
      j["executable"] = p.executable();
      j["command_line"] = p.command_line();
      j["argv"] = std::vector<std::string>(p.argv().begin(), p.argv().end());
      j["uid"] = p.uid();
      j["user"] = p.user();
      j["runtime_version"] = p.runtime_version();
      j["os"] = p.os();
      j["arch"] = p.arch();
      j["runtime_identifier"] = p.runtime_identifier();
      j["entry_assembly"] = p.entry_assembly();
      j["rss_bytes"] = p.rss_bytes();
      j["diagnostic_socket"] = p.diagnostic_socket();
      j["runtime_cookie"] = p.runtime_cookie();
      j["connection"] = p.connection().empty() ? "socket" : p.connection();
      j["container_id"] = p.container_id();
      j["container_runtime"] = p.container_runtime();
      j["pod_uid"] = p.pod_uid();
      j["pod"] = p.pod();
      j["namespace"] = p.pod_namespace();
      if (!p.connection().empty()) {
        j["listen_only"] = p.listen_only();
        j["resume_sent"] = p.resume_sent();
      }
      if (!p.runtime_error().empty()) j["runtime_error"] = p.runtime_error();
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return kExitOk;
  }
  if (resp.processes().empty()) {
    std::printf("No supported .NET processes were found\n");
    return kExitOk;
  }
  // dotnet-dump's layout: pid (right-aligned), name, executable, arguments (argv[0] dropped
  // when it is the executable), each as ' ' + padded + ' '; then the runtime version, and for
  // a runtime connected to a listen port "[listen:PATH]" (with " suspended" when the port does
  // not resume it, " pid in its own namespace" when it is out of the daemon's /proc), then for
  // a pod process "[pod NAMESPACE/NAME]", for a process in a container outside any pod
  // "[container ID12]": after dotnet-dump's columns, so scripts that cut them still work.
  struct Row {
    std::string pid, name, exe, args, version;
  };
  std::vector<Row> rows;
  for (const auto& p : resp.processes()) {
    std::vector<std::string> argv(p.argv().begin(), p.argv().end());
    if (!argv.empty() && argv[0] == p.executable()) argv.erase(argv.begin());
    Row r{std::to_string(p.pid()), p.name(),
          p.executable().empty() ? "[Elevated process - cannot determine path]" : p.executable(),
          absl::StrJoin(argv, " "), p.runtime_version().empty() ? "?" : p.runtime_version()};
    if (!p.connection().empty()) {
      r.version += absl::StrCat("  [", p.connection(), p.resume_sent() ? "" : " not resumed",
                                p.listen_only() ? " ns-pid" : "", "]");
      // Runtimes from other pid namespaces may show the same pid: their cookie tells them
      // apart (--runtime-cookie takes it).
      if (p.listen_only() && !p.runtime_cookie().empty()) {
        absl::StrAppend(&r.version, " runtime ", p.runtime_cookie().substr(0, 8));
      }
    }
    r.version += IdentityMarker(p);
    rows.push_back(std::move(r));
  }
  size_t wp = 0, wn = 0, we = 0, wa = 0;
  for (const auto& r : rows) {
    wp = std::max(wp, r.pid.size());
    wn = std::max(wn, r.name.size());
    we = std::max(we, r.exe.size());
    wa = std::max(wa, r.args.size());
  }
  int cols = StdoutIsTty() ? TerminalWidth() : 0;
  if (cols > 0) {
    size_t cap = std::max<int>(10, cols / 2 - 16 - (cols * 5 + 99) / 100);
    we = std::min(we, cap);
    wa = std::min(wa, cap);
  }
  for (const auto& r : rows) {
    std::printf(" %*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(wp), r.pid.c_str(),
                static_cast<int>(wn), r.name.c_str(), static_cast<int>(we), Fit(r.exe, we).c_str(),
                static_cast<int>(wa), Fit(r.args, wa).c_str(), r.version.c_str());
  }
  return kExitOk;
}

int RunCollect(Client& client, const GlobalOptions& opts, const CollectOptions& c) {
  clrdiag::v1::CollectDumpRequest req;
  std::string t = absl::AsciiStrToLower(c.type);
  std::string typemsg;
  if (t == "full") {
    req.set_type(clrdiag::v1::DUMP_TYPE_FULL);
    typemsg = "full";
  } else if (t == "heap") {
    req.set_type(clrdiag::v1::DUMP_TYPE_HEAP);
    typemsg = "dump with heap";
  } else if (t == "mini") {
    req.set_type(clrdiag::v1::DUMP_TYPE_MINI);
    typemsg = "dump";
  } else if (t == "triage") {
    req.set_type(clrdiag::v1::DUMP_TYPE_TRIAGE);
    typemsg = "triage dump";
  } else {
    std::fprintf(stderr, "clrdiag: [ERROR] invalid --type '%s': use Full, Heap, Mini or Triage\n",
                 c.type.c_str());
    return kExitUsage;
  }
  std::string output = c.output;
  if (!output.empty()) {
    if (output[0] != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof(cwd))) output = std::string(cwd) + "/" + output;
    }
    if (!CheckOutputPath(output)) return kExitUsage;
  }
  if (c.pid) req.set_pid(c.pid);
  req.set_name(c.name);
  req.set_diag(c.diag);
  req.set_crash_report(c.crash_report);
  req.set_runtime_cookie(absl::AsciiStrToLower(c.runtime_cookie));

  // With -o the dump's bytes arrive in the same stream while the runtime writes them.
  // On this host the daemon writes straight into our file (handed over on its side socket);
  // otherwise the bytes come in the stream.
  std::unique_ptr<OutputFile> out;
  bool daemon_writes = false;
  if (!output.empty()) {
    std::printf("Writing %s to %s\n", typemsg.c_str(), output.c_str());
    std::fflush(stdout);
    out = OutputFile::Create(output);
    if (!out) return kExitFailed;
    std::string token = SendOutputFd(client.target(), out->fd());
    daemon_writes = !token.empty();
    if (daemon_writes) {
      req.set_output_token(token);
    } else {
      req.set_stream_data(true);
    }
  }
  ProgressLine progress;
  grpc::ClientContext ctx;
  auto reader = client.stub().CollectDump(&ctx, req);
  clrdiag::v1::CollectDumpEvent ev;
  clrdiag::v1::DumpInfo info;
  bool done = false;
  auto t0 = std::chrono::steady_clock::now();
  while (reader->Read(&ev)) {
    if (ev.has_done()) {
      info = ev.done();
      done = true;
      continue;
    }
    if (ev.has_data()) {
      if (!out || !out->Append(ev.data().offset(), ev.data().data())) {
        ctx.TryCancel();
        break;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress.Update(
          absl::StrFormat("writing and transferring: %s (%s/s)", HumanBytes(out->size()),
                          HumanBytes(static_cast<uint64_t>(out->size() / std::max(secs, 0.001)))));
      continue;
    }
    const auto& p = ev.progress();
    std::string text;
    switch (p.phase()) {
      case clrdiag::v1::CollectProgress::PHASE_REQUESTING:
        text = p.message().empty() ? "requesting the dump" : p.message();
        break;
      case clrdiag::v1::CollectProgress::PHASE_WRITING:
        text = absl::StrCat("writing: ", HumanBytes(p.bytes()));
        break;
      case clrdiag::v1::CollectProgress::PHASE_STORING:
        text = absl::StrCat("storing: ", HumanBytes(p.bytes()), " / ", HumanBytes(p.total_bytes()));
        break;
      case clrdiag::v1::CollectProgress::PHASE_RUNTIME_FILES:
        text = "saving runtime files for offline analysis";
        break;
      default:
        break;
    }
    if (!text.empty()) {
      progress.Update(text, p.phase() != clrdiag::v1::CollectProgress::PHASE_WRITING);
    }
  }
  grpc::Status st = reader->Finish();
  progress.Clear();
  if (out && out->failed()) return kExitFailed;  // already reported
  if (!st.ok()) return client.Fail(st);
  if (!done) {
    std::fprintf(stderr, "clrdiag: the daemon ended the collection without a result\n");
    return kExitFailed;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (out) {
    int rc = daemon_writes ? out->CommitWrittenByDaemon(info.size_bytes())
                           : out->Commit(info.size_bytes(), info.sha256());
    if (rc != kExitOk) return rc;
  }
  if (opts.json) {
    nlohmann::ordered_json j = DumpJson(info);
    if (!output.empty()) j["output"] = output;
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("Complete\n");
  std::printf("Dump id:  %s\n", info.id().c_str());
  std::printf("Stored:   %s (on the daemon's host, %s bytes, %.1fs)\n", info.path().c_str(),
              WithThousands(info.size_bytes()).c_str(), secs);
  if (!output.empty()) std::printf("Written:  %s\n", output.c_str());
  return kExitOk;
}

int RunDumps(Client& client, const GlobalOptions& opts) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  clrdiag::v1::ListDumpsRequest req;
  clrdiag::v1::ListDumpsResponse resp;
  grpc::Status st = client.stub().ListDumps(&ctx, req, &resp);
  if (!st.ok()) return client.Fail(st);
  if (opts.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& d : resp.dumps()) arr.push_back(DumpJson(d));
    std::printf("%s\n", arr.dump(2).c_str());
    return kExitOk;
  }
  if (resp.dumps().empty()) {
    std::printf("No dumps in the catalog. Take one with `clrdiag collect -p PID`.\n");
    return kExitOk;
  }
  size_t wid = 2, wname = 4;
  for (const auto& d : resp.dumps()) {
    wid = std::max(wid, d.id().size());
    wname = std::max(wname, d.process_name().size());
  }
  std::printf("%-*s  %-6s  %7s  %-*s  %12s  %-10s  %s\n", static_cast<int>(wid), "ID", "TYPE",
              "PID", static_cast<int>(wname), "NAME", "SIZE", "RUNTIME", "TAKEN (UTC)");
  for (const auto& d : resp.dumps()) {
    std::printf("%-*s  %-6s  %7d  %-*s  %12s  %-10s  %s\n", static_cast<int>(wid), d.id().c_str(),
                TypeName(d.type()).c_str(), d.pid(), static_cast<int>(wname),
                d.process_name().c_str(), HumanBytes(d.size_bytes()).c_str(),
                d.runtime_version().empty() ? "?" : d.runtime_version().c_str(),
                FormatTimestamp(d.started()).c_str());
    if (d.origin() == "crash") {
      std::printf("%-*s  ^ crash dump written by the runtime, from %s%s\n", static_cast<int>(wid),
                  "", d.source_path().c_str(),
                  d.pod().empty()
                      ? ""
                      : absl::StrCat(" [pod ", d.pod_namespace(), "/", d.pod(), "]").c_str());
    }
  }
  return kExitOk;
}

int RunDownload(Client& client, const std::string& id, const std::string& output) {
  if (!CheckOutputPath(output)) return kExitUsage;
  ProgressLine progress;
  int rc = DownloadToFile(client, id, output, &progress);
  if (rc == kExitOk)
    std::printf("Downloaded %s to %s (sha256 verified)\n", id.c_str(), output.c_str());
  return rc;
}

int RunRm(Client& client, const std::string& id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  clrdiag::v1::DeleteDumpRequest req;
  req.set_id(id);
  clrdiag::v1::DeleteDumpResponse resp;
  grpc::Status st = client.stub().DeleteDump(&ctx, req, &resp);
  if (!st.ok()) return client.Fail(st);
  std::printf("Removed %s (%s freed)\n", id.c_str(), HumanBytes(resp.freed_bytes()).c_str());
  return kExitOk;
}

}  // namespace clrdiag::cli

namespace clrdiag::cli {

int RunSessions(Client& client, const GlobalOptions& opts, const std::string& close_id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (!close_id.empty()) {
    clrdiag::v1::CloseSessionRequest req;
    clrdiag::v1::CloseSessionResponse resp;
    req.set_id(close_id);
    grpc::Status st = client.stub().CloseSession(&ctx, req, &resp);
    if (!st.ok()) return client.Fail(st);
    std::printf("Closed session %s\n", close_id.c_str());
    return kExitOk;
  }
  clrdiag::v1::ListSessionsRequest req;
  clrdiag::v1::ListSessionsResponse resp;
  grpc::Status st = client.stub().ListSessions(&ctx, req, &resp);
  if (!st.ok()) return client.Fail(st);
  if (opts.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& s : resp.sessions()) {
      nlohmann::ordered_json j;
      j["id"] = s.id();
      j["uid"] = s.uid();
      j["owner"] = s.owner();
      j["dump"] = s.dump();
      j["dump_path"] = s.dump_path();
      j["started"] = google::protobuf::util::TimeUtil::ToString(s.started());
      j["idle_ms"] = s.idle_ms();
      j["running_command"] = s.running_command();
      j["commands"] = s.commands();
      j["worker_pid"] = s.worker_pid();
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return kExitOk;
  }
  if (resp.sessions().empty()) {
    std::printf("No analysis sessions are open\n");
    return kExitOk;
  }
  std::printf("%-6s %-20s %8s %9s  %-34s %s\n", "ID", "OWNER", "WORKER", "IDLE", "DUMP", "RUNNING");
  for (const auto& s : resp.sessions()) {
    std::string idle =
        s.running_command().empty() ? absl::StrCat(s.idle_ms() / 1000, "s") : std::string("-");
    std::string owner = s.owner().empty() ? absl::StrCat("uid ", s.uid()) : s.owner();
    std::printf("%-6s %-20s %8d %9s  %-34s %s\n", s.id().c_str(), owner.c_str(), s.worker_pid(),
                idle.c_str(), s.dump().c_str(), s.running_command().c_str());
  }
  return kExitOk;
}

}  // namespace clrdiag::cli
