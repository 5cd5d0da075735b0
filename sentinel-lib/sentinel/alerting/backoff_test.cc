#include "sentinel/alerting/backoff.h"

#include <gtest/gtest.h>

namespace sentinel::alerting {
namespace {

config::RetryConfig Retry(int attempts, int64_t initial, int64_t max) {
  return config::RetryConfig{.max_attempts = attempts, .initial_backoff_ms = initial, .max_backoff_ms = max};
}

TEST(BackoffTest, DoublesUpToTheCap) {
  Backoff b(Retry(10, 100, 1000), [] { return 0.999999; });
  EXPECT_EQ(b.NominalMs(1), 100);
  EXPECT_EQ(b.NominalMs(2), 200);
  EXPECT_EQ(b.NominalMs(3), 400);
  EXPECT_EQ(b.NominalMs(4), 800);
  EXPECT_EQ(b.NominalMs(5), 1000);
  EXPECT_EQ(b.NominalMs(60), 1000);  // no overflow however many failures
}

TEST(BackoffTest, JitterStaysWithinHalfAndWhole) {
  double u = 0.0;
  Backoff b(Retry(10, 100, 1000), [&u] { return u; });
  EXPECT_EQ(b.DelayMs(1), 50);
  EXPECT_EQ(b.DelayMs(5), 500);
  u = 0.5;
  EXPECT_EQ(b.DelayMs(2), 150);
  u = 0.999999;
  EXPECT_EQ(b.DelayMs(3), 399);
  u = 7.0;  // a broken source is clamped, never beyond the cap
  EXPECT_EQ(b.DelayMs(9), 1000);
}

TEST(BackoffTest, RandomJitterIsBounded) {
  Backoff b(Retry(10, 1000, 60000));
  for (int n = 1; n < 12; ++n) {
    const int64_t d = b.DelayMs(n);
    EXPECT_GE(d, b.NominalMs(n) / 2);
    EXPECT_LE(d, b.NominalMs(n));
    EXPECT_LE(d, 60000);
  }
}

TEST(BackoffTest, ExhaustedAtMaxAttempts) {
  Backoff b(Retry(3, 1, 1));
  EXPECT_FALSE(b.Exhausted(1));
  EXPECT_FALSE(b.Exhausted(2));
  EXPECT_TRUE(b.Exhausted(3));
}

}  // namespace
}  // namespace sentinel::alerting
