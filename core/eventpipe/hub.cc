#include "core/eventpipe/hub.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/procfs/discovery.h"

namespace clrdiag::eventpipe {

struct HubCounters {
  std::atomic<uint64_t> sessions_started{0};
  std::atomic<uint64_t> events{0};
  std::atomic<size_t> live{0};
};

namespace {

// True on a session's reader thread (callbacks run there).
thread_local bool on_reader_thread = false;

struct Subscriber {
  Needs needs;
  Callbacks callbacks;
  bool ended = false;
  std::map<std::string, absl::Time> last_sample;  // provider/counter -> last delivered
};

// The normalized union of needs: what decides whether a session must be re-opened.
struct Union {
  int interval_sec = 0;
  std::set<std::string> providers;
  bool exceptions = false;
  bool exception_flow = false;
  bool empty() const { return interval_sec == 0 && !exceptions; }
  bool operator==(const Union& o) const {
    return interval_sec == o.interval_sec && providers == o.providers &&
           exceptions == o.exceptions && exception_flow == o.exception_flow;
  }
};

Needs ToNeeds(const Union& u) {
  Needs n;
  n.counter_interval_sec = u.interval_sec;
  n.counter_providers.assign(u.providers.begin(), u.providers.end());
  n.exceptions = u.exceptions;
  n.exception_flow = u.exception_flow;
  return n;
}

}  // namespace

// One running session and its reader thread.
struct Running {
  std::unique_ptr<Session> session;
  Union needs;
  std::thread reader;
  UniqueFd wake_read, wake_write;
  std::atomic<bool> retired{false};
};

struct ProcessState {
  Target target;
  std::string key;
  std::shared_ptr<ipc::Endpoint> endpoint;
  Hub::Options options;
  std::shared_ptr<HubCounters> counters;

