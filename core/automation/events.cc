#include "core/automation/events.h"

#include <utility>

#include "absl/time/clock.h"

namespace clrdiag::automation {
namespace {

struct KindName {
  EventKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {EventKind::kProcessStart, "process_start"},
    {EventKind::kProcessExit, "process_exit"},
    {EventKind::kRuleFired, "rule_fired"},
    {EventKind::kRuleThrottled, "rule_throttled"},
    {EventKind::kDumpCollected, "dump_collected"},
    {EventKind::kCollectFailed, "collect_failed"},
    {EventKind::kEgress, "egress"},
    {EventKind::kRuleFinished, "rule_finished"},
    {EventKind::kRuleSkipped, "rule_skipped"},
};

}  // namespace

const char* EventKindName(EventKind k) {
  for (const auto& kn : kKindNames) {
    if (kn.kind == k) return kn.name;
  }
  return "?";
}

std::optional<EventKind> ParseEventKind(const std::string& name) {
  for (const auto& kn : kKindNames) {
    if (name == kn.name) return kn.kind;
  }
  return std::nullopt;
}

bool EventFilter::Matches(const Event& e) const {
  if (!kinds.empty() && !kinds.count(e.kind)) return false;
  if (!rule.empty() && e.rule != rule) return false;
  if (pid != 0 && e.pid != pid) return false;
  return true;
}

Subscription::~Subscription() {
  if (bus_) bus_->Unsubscribe(this);
}

bool Subscription::Next(absl::Duration timeout, std::vector<Event>* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
               [&] { return !queue_.empty() || closed_; });
  while (!queue_.empty()) {
    out->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return !closed_;
}

uint64_t Subscription::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void Subscription::Push(const Event& e) {
  if (!filter_.Matches(e)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(e);
    while (queue_.size() > capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
  }
  cv_.notify_all();
}

void Subscription::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

EventBus::~EventBus() { Close(); }

uint64_t EventBus::Publish(Event e) {
  std::lock_guard<std::mutex> lock(mu_);
  e.seq = next_seq_++;
  if (e.time == absl::Time()) e.time = absl::Now();
  for (Subscription* s : subs_) s->Push(e);
  ring_.push_back(std::move(e));
  while (ring_.size() > ring_size_) ring_.pop_front();
  return ring_.back().seq;
}

std::vector<Event> EventBus::Recent(const EventFilter& filter) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> out;
  for (const auto& e : ring_) {
    if (filter.Matches(e)) out.push_back(e);
  }
  return out;
}

std::unique_ptr<Subscription> EventBus::Subscribe(EventFilter filter, bool replay,
                                                  size_t capacity) {
  std::unique_ptr<Subscription> s(new Subscription(this, std::move(filter), capacity));
  std::lock_guard<std::mutex> lock(mu_);
  if (replay) {
    for (const auto& e : ring_) s->Push(e);
  }
  if (closed_) {
    s->Close();
  } else {
    subs_.insert(s.get());
  }
  return s;
}

void EventBus::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  for (Subscription* s : subs_) s->Close();
}

void EventBus::Unsubscribe(Subscription* s) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.erase(s);
}

}  // namespace clrdiag::automation
