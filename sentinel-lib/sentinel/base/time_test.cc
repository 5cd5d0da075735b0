#include "sentinel/base/time.h"

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/testing/fake_clock.h"

namespace sentinel {
namespace {

TEST(TimeTest, Durations) {
  EXPECT_EQ(*ParseDurationMs("15m"), 15 * 60'000);
  EXPECT_EQ(*ParseDurationMs("2h"), 2 * 3'600'000);
  EXPECT_EQ(*ParseDurationMs("7d"), 7 * 86'400'000LL);
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_FALSE(ParseDurationMs("fast").ok());
  EXPECT_FALSE(ParseDurationMs("15y").ok());
  EXPECT_FALSE(ParseDurationMs("m").ok());
}

// 12 digits of days or weeks overflowed int64 milliseconds (signed overflow, UB) and came back as
// some other duration; now they are refused naming the value and the largest allowed.
TEST(TimeTest, DurationsTooLargeForMillisecondsAreRefusedNotOverflowed) {
  auto d = ParseDurationMs("999999999999d");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "expected a duration of at most 106751991167d, got \"999999999999d\"");
  auto w = ParseDurationMs("999999999999w");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().message(), "expected a duration of at most 15250284452w, got \"999999999999w\"");
  EXPECT_EQ(*ParseDurationMs("106751991167d"), 106751991167LL * 86'400'000);
  EXPECT_FALSE(ParseDurationMs("106751991168d").ok());
  EXPECT_EQ(*ParseDurationMs("999999999999h"), 999999999999LL * 3'600'000);
  for (const char* s : {"9223372036854775807d", "99999999999999999999d", "9223372036854775808ms"}) {
    auto r = ParseDurationMs(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_NE(r.status().message().find(s), std::string::npos) << r.status().message();
  }
}

TEST(TimeTest, RelativeTimesTooFarBackAreRefusedNamingTheValue) {
  const int64_t now = 1'800'000'000'000;
  auto r = ParseTimePoint("999999999999d", now);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"999999999999d\""), std::string::npos) << r.status().message();
  r = ParseTimePoint("9223372036854775807d", now);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("9223372036854775807d"), std::string::npos) << r.status().message();
  // The largest duration still subtracts from a clock before the epoch without overflowing.
  r = ParseTimePoint("106751991167d", -now);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("106751991167d"), std::string::npos) << r.status().message();
  EXPECT_EQ(*ParseTimePoint("106751991167d", now), now - 106751991167LL * 86'400'000);
}

