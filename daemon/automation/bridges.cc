#include "daemon/automation/bridges.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/egress/s3_upload.h"
#include "daemon/automation/crash_watch.h"

namespace clrdiag::daemon_automation {

EventPipeBridge::EventPipeBridge(automation::Engine* engine, eventpipe::Hub* hub,
                                 std::function<void(bool, const std::string&)> log,
                                 absl::Duration retry_interval, CrashWatcher* crash,
                                 std::function<void(pid_t)> on_crash_session,
                                 ListenEndpointFn listen_endpoint)
    : engine_(engine),
      hub_(hub),
      log_(std::move(log)),
      retry_interval_(retry_interval),
      crash_(crash),
      on_crash_session_(std::move(on_crash_session)),
      listen_endpoint_(std::move(listen_endpoint)) {
  thread_ = std::thread([this] { Loop(); });
}

EventPipeBridge::~EventPipeBridge() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  held_.clear();  // unsubscribes: the hub stops the sessions
}

void EventPipeBridge::Sync() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void EventPipeBridge::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoMilliseconds(retry_interval_),
                   [this] { return wake_ || stop_; });
      if (stop_) return;
      wake_ = false;
    }
    Reconcile();
  }
}

void EventPipeBridge::Reconcile() {
  std::set<std::string> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended.swap(ended_);
  }
  for (const std::string& key : ended) held_.erase(key);
  std::map<std::string, automation::ProcessNeeds> want;
  for (const auto& n : engine_->Needs()) {
    if (!n.counters.empty() || n.exceptions || n.crash) want[n.target] = n;
  }
  // Failures are remembered (to log each once) only for targets still wanted.
  std::erase_if(failed_, [&](const auto& f) { return !want.count(f.first); });
  for (auto it = held_.begin(); it != held_.end();) {
    auto w = want.find(it->first);
    if (w == want.end() || !(w->second == it->second.needs)) {
      it = held_.erase(it);  // no longer needed, or needed differently: re-subscribed below
    } else {
      ++it;
    }
  }
  for (const auto& entry : want) {
    // Not a structured binding: the lambdas below capture `key` (by value), which clang before
    // 16 cannot do with a binding.
    const std::string& key = entry.first;
    const auto& n = entry.second;
    if (held_.count(key) || ended.count(key)) continue;
    const std::string who = n.listen_only
                                ? absl::StrCat("pid ", n.pid, " (runtime ", n.runtime_cookie, ")")
                                : absl::StrCat("pid ", n.pid);
    eventpipe::Needs needs;
    needs.counter_providers.clear();
    absl::Duration interval = absl::InfiniteDuration();
    for (const auto& [provider, every] : n.counters) {
      needs.counter_providers.push_back(provider);
      interval = std::min(interval, every);
    }
    if (!n.counters.empty()) {
      needs.counter_interval_sec =
          std::max(1, static_cast<int>(std::lround(absl::ToDoubleSeconds(interval))));
    }
    needs.exceptions = n.exceptions;
    // Way 2 reads the process in /proc (its death, its runtime files): not for listen-only.
    needs.exception_flow = n.crash && crash_ != nullptr && !n.listen_only;
    if (needs.counter_interval_sec == 0 && !needs.exceptions && !needs.exception_flow) continue;
    eventpipe::Target target = eventpipe::Target::Pid(n.pid);
    if (n.listen_only) {
      absl::StatusOr<std::shared_ptr<ipc::Endpoint>> ep =
          listen_endpoint_ ? listen_endpoint_(n)
                           : absl::StatusOr<std::shared_ptr<ipc::Endpoint>>(
                                 absl::UnavailableError("no listen port to reach it through"));
      if (!ep.ok()) {
        std::string why(ep.status().message());
        if (failed_[key] != why) {
          failed_[key] = why;
          log_(true, absl::StrCat("automation: no EventPipe session on ", who, " (", why, ")"));
        }
        continue;
      }
      target = eventpipe::Target::Endpoint(key, *std::move(ep));
    }
    eventpipe::PidSink sink;
    automation::Engine* engine = engine_;
    sink.on_counter_sample = [engine, key](pid_t, const std::string& provider,
                                           const std::string& counter, absl::Time ts, double v) {
      engine->OnCounterSample(key, provider, counter, ts, v);
    };
    if (n.exceptions) {
      sink.on_exception = [engine, key](pid_t, const std::string& type, const std::string& message,
                                        absl::Time ts) {
        engine->OnException(key, type, message, ts);
      };
    }
    CrashWatcher* crash = needs.exception_flow ? crash_ : nullptr;
    if (crash != nullptr) {
      sink.on_exception_thrown = [crash, key](pid_t p, const eventpipe::ExceptionThrown& x) {
        crash->OnThrown(p, key, x);
      };
      sink.on_exception_flow = [crash](pid_t p, const eventpipe::ExceptionFlow& f) {
        crash->OnFlow(p, f);
      };
    }
    sink.on_process_exit = [this, engine, crash, key](pid_t p, const absl::Status&) {
      if (crash != nullptr) crash->OnExit(p);
      engine->OnProcessExit(key);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ended_.insert(key);
      }
    };
    auto sub = eventpipe::SubscribeSink(*hub_, target, n.pid, needs, std::move(sink));
    if (!sub.ok()) {
      std::string why(sub.status().message());
      if (failed_[key] != why) {
        failed_[key] = why;
        log_(true, absl::StrCat("automation: no EventPipe session on ", who, " (", why,
                                "); counter and exception rules cannot see it yet"));
      }
      continue;
    }
    failed_.erase(key);
    log_(false, absl::StrCat(
                    "automation: EventPipe session on ", who,
                    needs.counter_interval_sec > 0
                        ? absl::StrCat(", counters every ", needs.counter_interval_sec, " s")
                        : std::string(),
                    needs.exceptions ? ", exceptions" : "",
                    needs.exception_flow ? ", crash capture (exceptions and their handlers)" : ""));
    held_[key] = Held{n, std::move(*sub)};
    if (needs.exception_flow && on_crash_session_) on_crash_session_(n.pid);
  }
}

namespace {

class S3Egress : public automation::EgressTarget {
 public:
  S3Egress(std::string name, std::string prefix, egress::S3Config config)
      : name_(std::move(name)), prefix_(std::move(prefix)), config_(std::move(config)) {}
  const std::string& name() const override { return name_; }
  absl::StatusOr<std::string> Send(const automation::EgressItem& item) override {
    auto key = automation::EgressObjectKey(prefix_, item);
    if (!key.ok()) return key.status();
    auto r = egress::UploadFileToS3(config_, item.dump_path, *key, egress::S3UploadOptions{});
    if (!r.ok()) return r.status();
    return r->url;
  }

 private:
  std::string name_;
  std::string prefix_;
  egress::S3Config config_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<automation::EgressTarget>> MakeS3Egress(
    const automation::EgressConfig& c) {
  egress::S3Config s3;
  s3.endpoint = c.endpoint;
  s3.bucket = c.bucket;
  s3.region = c.region;
  s3.access_key_id = c.access_key_id;
  s3.secret_access_key_file = c.secret_access_key_file;
  s3.path_style = c.path_style;
  // The prefix is expanded per dump (EgressObjectKey), so the client gets the whole key.
  if (absl::Status st = egress::ValidateS3Config(s3); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("egress ", c.name, ": ", st.message()));
  }
  return std::unique_ptr<automation::EgressTarget>(new S3Egress(c.name, c.prefix, s3));
}

}  // namespace clrdiag::daemon_automation