  std::mutex control;             // subscribe / unsubscribe / re-open, one at a time
  std::recursive_mutex dispatch;  // held while callbacks run and while `subs` changes
  std::map<uint64_t, Subscriber> subs;
  std::shared_ptr<Running> current;
  std::weak_ptr<ProcessState> self;
  std::atomic<bool> ended{false};  // the target's stream ended on its own (target gone)
};

namespace {

Union UnionOf(const ProcessState& st) {
  Union u;
  for (const auto& [id, s] : st.subs) {
    if (s.ended) continue;
    if (s.needs.counter_interval_sec > 0) {
      u.interval_sec = u.interval_sec == 0 ? s.needs.counter_interval_sec
                                           : std::min(u.interval_sec, s.needs.counter_interval_sec);
      u.providers.insert(s.needs.counter_providers.begin(), s.needs.counter_providers.end());
    }
    u.exceptions |= s.needs.exceptions || s.needs.exception_flow;
    u.exception_flow |= s.needs.exception_flow;
  }
  if (u.interval_sec == 0) u.providers.clear();
  return u;
}

std::vector<uint64_t> SubscriberIds(const ProcessState& st) {
  std::vector<uint64_t> ids;
  ids.reserve(st.subs.size());
  for (const auto& [id, sub] : st.subs) ids.push_back(id);
  return ids;
}

void Dispatch(ProcessState& st, const Running& run, const TraceInfo& trace, const Event& e) {
  if (run.retired.load()) return;  // a newer session delivers from now on
  const EventMetadata& md = *e.metadata;
  if (run.needs.interval_sec > 0 && IsCounterEvent(md) && run.needs.providers.count(md.provider)) {
    absl::StatusOr<CounterSample> s = DecodeCounter(e, trace);
    if (!s.ok()) return;
    std::lock_guard<std::recursive_mutex> lock(st.dispatch);
    // A callback may drop its own subscription: walk a snapshot of the ids.
    for (uint64_t id : SubscriberIds(st)) {
      auto it = st.subs.find(id);
      if (it == st.subs.end()) continue;
      Subscriber& sub = it->second;
      if (sub.ended || sub.needs.counter_interval_sec == 0 || !sub.callbacks.on_counter) continue;
      const auto& p = sub.needs.counter_providers;
      if (std::find(p.begin(), p.end(), s->provider) == p.end()) continue;
      // The runtime publishes at the smallest interval any session (ours or another tool's)
      // asked for, and keeps it after that session ends; a subscriber that asked for a longer
      // one gets a sample per counter once its own interval has (nearly) passed.
      absl::Time& last = sub.last_sample[s->provider + '/' + s->name];
      const absl::Duration want = absl::Seconds(sub.needs.counter_interval_sec);
      if (last != absl::InfinitePast() && s->timestamp - last < want * 3 / 4) continue;
      last = s->timestamp;
      auto cb = sub.callbacks.on_counter;
      cb(*s);
    }
    return;
  }
  if (run.needs.exception_flow && IsExceptionFlowEvent(md)) {
    absl::StatusOr<ExceptionFlow> f = DecodeExceptionFlow(e, trace);
    if (!f.ok()) return;
    std::lock_guard<std::recursive_mutex> lock(st.dispatch);
    for (uint64_t id : SubscriberIds(st)) {
      auto it = st.subs.find(id);
      if (it == st.subs.end()) continue;
      Subscriber& sub = it->second;
      if (sub.ended || !sub.needs.exception_flow || !sub.callbacks.on_exception_flow) continue;
      auto cb = sub.callbacks.on_exception_flow;
      cb(*f);
    }
    return;
  }
  if (run.needs.exceptions && IsExceptionThrownEvent(md)) {
    absl::StatusOr<ExceptionThrown> x = DecodeExceptionThrown(e, trace);
    if (!x.ok()) return;
    std::lock_guard<std::recursive_mutex> lock(st.dispatch);
    for (uint64_t id : SubscriberIds(st)) {
      auto it = st.subs.find(id);
      if (it == st.subs.end()) continue;
      Subscriber& sub = it->second;
      if (sub.ended || !(sub.needs.exceptions || sub.needs.exception_flow) ||
          !sub.callbacks.on_exception) {
        continue;
      }
      auto cb = sub.callbacks.on_exception;
      cb(*x);
    }
  }
}

void ReaderLoop(std::shared_ptr<ProcessState> st, std::shared_ptr<Running> run) {
  on_reader_thread = true;
  NettraceParser* self = nullptr;
  NettraceParser parser(NettraceParser::Callbacks{
      .on_trace = nullptr,
      .on_event =
          [&](const Event& e) {
            st->counters->events.fetch_add(1, std::memory_order_relaxed);
            Dispatch(*st, *run, self->trace(), e);
          },
  });
  self = &parser;

  std::vector<uint8_t> buffer(64 << 10);
  absl::Status status;
  absl::Time drain_deadline = absl::InfiniteFuture();
  for (;;) {
    if (run->retired.load() && drain_deadline == absl::InfiniteFuture()) {
      drain_deadline = absl::Now() + st->options.stop_timeout;
    }
    int timeout_ms = -1;
    if (drain_deadline != absl::InfiniteFuture()) {
      const absl::Duration left = drain_deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;  // retired and the runtime never closed it
      timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    }
    pollfd fds[2] = {{.fd = run->session->fd(), .events = POLLIN, .revents = 0},
                     {.fd = run->wake_read.get(), .events = POLLIN, .revents = 0}};
    if (::poll(fds, 2, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, "poll");
      break;
    }
    if (fds[1].revents != 0) {
      char drain[16];
      while (::read(run->wake_read.get(), drain, sizeof(drain)) > 0) {
      }
    }
    if (fds[0].revents == 0) continue;
    absl::StatusOr<size_t> n = run->session->Read(buffer, absl::Now());
    if (!n.ok()) {
      if (absl::IsDeadlineExceeded(n.status())) continue;
      status = n.status();
      break;
    }
    if (*n == 0) {
      status = parser.AtEof();
      break;
    }
    if (absl::Status s = parser.Feed(std::span(buffer.data(), *n)); !s.ok()) {
      status = s;
      break;
    }
  }
  st->counters->live.fetch_sub(1);
  if (run->retired.load()) return;  // stopped on purpose: nobody needs to hear of it
  // The stream ended on its own: the target exited (or broke the stream).
  st->ended.store(true);
  std::vector<std::function<void(const absl::Status&)>> ended;
  {
    std::lock_guard<std::recursive_mutex> lock(st->dispatch);
    for (auto& [id, sub] : st->subs) {
      if (sub.ended) continue;
      sub.ended = true;
      if (sub.callbacks.on_ended) ended.push_back(sub.callbacks.on_ended);
    }
    const absl::Status final_status =
        status.ok()
            ? absl::OkStatus()
            : absl::Status(status.code(), absl::StrCat("EventPipe session ", run->session->id(),
                                                       " on ", st->key, ": ", status.message()));
    // Run the callbacks under the dispatch lock: a concurrent unsubscribe waits for them.
    for (auto& cb : ended) cb(final_status);
  }
}

// Marks `run` retired, asks the runtime to stop it and waits for its reader (unless called on
// that reader, which then ends by itself).
void Retire(ProcessState& st, const std::shared_ptr<Running>& run) {
  if (!run) return;
  run->retired.store(true);
  if (run->reader.joinable() && !st.ended.load()) {
    // The process may be gone already: then the stream ends by itself.
    (void)run->session->Stop(st.options.stop_timeout);
  }
  const char one = 1;
  (void)!::write(run->wake_write.get(), &one, 1);
  if (!run->reader.joinable()) return;
  if (run->reader.get_id() == std::this_thread::get_id()) {
    run->reader.detach();
  } else {
    run->reader.join();
  }
}

// With st.control held: makes the running session match the union of the needs.
absl::Status ReconcileState(ProcessState& st) {
  Union want;
  {
    std::lock_guard<std::recursive_mutex> lock(st.dispatch);
    want = UnionOf(st);
  }
  if (want.empty() || st.ended.load()) {
    std::shared_ptr<Running> old = std::move(st.current);
    st.current.reset();
    Retire(st, old);
    if (!want.empty()) {
      return absl::UnavailableError(
          absl::StrCat("the EventPipe stream of ", st.key, " has ended (process exited?)"));
    }
    return absl::OkStatus();
  }
  if (st.current && st.current->needs == want) return absl::OkStatus();

  auto run = std::make_shared<Running>();
  run->needs = want;
  ASSIGN_OR_RETURN(
      run->session,
      Session::Start(st.endpoint, SessionOptionsFor(ToNeeds(want), st.options.buffer_mb),
                     st.options.start_timeout));
  st.counters->sessions_started.fetch_add(1);
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    absl::Status err = ErrnoStatus(errno, "pipe2");
    (void)run->session->Stop(st.options.stop_timeout);
    return err;
  }
  run->wake_read.Reset(p[0]);
  run->wake_write.Reset(p[1]);
  std::shared_ptr<Running> old = std::move(st.current);
  st.current = run;
  st.counters->live.fetch_add(1);  // the reader takes it back when its stream ends
  run->reader = std::thread(ReaderLoop, st.self.lock(), run);
  Retire(st, old);
  return absl::OkStatus();
}

}  // namespace

