// EventPipe hub against real .NET processes (HeapApp --stdin, Behaviour.cs requests) on every
// fixture runtime (net8.0 and net9.0 self-contained, net10.0 on the shared runtime): counters
// every interval with plausible values, exception events, exception-count, a target that dies
// mid-session, one shared session for several subscribers.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "core/eventpipe/hub.h"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
using eventpipe::CounterSample;
using eventpipe::ExceptionThrown;
using eventpipe::Hub;
using eventpipe::Needs;
using eventpipe::Subscription;
using eventpipe::Target;

// Everything one subscriber heard, with waits.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<CounterSample> counters;
  std::vector<absl::Time> counter_arrivals;
  std::vector<ExceptionThrown> exceptions;
  std::vector<absl::Time> exception_arrivals;
  std::vector<absl::Status> ended;
  std::vector<absl::Time> ended_arrivals;

  eventpipe::Callbacks Callbacks() {
    return {.on_counter =
                [this](const CounterSample& s) {
                  std::lock_guard<std::mutex> l(mu);
                  counters.push_back(s);
                  counter_arrivals.push_back(absl::Now());
                  cv.notify_all();
                },
            .on_exception =
                [this](const ExceptionThrown& x) {
                  std::lock_guard<std::mutex> l(mu);
                  exceptions.push_back(x);
                  exception_arrivals.push_back(absl::Now());
                  cv.notify_all();
                },
            .on_ended =
                [this](const absl::Status& s) {
                  std::lock_guard<std::mutex> l(mu);
                  ended.push_back(s);
                  ended_arrivals.push_back(absl::Now());
                  cv.notify_all();
                }};
  }
  // Waits until `pred` (called with the lock held) is true.
  template <typename Pred>
  bool WaitUntil(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, [&] { return pred(); });
  }
  std::vector<CounterSample> Named(const std::string& name) {
    std::lock_guard<std::mutex> l(mu);
    std::vector<CounterSample> out;
    for (const auto& s : counters) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
  size_t CountNamed(const std::string& name) {  // with the lock held
    size_t n = 0;
    for (const auto& s : counters) n += s.name == name;
    return n;
  }
};

class EventPipeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fifo_ = dir_ / "stdin";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);  // never blocks, keeps the FIFO open
    ASSERT_GE(fd_, 0);
    SpawnOptions opts;
    opts.stdin_file = fifo_;
    app_ = StartFixture("HeapApp", {"--stdin"}, GetParam(), opts);
    ASSERT_TRUE(app_) << "HeapApp for " << GetParam() << " did not start";
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (app_) {
      app_->Signal(SIGKILL);
      app_->Wait(10s);
      RemoveDiagnosticSockets("/tmp", app_->pid());
    }
  }
  // Sends a behaviour request and waits for its answer line.
  std::string Request(const std::string& line, const std::string& reply) {
    const std::string l = line + "\n";
    EXPECT_EQ(::write(fd_, l.data(), l.size()), static_cast<ssize_t>(l.size()));
    auto got = app_->WaitForLine(reply, 60s);
    EXPECT_TRUE(got.has_value()) << "no " << reply << " after " << line;
    return got.value_or("");
  }
  Target target() const { return Target::Pid(app_->pid()); }

  TempDir dir_{"clrdiag-eventpipe"};
  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<Process> app_;
};

TEST_P(EventPipeTest, CountersEveryIntervalAndTheHeapGrows) {
  Hub hub;
  Recorder r;
  auto sub = hub.Subscribe(target(), Needs{.counter_interval_sec = 1}, r.Callbacks());
  ASSERT_TRUE(sub.ok()) << sub.status();
  // Three samples of each counter, a second apart.
  ASSERT_TRUE(r.WaitUntil([&] { return r.CountNamed("gc-heap-size") >= 3; }, 10s));
  std::vector<CounterSample> heap = r.Named("gc-heap-size");
  for (size_t i = 1; i < heap.size(); ++i) {
    const absl::Duration gap = heap[i].timestamp - heap[i - 1].timestamp;
    EXPECT_GT(gap, absl::Milliseconds(700)) << i;
    EXPECT_LT(gap, absl::Milliseconds(1500)) << i;
  }
  for (const CounterSample& s : heap) {
    EXPECT_EQ(s.provider, "System.Runtime");
    EXPECT_FALSE(s.incrementing);
    EXPECT_GT(s.value, 0);
    EXPECT_LT(s.value, 1000);  // MB; HeapApp --stdin starts small
    // Sample times are wall-clock times of this run.
    EXPECT_LT(absl::AbsDuration(s.timestamp - absl::Now()), absl::Seconds(30));
  }
  for (const CounterSample& s : r.Named("cpu-usage")) {
    EXPECT_GE(s.value, 0);
    EXPECT_LE(s.value, 100);
  }
  for (const CounterSample& s : r.Named("working-set")) EXPECT_GT(s.value, 5);  // MB
  ASSERT_FALSE(r.Named("gen-0-gc-count").empty());
  EXPECT_TRUE(r.Named("gen-0-gc-count")[0].incrementing);

  const double before = heap.back().value;
  Request("alloc 100", "ALLOCATED");
  const absl::Time allocated = absl::Now();
  // Within two intervals a sample shows 100 MiB more (≈ 104.9 MB; allow for other garbage).
  ASSERT_TRUE(r.WaitUntil(
      [&] {
        for (size_t i = 0; i < r.counters.size(); ++i) {
          if (r.counters[i].name == "gc-heap-size" && r.counter_arrivals[i] > allocated &&
              r.counters[i].value > before + 90) {
            return true;
          }
        }
        return false;
      },
      2500ms))
      << "gc-heap-size did not rise by 100 MB within two intervals (was " << before << ")";
  EXPECT_EQ(hub.stats().sessions_started, 1u);
}

