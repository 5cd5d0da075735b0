#include "sentinel/base/time.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace sentinel