TEST(TimeTest, Iso8601) {
  const int64_t now = 1'800'000'000'000;
  EXPECT_EQ(*ParseTimePoint("1970-01-01T00:00:00Z", now), 0);
  EXPECT_EQ(*ParseTimePoint("2026-11-28", now), 1795824000000);
  EXPECT_EQ(*ParseTimePoint("2026-11-28T13:48:16.5Z", now), 1795873696500);
  EXPECT_EQ(*ParseTimePoint("2026-11-28T14:48:16+01:00", now), 1795873696000);
  EXPECT_EQ(*ParseTimePoint("15m", now), now - 900'000);
  EXPECT_EQ(*ParseTimePoint("1795873696000", now), 1795873696000);
  EXPECT_FALSE(ParseTimePoint("2026-13-01", now).ok());
  EXPECT_FALSE(ParseTimePoint("yesterday", now).ok());
  EXPECT_FALSE(ParseTimePoint("2026-11-28T25:00", now).ok());
  EXPECT_EQ(FormatIso8601Ms(1795873696500), "2026-11-28T13:48:16.500Z");
}

TEST(TimeTest, Iso8601EveryPart) {
  const int64_t now = 1'800'000'000'000;
  EXPECT_EQ(*ParseTimePoint("2026-11-28t10:00-05:30", now), 1795879800000);  // no seconds, offset with colon
  EXPECT_EQ(*ParseTimePoint("2026-11-28 10:00+0100", now), 1795856400000);   // space, offset without colon
  EXPECT_EQ(*ParseTimePoint("2026-11-28T10:00:00,1239z", now),
            1795860000123);                                                  // comma; digits past ms dropped
  EXPECT_EQ(*ParseTimePoint("2026-11-28T10:00:00+01", now), 1795856400000);  // hours only
  for (const char* bad : {"2026-11-28T10:00:00.", "2026-11-28T10:00:00Zx", "2026-11-28X10:00",
                          "2026-11-28T10", "2026-11-28T10:60", "2026-11-28T10:00:61", "2026-11-28T10:00+1",
                          "2026-00-01", "2026-11-32", "2026/11/28", "2026-11-28T10:00:00*01:00"}) {
    EXPECT_FALSE(ParseTimePoint(bad, now).ok()) << bad;
  }
}

// A waiter on a clock, on its own thread: WaitUntil(deadline) with a done flag.
class ClockWaiter {
 public:
  ClockWaiter(const Clock& clock, int64_t deadline_mono_ms)
      : thread_([this, &clock, deadline_mono_ms] {
          std::unique_lock lock(mu_);
          result_ = clock.WaitUntil(lock, cv_, deadline_mono_ms, [this] { return done_; }) ? 1 : 0;
        }) {}
  ~ClockWaiter() {
    SetDone();
    Finish();
  }
  void SetDone() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  int Finish() {  // joins; 1: done, 0: deadline
    if (thread_.joinable()) thread_.join();
    return result_.load();
  }
  bool Returned() const { return result_.load() >= 0; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<int> result_{-1};
  std::thread thread_;
};

TEST(FakeClockTest, AdvanceWakesAWaiterWhenItsDeadlineIsReachedAndNotBefore) {
  testing::FakeClock clock;
  ClockWaiter waiter(clock, clock.MonotonicMs() + 100);
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(99);
  ASSERT_TRUE(clock.AwaitWaiters(1));  // woken, saw 99 ms, asleep again
  EXPECT_FALSE(waiter.Returned());
  clock.Advance(1);
  EXPECT_EQ(waiter.Finish(), 0) << "the deadline, not done()";
}

TEST(FakeClockTest, AWaiterReturnsAsSoonAsItIsDoneWithTimeFrozen) {
  testing::FakeClock clock;
  ClockWaiter waiter(clock, INT64_MAX);
  ASSERT_TRUE(clock.AwaitWaiters(1));
  waiter.SetDone();
  EXPECT_EQ(waiter.Finish(), 1);
}

TEST(FakeClockTest, APastDeadlineOrADoneConditionReturnsAtOnce) {
  testing::FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  EXPECT_FALSE(clock.WaitUntil(lock, cv, clock.MonotonicMs(), [] { return false; }));
  EXPECT_TRUE(clock.WaitUntil(lock, cv, INT64_MAX, [] { return true; }));
  EXPECT_TRUE(lock.owns_lock());
}

TEST(FakeClockTest, ReadStepMakesWallTimeStrictlyIncreasing) {
  testing::FakeClock clock(1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  clock.SetReadStepMs(7);
  EXPECT_EQ(clock.NowMs(), 1007);
  EXPECT_EQ(clock.NowMs(), 1014);
  EXPECT_EQ(clock.MonotonicMs(), testing::FakeClock::kDefaultMonotonicMs);
  clock.Advance(10);
  EXPECT_EQ(clock.NowMs(), 1031);
  EXPECT_EQ(clock.MonotonicMs(), testing::FakeClock::kDefaultMonotonicMs + 10);
}

TEST(RealClockTest, WaitUntilEndsAtTheDeadlineOrWhenDone) {
  const Clock& clock = Clock::Real();
  {
    std::mutex mu;
    std::condition_variable cv;
    std::unique_lock lock(mu);
    const int64_t deadline = clock.MonotonicMs() + 20;
    EXPECT_FALSE(clock.WaitUntil(lock, cv, deadline, [] { return false; }));
    EXPECT_GE(clock.MonotonicMs(), deadline);
    EXPECT_TRUE(clock.WaitUntil(lock, cv, INT64_MAX, [] { return true; }));
  }
  ClockWaiter waiter(clock, INT64_MAX);  // no deadline: only done() ends it
  waiter.SetDone();
  EXPECT_EQ(waiter.Finish(), 1);
}

}  // namespace
}  // namespace sentinel
