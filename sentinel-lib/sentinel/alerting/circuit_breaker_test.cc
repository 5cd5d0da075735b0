#include "sentinel/alerting/circuit_breaker.h"

#include <gtest/gtest.h>

#include "sentinel/testing/fake_clock.h"

namespace sentinel::alerting {
namespace {

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  testing::FakeClock clock;
  CircuitBreaker b({.failure_threshold = 3, .open_secs = 10}, clock);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  b.RecordFailure();
  b.RecordFailure();
  b.RecordSuccess();  // a success resets the count
  b.RecordFailure();
  b.RecordFailure();
  EXPECT_TRUE(b.Allow());
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  b.RecordFailure();
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.Allow());
  clock.Advance(9'999);
  EXPECT_FALSE(b.Allow());
  EXPECT_EQ(b.state(), CircuitState::kOpen);
}

TEST(CircuitBreakerTest, HalfOpenAdmitsOneTrialThatClosesIt) {
  testing::FakeClock clock;
  CircuitBreaker b({.failure_threshold = 1, .open_secs = 5}, clock);
  b.RecordFailure();
  EXPECT_FALSE(b.Allow());
  clock.Advance(5'000);
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  EXPECT_TRUE(b.Allow());   // the trial
  EXPECT_FALSE(b.Allow());  // nothing else while it runs
  b.RecordSuccess();
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_TRUE(b.Allow());
  EXPECT_TRUE(b.Allow());
}

TEST(CircuitBreakerTest, FailedTrialReopensForAnotherPeriod) {
  testing::FakeClock clock;
  CircuitBreaker b({.failure_threshold = 2, .open_secs = 5}, clock);
  b.RecordFailure();
  b.RecordFailure();
  clock.Advance(5'000);
  EXPECT_TRUE(b.Allow());
  b.RecordFailure();
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_FALSE(b.Allow());
  clock.Advance(4'999);
  EXPECT_FALSE(b.Allow());
  clock.Advance(1);
  EXPECT_TRUE(b.Allow());
  EXPECT_EQ(CircuitStateName(b.state()), "half_open");
}

}  // namespace
}  // namespace sentinel::alerting