TEST_P(EventPipeTest, ExceptionEventWithTypeAndMessage) {
  Hub hub;
  Recorder r;
  auto sub = hub.Subscribe(target(), Needs{.exceptions = true}, r.Callbacks());
  ASSERT_TRUE(sub.ok()) << sub.status();
  const absl::Time before = absl::Now();
  Request("throw System.InvalidOperationException hello", "THREW");
  ASSERT_TRUE(r.WaitUntil([&] { return !r.exceptions.empty(); }, 3s));
  std::lock_guard<std::mutex> l(r.mu);
  ASSERT_EQ(r.exceptions.size(), 1u);
  EXPECT_EQ(r.exceptions[0].type, "System.InvalidOperationException");
  EXPECT_EQ(r.exceptions[0].message, "hello");
  EXPECT_EQ(r.exceptions[0].hresult, 0x80131509u);
  EXPECT_GT(r.exceptions[0].timestamp, before - absl::Seconds(1));
  EXPECT_LT(r.exceptions[0].timestamp, absl::Now() + absl::Seconds(1));
  // Arrives within the runtime's flush period (100 ms) plus scheduling.
  EXPECT_LT(r.exception_arrivals[0] - before, absl::Seconds(2));
}

TEST_P(EventPipeTest, ExceptionCountRisesAfterThrowloop) {
  Hub hub;
  Recorder r;
  auto sub = hub.Subscribe(target(), Needs{.counter_interval_sec = 1}, r.Callbacks());
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(r.WaitUntil([&] { return r.CountNamed("exception-count") >= 2; }, 10s));
  for (const CounterSample& s : r.Named("exception-count")) {
    EXPECT_TRUE(s.incrementing);
    EXPECT_EQ(s.value, 0) << "no exception thrown yet";
  }
  const size_t seen = r.Named("exception-count").size();
  Request("throwloop 200 System.ArgumentException", "THREW");
  // The increments after the loop add up to the 200 thrown, within two intervals.
  ASSERT_TRUE(r.WaitUntil(
      [&] {
        double sum = 0;
        size_t k = 0;
        for (const auto& s : r.counters) {
          if (s.name == "exception-count" && k++ >= seen) sum += s.value;
        }
        return sum >= 200;
      },
      2500ms));
  double sum = 0;
  for (const CounterSample& s : r.Named("exception-count")) sum += s.value;
  EXPECT_EQ(sum, 200);
}

TEST_P(EventPipeTest, TargetCrashingMidSessionEndsTheStream) {
  Hub hub;
  Recorder r;
  auto sub =
      hub.Subscribe(target(), Needs{.counter_interval_sec = 1, .exceptions = true}, r.Callbacks());
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(r.WaitUntil([&] { return !r.counters.empty(); }, 10s));
  Request("crash System.InvalidOperationException boom", "CRASHING");
  ASSERT_TRUE(r.WaitUntil([&] { return !r.ended.empty(); }, 10s));
  EXPECT_TRUE(app_->Wait(10s).has_value());
  std::lock_guard<std::mutex> l(r.mu);
  ASSERT_EQ(r.ended.size(), 1u);
  // Cut without an end tag: OutOfRange, and the message says so.
  EXPECT_TRUE(absl::IsOutOfRange(r.ended[0])) << r.ended[0];
  EXPECT_THAT(std::string(r.ended[0].message()), ::testing::HasSubstr("without its end tag"));
  // The unhandled exception's ExceptionThrown event comes before the end when the runtime's
  // streaming thread (it flushes every 100 ms) gets to send it before the process dies: usually,
  // but not always on a loaded machine (seen in CI), so it is checked only when it came; the
  // clean end of the stream above is what must always hold.
  if (r.exceptions.empty()) {
    std::cerr << GetParam() << ": the crash's ExceptionThrown did not arrive before the end\n";
  } else {
    EXPECT_EQ(r.exceptions.back().type, "System.InvalidOperationException");
    EXPECT_EQ(r.exceptions.back().message, "boom");
    EXPECT_LE(r.exception_arrivals.back(), r.ended_arrivals[0]);
    std::cerr << GetParam() << ": ExceptionThrown of the crash arrived "
              << absl::FormatDuration(r.ended_arrivals[0] - r.exception_arrivals.back())
              << " before the end of the stream\n";
  }
  // Nothing more after the end; the hub has no live session, and unsubscribing is fine.
  EXPECT_EQ(hub.stats().live_sessions, 0u);
}

