// eventpipe_probe: runs one EventPipe session on a .NET process and prints what arrives.
//   eventpipe_probe (--pid PID | --socket PATH) [--counters SEC] [--exceptions]
//                   [--runtime-keywords HEX --runtime-level N] [--seconds N] [--raw FILE]
//                   [--all]
// --raw saves the nettrace stream as received (tests/data recordings are made with it);
// --all prints every event's provider/name/id; --parse FILE parses a saved stream instead.
// --dump-on-exception PATH: at the first ExceptionThrown event, ask the runtime for a Mini dump
// at PATH (as the target sees it) and print how that went (the crash-capture experiment).
// --hub PID,PID,...: one Hub subscription (counters at --counters SEC, default 1) per pid for
// --seconds (counted once every session is up) or until SIGTERM/SIGINT, then prints the
// samples each got (what bench/eventpipe.sh measures).
// Stops the session after --seconds (default 5) with StopTracing, or ends when the target exits.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/eventpipe/decoders.h"
#include "core/eventpipe/hub.h"
#include "core/eventpipe/nettrace.h"
#include "core/eventpipe/session.h"
#include "core/ipc/client.h"
#include "core/procfs/discovery.h"

namespace ep = clrdiag::eventpipe;

namespace {

volatile std::sig_atomic_t g_hub_stop = 0;
void OnHubStopSignal(int /*sig*/) { g_hub_stop = 1; }

int Usage() {
  std::fprintf(stderr,
               "usage: eventpipe_probe (--pid PID | --socket PATH | --parse FILE) "
               "[--counters SEC] [--exceptions] [--runtime-keywords HEX] [--runtime-level N] "
               "[--seconds N] [--raw FILE] [--all]\n");
  return 2;
}

std::string Describe(const ep::Event& e, const ep::TraceInfo& trace, bool all) {
  if (ep::IsCounterEvent(*e.metadata)) {
    absl::StatusOr<ep::CounterSample> s = ep::DecodeCounter(e, trace);
    if (!s.ok()) return absl::StrCat("counter decode error: ", s.status().message());
    return absl::StrFormat("%s counter %s/%s = %g (%s, %s)",
                           absl::FormatTime("%H:%M:%E3S", s->timestamp, absl::UTCTimeZone()),
                           s->provider, s->name, s->value, s->incrementing ? "Sum" : "Mean",
                           s->series);
  }
  if (ep::IsExceptionThrownEvent(*e.metadata)) {
    absl::StatusOr<ep::ExceptionThrown> x = ep::DecodeExceptionThrown(e, trace);
    if (!x.ok()) return absl::StrCat("exception decode error: ", x.status().message());
    return absl::StrFormat("%s exception %s: %s (hr 0x%08X flags 0x%X thread %d)",
                           absl::FormatTime("%H:%M:%E3S", x->timestamp, absl::UTCTimeZone()),
                           x->type, x->message, x->hresult, x->flags, x->thread_id);
  }
  if (!all) return "";
  std::string fields;
  absl::StatusOr<std::vector<ep::NamedValue>> values =
      ep::DecodePayload(e.metadata->fields, e.payload, trace.pointer_size);
  if (values.ok()) {
    for (const auto& v : *values) {
      absl::StrAppend(&fields, " ", v.name, "=");
      std::visit(
          [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
              absl::StrAppend(&fields, "\"", x, "\"");
            } else if constexpr (std::is_same_v<T, std::monostate>) {
              absl::StrAppend(&fields, "?");
            } else {
              absl::StrAppend(&fields, x);
            }
          },
          v.value);
    }
  } else {
    fields = absl::StrCat(" (", values.status().message(), ")");
  }
  return absl::StrFormat(
      "%s %s/%s id=%d v%d thread %d payload %d bytes:%s",
      absl::FormatTime("%H:%M:%E3S", trace.ToTime(e.timestamp), absl::UTCTimeZone()),
      e.metadata->provider, e.metadata->event_name, e.metadata->event_id, e.metadata->version,
      e.thread_id, e.payload.size(), fields);
}