SessionOptions SessionOptionsFor(const Needs& needs, uint32_t buffer_mb) {
  SessionOptions o;
  o.buffer_mb = buffer_mb;
  if (needs.counter_interval_sec > 0) {
    for (const std::string& p : needs.counter_providers) {
      o.providers.push_back(Provider{
          .name = p,
          .keywords = 0,
          .level = 4,
          .arguments = absl::StrCat("EventCounterIntervalSec=", needs.counter_interval_sec)});
    }
  }
  if (needs.exceptions || needs.exception_flow) {
    // ExceptionThrown_V1 is logged at level Error (2); the catch/filter/stop events at
    // Informational (4).
    o.providers.push_back(Provider{.name = kRuntimeProvider,
                                   .keywords = kExceptionKeyword,
                                   .level = needs.exception_flow ? 4u : 2u,
                                   .arguments = ""});
  }
  return o;
}

absl::StatusOr<std::unique_ptr<Subscription>> SubscribePid(Hub& hub, pid_t pid, const Needs& needs,
                                                           PidSink sink) {
  return SubscribeSink(hub, Target::Pid(pid), pid, needs, std::move(sink));
}

absl::StatusOr<std::unique_ptr<Subscription>> SubscribeSink(Hub& hub, const Target& target,
                                                            pid_t pid, const Needs& needs,
                                                            PidSink sink) {
  auto shared = std::make_shared<PidSink>(std::move(sink));
  Callbacks cb;
  if (shared->on_counter_sample) {
    cb.on_counter = [pid, shared](const CounterSample& s) {
      shared->on_counter_sample(pid, s.provider, s.name, s.timestamp, s.value);
    };
  }
  if (shared->on_exception || shared->on_exception_thrown) {
    cb.on_exception = [pid, shared](const ExceptionThrown& x) {
      if (shared->on_exception_thrown) shared->on_exception_thrown(pid, x);
      if (shared->on_exception) shared->on_exception(pid, x.type, x.message, x.timestamp);
    };
  }
  if (shared->on_exception_flow) {
    cb.on_exception_flow = [pid, shared](const ExceptionFlow& f) {
      shared->on_exception_flow(pid, f);
    };
  }
  if (shared->on_process_exit) {
    cb.on_ended = [pid, shared](const absl::Status& s) { shared->on_process_exit(pid, s); };
  }
  return hub.Subscribe(target, needs, std::move(cb));
}

std::string Target::Key() const {
  if (endpoint) return "endpoint " + key;
  return socket_path.empty() ? absl::StrCat("pid ", pid) : socket_path;
}

Hub::Hub() : Hub(Options{}) {}