TEST_P(EventPipeTest, KilledTargetEndsTheStream) {
  Hub hub;
  Recorder r;
  auto sub = hub.Subscribe(target(), Needs{.counter_interval_sec = 1}, r.Callbacks());
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(r.WaitUntil([&] { return !r.counters.empty(); }, 10s));
  app_->Signal(SIGKILL);
  ASSERT_TRUE(r.WaitUntil([&] { return !r.ended.empty(); }, 10s));
  {
    std::lock_guard<std::mutex> l(r.mu);
    EXPECT_TRUE(absl::IsOutOfRange(r.ended[0])) << r.ended[0];
  }
  sub->reset();
  EXPECT_EQ(hub.stats().processes, 0u);
  // A new subscription to the dead pid fails cleanly.
  app_->Wait(10s);
  auto again = hub.Subscribe(target(), Needs{.counter_interval_sec = 1}, Recorder().Callbacks());
  EXPECT_FALSE(again.ok());
}

TEST_P(EventPipeTest, SubscribersShareOneSession) {
  Hub hub;
  Recorder a, b, c;
  auto sa = hub.Subscribe(target(), Needs{.counter_interval_sec = 2}, a.Callbacks());
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(hub.stats().sessions_started, 1u);
  const uint64_t first = hub.SessionId(target());
  EXPECT_NE(first, 0u);

  // b needs exceptions and a shorter interval: the session is re-opened with the union.
  auto sb =
      hub.Subscribe(target(), Needs{.counter_interval_sec = 1, .exceptions = true}, b.Callbacks());
  ASSERT_TRUE(sb.ok()) << sb.status();
  EXPECT_EQ(hub.stats().sessions_started, 2u);
  const uint64_t second = hub.SessionId(target());
  EXPECT_NE(second, first);
  // c's needs are covered already: no new session.
  auto sc = hub.Subscribe(target(), Needs{.exceptions = true}, c.Callbacks());
  ASSERT_TRUE(sc.ok()) << sc.status();
  EXPECT_EQ(hub.stats().sessions_started, 2u);
  EXPECT_EQ(hub.SessionId(target()), second);
  Hub::Stats st = hub.stats();
  EXPECT_EQ(st.processes, 1u);
  EXPECT_EQ(st.live_sessions, 1u);  // the first one was stopped

  Request("throw System.InvalidOperationException shared", "THREW");
  ASSERT_TRUE(b.WaitUntil([&] { return !b.exceptions.empty(); }, 3s));
  ASSERT_TRUE(c.WaitUntil([&] { return !c.exceptions.empty(); }, 3s));
  EXPECT_EQ(b.exceptions[0].message, "shared");
  EXPECT_EQ(c.exceptions[0].message, "shared");
  EXPECT_TRUE(a.exceptions.empty());  // a did not ask for exceptions
  // Counters at the union's interval (1 s) reach a and b, not c.
  ASSERT_TRUE(a.WaitUntil([&] { return a.CountNamed("cpu-usage") >= 2; }, 10s));
  ASSERT_TRUE(b.WaitUntil([&] { return b.CountNamed("cpu-usage") >= 2; }, 10s));
  EXPECT_TRUE(c.counters.empty());

  // Dropping b (a's counters and c's exceptions remain), then c (a's counters only): each
  // change of the union re-opens the session.
  sb->reset();
  EXPECT_EQ(hub.stats().sessions_started, 3u);
  sc->reset();
  EXPECT_EQ(hub.stats().sessions_started, 4u);
  EXPECT_EQ(hub.stats().live_sessions, 1u);
  const size_t had = a.Named("cpu-usage").size();
  ASSERT_TRUE(a.WaitUntil([&] { return a.CountNamed("cpu-usage") >= had + 2; }, 10s));
  // The runtime keeps publishing every second (it never raises a provider's interval while
  // it runs: Series still says "Interval=1000"), but a gets one sample per 2 s.
  std::vector<CounterSample> cpu = a.Named("cpu-usage");
  for (size_t i = 1; i < cpu.size(); ++i) {
    EXPECT_GT(cpu[i].timestamp - cpu[i - 1].timestamp, absl::Milliseconds(1500)) << i;
  }

  // The last one leaves: the session ends, nothing is left.
  sa->reset();
  st = hub.stats();
  EXPECT_EQ(st.processes, 0u);
  EXPECT_EQ(st.live_sessions, 0u);
  EXPECT_EQ(hub.SessionId(target()), 0u);
  // The process is unharmed by all this.
  Request("alloc 1", "ALLOCATED");
}