int RunHub(const std::string& list, int interval, int seconds) {
  ep::Hub hub;
  std::vector<std::unique_ptr<ep::Subscription>> subs;
  std::vector<pid_t> pids;
  auto counts = std::make_unique<std::atomic<uint64_t>[]>(1024);
  for (absl::string_view p : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    pid_t pid;
    if (!absl::SimpleAtoi(p, &pid) || pid <= 0 || pids.size() >= 1024) {
      std::fprintf(stderr, "eventpipe_probe: bad pid list %s\n", list.c_str());
      return 2;
    }
    const size_t i = pids.size();
    pids.push_back(pid);
    absl::StatusOr<std::unique_ptr<ep::Subscription>> sub = hub.Subscribe(
        ep::Target::Pid(pid), ep::Needs{.counter_interval_sec = interval},
        {.on_counter = [&counts, i](const ep::CounterSample&) { counts[i].fetch_add(1); },
         .on_exception = nullptr,
         .on_ended = nullptr});
    if (!sub.ok()) {
      std::fprintf(stderr, "eventpipe_probe: pid %d: %s\n", pid,
                   std::string(sub.status().message()).c_str());
      return 1;
    }
    subs.push_back(std::move(*sub));
  }
  std::printf("hub: %zu sessions started\n", static_cast<size_t>(hub.stats().sessions_started));
  std::fflush(stdout);
  // The caller ends the run early with SIGTERM or SIGINT: the samples are still printed.
  std::signal(SIGTERM, OnHubStopSignal);
  std::signal(SIGINT, OnHubStopSignal);
  const absl::Time stop_at = absl::Now() + absl::Seconds(seconds);
  while (g_hub_stop == 0 && absl::Now() < stop_at) absl::SleepFor(absl::Milliseconds(50));
  for (size_t i = 0; i < pids.size(); ++i) {
    std::printf("pid %d: %llu samples\n", pids[i],
                static_cast<unsigned long long>(counts[i].load()));
  }
  subs.clear();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  pid_t pid = 0;
  std::string socket, raw, parse, dump_path, hub_pids;
  int counters = 0, seconds = 5;
  bool exceptions = false, all = false;
  uint64_t runtime_keywords = 0;
  uint32_t runtime_level = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--exceptions") {
      exceptions = true;
    } else if (a == "--all") {
      all = true;
    } else if ((a == "--pid" || a == "--socket" || a == "--counters" || a == "--seconds" ||
                a == "--raw" || a == "--parse" || a == "--runtime-keywords" ||
                a == "--dump-on-exception" || a == "--hub" || a == "--runtime-level") &&
               (v = next()) != nullptr) {
      bool ok = true;
      if (a == "--pid") ok = absl::SimpleAtoi(v, &pid) && pid > 0;
      if (a == "--socket") socket = v;
      if (a == "--raw") raw = v;
      if (a == "--parse") parse = v;
      if (a == "--dump-on-exception") dump_path = v;
      if (a == "--hub") hub_pids = v;
      if (a == "--counters") ok = absl::SimpleAtoi(v, &counters) && counters > 0;
      if (a == "--seconds") ok = absl::SimpleAtoi(v, &seconds) && seconds > 0;
      if (a == "--runtime-keywords") ok = absl::SimpleHexAtoi(v, &runtime_keywords);
      if (a == "--runtime-level") ok = absl::SimpleAtoi(v, &runtime_level) && runtime_level <= 5;
      if (!ok) {
        std::fprintf(stderr, "eventpipe_probe: bad value for %s: %s\n", a.c_str(), v);
        return 2;
      }
    } else {
      return Usage();
    }
  }

  std::thread dumper;
  ep::NettraceParser* self = nullptr;
  ep::NettraceParser parser(
      {.on_trace =
           [](const ep::TraceInfo& t) {
             std::printf(
                 "trace: pid %d, %d CPUs, pointer size %d, "
                 "start %s\n",
                 t.process_id, t.processor_count, t.pointer_size,
                 absl::FormatTime(t.start_time).c_str());
           },
       .on_event =
           [&](const ep::Event& e) {
             std::string line = Describe(e, self->trace(), all);
             if (!line.empty()) std::printf("%s\n", line.c_str());
             if (!dump_path.empty() && !dumper.joinable() &&
                 ep::IsExceptionThrownEvent(*e.metadata)) {
               const absl::Time seen = absl::Now();
               dumper = std::thread([&socket, &dump_path, seen] {
                 absl::Status s = clrdiag::ipc::GenerateCoreDump(
                     socket,
                     {.path = dump_path, .type = clrdiag::ipc::DumpType::kNormal, .flags = 0});
                 std::printf("dump on exception: %s after %s\n",
                             s.ok() ? "written" : std::string(s.message()).c_str(),
                             absl::FormatDuration(absl::Now() - seen).c_str());
                 std::fflush(stdout);
               });
             }
           }});
  self = &parser;

  if (!parse.empty()) {
    std::ifstream in(parse, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "eventpipe_probe: cannot read %s\n", parse.c_str());
      return 1;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    absl::Status s = parser.Feed(bytes);
    if (s.ok()) s = parser.AtEof();
    std::printf("%llu events, %s\n", static_cast<unsigned long long>(parser.events()),
                s.ok() ? "ended in order" : std::string(s.message()).c_str());
    return s.ok() ? 0 : 1;
  }

  if (!hub_pids.empty()) return RunHub(hub_pids, counters > 0 ? counters : 1, seconds);
  if (socket.empty() && pid == 0) return Usage();
  if (socket.empty()) {
    clrdiag::procfs::ProcFs fs;
    absl::StatusOr<clrdiag::procfs::DiagnosticSocket> s =
        clrdiag::procfs::FindDiagnosticSocket(fs, pid);
    if (!s.ok()) {
      std::fprintf(stderr, "eventpipe_probe: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    socket = s->path;
  }
  ep::SessionOptions options;
  if (counters > 0) {
    options.providers.push_back({.name = ep::kSystemRuntimeProvider,
                                 .keywords = 0,
                                 .level = 4,
                                 .arguments = absl::StrCat("EventCounterIntervalSec=", counters)});
  }
  if (exceptions) runtime_keywords |= ep::kExceptionKeyword;
  if (runtime_keywords != 0) {
    options.providers.push_back({.name = ep::kRuntimeProvider,
                                 .keywords = runtime_keywords,
                                 .level = runtime_level,
                                 .arguments = ""});
  }
  auto endpoint = std::make_shared<clrdiag::ipc::SocketEndpoint>(socket);
  absl::StatusOr<std::unique_ptr<ep::Session>> session =
      ep::Session::Start(endpoint, options, absl::Seconds(5));
  if (!session.ok()) {
    std::fprintf(stderr, "eventpipe_probe: %s\n", std::string(session.status().message()).c_str());
    return 1;
  }
  std::printf(
      "session %llu started with %s\n", static_cast<unsigned long long>((*session)->id()),
      (*session)->command() == ep::kCollectTracing3 ? "CollectTracing3" : "CollectTracing2");
  std::fflush(stdout);
  std::FILE* raw_file = raw.empty() ? nullptr : std::fopen(raw.c_str(), "wb");
  if (!raw.empty() && raw_file == nullptr) {
    std::fprintf(stderr, "eventpipe_probe: cannot write %s\n", raw.c_str());
    return 1;
  }
  const absl::Time stop_at = absl::Now() + absl::Seconds(seconds);
  bool stopped = false;
  absl::Status status;
  std::vector<uint8_t> buffer(64 << 10);
  for (;;) {
    const absl::Time deadline = stopped ? stop_at + absl::Seconds(10) : stop_at;
    absl::StatusOr<size_t> n = (*session)->Read(buffer, deadline);
    if (!n.ok() && absl::IsDeadlineExceeded(n.status()) && !stopped) {
      stopped = true;
      if (absl::Status s = (*session)->Stop(absl::Seconds(5)); !s.ok()) {
        std::fprintf(stderr, "eventpipe_probe: %s\n", std::string(s.message()).c_str());
      }
      continue;
    }
    if (!n.ok()) {
      status = n.status();
      break;
    }
    if (*n == 0) {
      status = parser.AtEof();
      break;
    }
    if (raw_file) std::fwrite(buffer.data(), 1, *n, raw_file);
    if (absl::Status s = parser.Feed(std::span(buffer.data(), *n)); !s.ok()) {
      status = s;
      break;
    }
    std::fflush(stdout);
  }
  if (raw_file) std::fclose(raw_file);
  if (dumper.joinable()) dumper.join();
  std::printf("%llu events, %s\n", static_cast<unsigned long long>(parser.events()),
              status.ok() ? "ended in order" : std::string(status.message()).c_str());
  return status.ok() || absl::IsOutOfRange(status) ? 0 : 1;
}
