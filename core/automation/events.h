// The automation event bus: every process start and exit, rule firing, collected dump and
// egress result is an Event with a sequence number. The bus keeps a ring of recent events (for
// replay) and hands each new event to every subscriber's queue.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clrdiag::automation {

enum class EventKind {
  kProcessStart,   // a .NET process appeared
  kProcessExit,    // it went away
  kRuleFired,      // a rule's trigger was satisfied and its limits allowed an action
  kRuleThrottled,  // a trigger was satisfied but the limits held the action back
  kDumpCollected,  // the action's dump is in the catalog (dump_id)
  kCollectFailed,  // the action's collection failed (message)
  kEgress,         // one egress of a dump: ok, location or error (egress, message)
  kRuleFinished,   // a rule stopped (action_count reached without window, rule_duration)
  kRuleSkipped,    // a crash dump the rule's filter matches but its `exception` pattern does not
};
const char* EventKindName(EventKind k);  // "process_start", "rule_fired", ...
std::optional<EventKind> ParseEventKind(const std::string& name);

struct Event {
  uint64_t seq = 0;  // 1, 2, ... in publication order (set by the bus)
  absl::Time time;   // set by the bus
  EventKind kind = EventKind::kProcessStart;
  std::string rule;
  pid_t pid = 0;
  // The runtime instance (hex cookie) when known: runtimes known only through a listen port
  // may advertise the same pid (each in its own pid namespace); this tells them apart.
  std::string runtime_cookie;
  int64_t uid = -1;  // the process's real uid (-1: unknown, or no process)
  std::string process_name;
  std::string dump_id;
  std::string egress;
  bool ok = true;       // false for failures (collect_failed, a failed egress)
  std::string message;  // details: what fired, where the dump went, the error
};

// What a subscriber wants; empty fields: everything.
struct EventFilter {
  std::set<EventKind> kinds;
  std::string rule;
  pid_t pid = 0;
  bool Matches(const Event& e) const;
};

class EventBus;

// A subscriber's queue. Bounded: when a slow reader falls `capacity` events behind, the oldest
// are dropped and counted.
class Subscription {
 public:
  ~Subscription();
  // Waits up to `timeout` for events; moves them out. Returns false when the bus closed.
  bool Next(absl::Duration timeout, std::vector<Event>* out);
  uint64_t dropped() const;

 private:
  friend class EventBus;
  Subscription(EventBus* bus, EventFilter filter, size_t capacity)
      : bus_(bus), filter_(std::move(filter)), capacity_(capacity) {}
  void Push(const Event& e);
  void Close();
  EventBus* bus_;
  EventFilter filter_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> queue_;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

class EventBus {
 public:
  explicit EventBus(size_t ring_size = 1000) : ring_size_(ring_size) {}
  ~EventBus();
  // Stamps seq and time (unless time is already set) and delivers. Returns the seq.
  uint64_t Publish(Event e);
  // The ring's events matching `filter`, oldest first.
  std::vector<Event> Recent(const EventFilter& filter) const;
  // A new subscriber; with `replay`, its queue starts with Recent(filter). Unsubscribes when
  // destroyed.
  std::unique_ptr<Subscription> Subscribe(EventFilter filter, bool replay, size_t capacity = 10000);
  // Ends every subscription (Next returns false); for shutdown.
  void Close();

 private:
  friend class Subscription;
  void Unsubscribe(Subscription* s);
  size_t ring_size_;
  mutable std::mutex mu_;
  uint64_t next_seq_ = 1;
  std::deque<Event> ring_;
  std::set<Subscription*> subs_;
  bool closed_ = false;
};

}  // namespace clrdiag::automation