Hub::Hub(Options options)
    : options_(std::move(options)), counters_(std::make_shared<HubCounters>()) {
  if (!options_.resolve) {
    options_.resolve = [](pid_t pid) -> absl::StatusOr<std::shared_ptr<ipc::Endpoint>> {
      procfs::ProcFs fs;
      ASSIGN_OR_RETURN(procfs::DiagnosticSocket socket, procfs::FindDiagnosticSocket(fs, pid));
      return std::shared_ptr<ipc::Endpoint>(std::make_shared<ipc::SocketEndpoint>(socket.path));
    };
  }
}

Hub::~Hub() {
  std::map<std::string, std::shared_ptr<ProcessState>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(processes_);
  }
  for (auto& [key, st] : all) {
    std::lock_guard<std::mutex> control(st->control);
    {
      std::lock_guard<std::recursive_mutex> lock(st->dispatch);
      st->subs.clear();
    }
    (void)ReconcileState(*st);
  }
}

absl::StatusOr<std::unique_ptr<Subscription>> Hub::Subscribe(const Target& target,
                                                             const Needs& needs,
                                                             Callbacks callbacks) {
  if (target.pid <= 0 && target.socket_path.empty() && !target.endpoint) {
    return absl::InvalidArgumentError("subscribe: no pid, no socket path and no endpoint");
  }
  if (needs.counter_interval_sec < 0) {
    return absl::InvalidArgumentError("subscribe: negative counter interval");
  }
  if (needs.counter_interval_sec == 0 && !needs.exceptions && !needs.exception_flow) {
    return absl::InvalidArgumentError("subscribe: neither counters nor exceptions asked for");
  }
  const std::string key = target.Key();
  std::shared_ptr<ProcessState> st;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    auto it = processes_.find(key);
    if (it != processes_.end() && !it->second->ended.load()) st = it->second;
  }
  if (!st) {
    auto fresh = std::make_shared<ProcessState>();
    fresh->target = target;
    fresh->key = key;
    fresh->options = options_;
    fresh->counters = counters_;
    fresh->self = fresh;
    if (target.endpoint) {
      fresh->endpoint = target.endpoint;
    } else if (target.socket_path.empty()) {
      ASSIGN_OR_RETURN(fresh->endpoint, options_.resolve(target.pid));
    } else {
      fresh->endpoint = std::make_shared<ipc::SocketEndpoint>(target.socket_path);
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(key);
    if (it != processes_.end() && !it->second->ended.load()) {
      st = it->second;  // another thread made it meanwhile
    } else {
      processes_[key] = fresh;
      st = fresh;
    }
  }
  std::lock_guard<std::mutex> control(st->control);
  {
    std::lock_guard<std::recursive_mutex> lock(st->dispatch);
    st->subs[id] = Subscriber{needs, std::move(callbacks), false, {}};
  }
  if (absl::Status s = ReconcileState(*st); !s.ok()) {
    {
      std::lock_guard<std::recursive_mutex> lock(st->dispatch);
      st->subs.erase(id);
    }
    (void)ReconcileState(*st);
    return s;
  }
  return std::unique_ptr<Subscription>(new Subscription(this, st, id));
}

void Hub::Unsubscribe(const std::shared_ptr<ProcessState>& st, uint64_t id) {
  {
    std::lock_guard<std::recursive_mutex> lock(st->dispatch);
    st->subs.erase(id);
  }
  if (on_reader_thread) {
    // Inside a callback: re-opening or stopping the session waits for the reader, which is
    // this thread; do it on another one.
    std::thread([st] {
      std::lock_guard<std::mutex> control(st->control);
      (void)ReconcileState(*st);
    }).detach();
    return;
  }
  bool empty;
  {
    std::lock_guard<std::mutex> control(st->control);
    (void)ReconcileState(*st);
    std::lock_guard<std::recursive_mutex> lock(st->dispatch);
    empty = st->subs.empty();
  }
  if (empty) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(st->key);
    if (it != processes_.end() && it->second == st) processes_.erase(it);
  }
}

Subscription::~Subscription() { hub_->Unsubscribe(state_, id_); }

Hub::Stats Hub::stats() const {
  Stats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, st] : processes_) {
      std::lock_guard<std::recursive_mutex> d(st->dispatch);
      if (!st->subs.empty()) ++s.processes;
    }
  }
  s.live_sessions = counters_->live.load();
  s.sessions_started = counters_->sessions_started.load();
  s.events = counters_->events.load();
  return s;
}

uint64_t Hub::SessionId(const Target& target) const {
  std::shared_ptr<ProcessState> st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = processes_.find(target.Key());
    if (it == processes_.end()) return 0;
    st = it->second;
  }
  std::lock_guard<std::mutex> control(st->control);
  return st->current ? st->current->session->id() : 0;
}

}  // namespace clrdiag::eventpipe
