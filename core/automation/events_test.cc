#include "core/automation/events.h"

#include <gtest/gtest.h>

#include <thread>

namespace clrdiag::automation {
namespace {

Event Ev(EventKind k, const std::string& rule = "", pid_t pid = 0) {
  Event e;
  e.kind = k;
  e.rule = rule;
  e.pid = pid;
  return e;
}

TEST(EventBusTest, RingKeepsTheNewestWithIncreasingSequenceNumbers) {
  EventBus bus(3);
  for (int i = 0; i < 5; ++i) bus.Publish(Ev(EventKind::kProcessStart, "", 100 + i));
  auto recent = bus.Recent({});
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0].seq, 3u);
  EXPECT_EQ(recent[2].seq, 5u);
  EXPECT_EQ(recent[2].pid, 104);
  EXPECT_NE(recent[2].time, absl::Time());
}

TEST(EventBusTest, KindNamesRoundTrip) {
  for (EventKind k : {EventKind::kProcessStart, EventKind::kProcessExit, EventKind::kRuleFired,
                      EventKind::kRuleThrottled, EventKind::kDumpCollected,
                      EventKind::kCollectFailed, EventKind::kEgress, EventKind::kRuleFinished}) {
    auto back = ParseEventKind(EventKindName(k));
    ASSERT_TRUE(back.has_value()) << EventKindName(k);
    EXPECT_EQ(*back, k);
  }
  EXPECT_FALSE(ParseEventKind("nope").has_value());
}

TEST(EventBusTest, SubscribersGetFilteredEventsWithOptionalReplay) {
  EventBus bus;
  bus.Publish(Ev(EventKind::kRuleFired, "a", 1));
  bus.Publish(Ev(EventKind::kRuleFired, "b", 2));
  EventFilter only_a;
  only_a.rule = "a";
  auto live = bus.Subscribe(only_a, /*replay=*/false);
  auto replay = bus.Subscribe(only_a, /*replay=*/true);
  EventFilter kinds;
  kinds.kinds = {EventKind::kEgress};
  kinds.pid = 7;
  auto egress = bus.Subscribe(kinds, false);
  bus.Publish(Ev(EventKind::kEgress, "a", 7));
  bus.Publish(Ev(EventKind::kEgress, "a", 8));
  std::vector<Event> got;
  EXPECT_TRUE(live->Next(absl::Milliseconds(10), &got));
  EXPECT_EQ(got.size(), 2u);
  got.clear();
  replay->Next(absl::Milliseconds(10), &got);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].seq, 1u);
  got.clear();
  egress->Next(absl::Milliseconds(10), &got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].pid, 7);
}

TEST(EventBusTest, NextWaitsForAPublisherAndCloseEndsIt) {
  EventBus bus;
  auto sub = bus.Subscribe({}, false);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bus.Publish(Ev(EventKind::kProcessExit, "", 3));
  });
  std::vector<Event> got;
  EXPECT_TRUE(sub->Next(absl::Seconds(5), &got));
  t.join();
  ASSERT_EQ(got.size(), 1u);
  bus.Close();
  got.clear();
  EXPECT_FALSE(sub->Next(absl::Seconds(5), &got));
}

TEST(EventBusTest, ASlowSubscriberLosesTheOldestAndCountsThem) {
  EventBus bus;
  auto sub = bus.Subscribe({}, false, /*capacity=*/2);
  for (int i = 0; i < 5; ++i) bus.Publish(Ev(EventKind::kProcessStart));
  std::vector<Event> got;
  sub->Next(absl::Milliseconds(1), &got);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 4u);
  EXPECT_EQ(sub->dropped(), 3u);
}

}  // namespace
}  // namespace clrdiag::automation