TEST_P(EventPipeTest, UnsubscribingFromACallbackIsSafe) {
  Hub hub;
  Recorder r;
  std::unique_ptr<Subscription> sub;
  std::mutex mu;
  std::atomic<int> calls{0};
  auto cbs = r.Callbacks();
  auto inner = cbs.on_counter;
  cbs.on_counter = [&](const CounterSample& s) {
    calls.fetch_add(1);
    std::lock_guard<std::mutex> l(mu);
    sub.reset();  // drop our own subscription from inside its callback
  };
  {
    std::lock_guard<std::mutex> l(mu);
    auto s = hub.Subscribe(target(), Needs{.counter_interval_sec = 1}, cbs);
    ASSERT_TRUE(s.ok()) << s.status();
    sub = std::move(*s);
  }
  for (int i = 0; i < 100 && calls.load() == 0; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(calls.load(), 1);
  for (int i = 0; i < 50 && hub.stats().live_sessions != 0; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(hub.stats().live_sessions, 0u);
  EXPECT_EQ(calls.load(), 1);  // nothing after it unsubscribed
}

// The pid-keyed adapter a rules engine plugs in: counters, exceptions and the exit, with the pid.
TEST_P(EventPipeTest, PidSinkForARulesEngine) {
  Hub hub;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::tuple<pid_t, std::string, std::string, double>> samples;
  std::vector<std::tuple<pid_t, std::string, std::string>> exceptions;
  std::vector<std::pair<pid_t, absl::Status>> exits;
  const pid_t pid = app_->pid();
  auto sub = eventpipe::SubscribePid(
      hub, pid, Needs{.counter_interval_sec = 1, .exceptions = true},
      {.on_counter_sample =
           [&](pid_t p, const std::string& provider, const std::string& counter, absl::Time,
               double value) {
             std::lock_guard<std::mutex> l(mu);
             samples.emplace_back(p, provider, counter, value);
             cv.notify_all();
           },
       .on_exception =
           [&](pid_t p, const std::string& type, const std::string& message, absl::Time) {
             std::lock_guard<std::mutex> l(mu);
             exceptions.emplace_back(p, type, message);
             cv.notify_all();
           },
       .on_process_exit =
           [&](pid_t p, const absl::Status& why) {
             std::lock_guard<std::mutex> l(mu);
             exits.emplace_back(p, why);
             cv.notify_all();
           }});
  ASSERT_TRUE(sub.ok()) << sub.status();
  Request("throw Fixture.BehaviourException sink", "THREW");
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, 10s, [&] { return !exceptions.empty() && !samples.empty(); }));
  EXPECT_EQ(exceptions[0],
            std::make_tuple(pid, std::string("Fixture.BehaviourException"), std::string("sink")));
  EXPECT_EQ(std::get<0>(samples[0]), pid);
  EXPECT_EQ(std::get<1>(samples[0]), "System.Runtime");
  l.unlock();
  app_->Signal(SIGKILL);
  l.lock();
  ASSERT_TRUE(cv.wait_for(l, 10s, [&] { return !exits.empty(); }));
  EXPECT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].first, pid);
  EXPECT_TRUE(absl::IsOutOfRange(exits[0].second)) << exits[0].second;
}

TEST(EventPipeErrors, NoSuchProcessOrSocket) {
  Hub hub;
  auto s = hub.Subscribe(Target::Pid(999999999), Needs{.counter_interval_sec = 1}, {});
  EXPECT_FALSE(s.ok());
  TempDir dir("clrdiag-eventpipe");
  auto t = hub.Subscribe(Target::Socket(dir / "no-socket"), Needs{.exceptions = true}, {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::IsNotFound(t.status())) << t.status();
  auto u = hub.Subscribe(Target::Socket(dir / "x"), Needs{}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(u.status())) << u.status();
  EXPECT_EQ(hub.stats().processes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, EventPipeTest, ::testing::ValuesIn(FixtureRuntimes()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& c : n) {
                             if (c == '.') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace clrdiag::testing
