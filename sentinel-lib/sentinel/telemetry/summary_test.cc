#include "sentinel/telemetry/summary.h"

#include <gtest/gtest.h>

namespace sentinel::telemetry {
namespace {

TEST(PeriodicSummaryTest, DueEveryIntervalWithTheIncreaseOfEachCounter) {
  PeriodicSummary s(60'000, 1'000);
  s.Baseline({{"scans", 5}, {"alerts", 2}});
  EXPECT_FALSE(s.Due(1'000));
  EXPECT_FALSE(s.Due(60'999));
  ASSERT_TRUE(s.Due(61'000));
  nlohmann::json first = s.Take({{"scans", 11}, {"alerts", 2}}, 61'000);
  EXPECT_EQ(first, nlohmann::json({{"period_s", 60}, {"scans", 6}, {"alerts", 0}}));
  // The next period starts at the line, not at the first due time.
  EXPECT_FALSE(s.Due(61'500));
  EXPECT_TRUE(s.Due(121'000));
  nlohmann::json second = s.Take({{"scans", 17}, {"alerts", 5}}, 122'400);
  EXPECT_EQ(second, nlohmann::json({{"period_s", 61}, {"scans", 6}, {"alerts", 3}}));
}

TEST(PeriodicSummaryTest, ACounterThatWentDownCountsFromZeroAndANewOneFromItsValue) {
  PeriodicSummary s(1'000, 0);
  s.Baseline({{"deliveries", 40}});
  // The dispatcher was replaced (reload): its counter restarted at 0 and is 3 now.
  nlohmann::json f = s.Take({{"deliveries", 3}, {"errors", 2}}, 1'000);
  EXPECT_EQ(f["deliveries"], 3);
  EXPECT_EQ(f["errors"], 2);
  f = s.Take({{"deliveries", 4}, {"errors", 2}}, 2'000);
  EXPECT_EQ(f["deliveries"], 1);
  EXPECT_EQ(f["errors"], 0);
}

TEST(PeriodicSummaryTest, ZeroIntervalIsNeverDueAndAReloadChangesThePeriod) {
  PeriodicSummary off(0, 0);
  EXPECT_FALSE(off.Due(1'000'000'000));
  PeriodicSummary s(60'000, 0);
  EXPECT_FALSE(s.Due(5'000));
  s.SetInterval(5'000);
  EXPECT_TRUE(s.Due(5'000));
  s.SetInterval(0);
  EXPECT_FALSE(s.Due(5'000));
}

}  // namespace
}  // namespace sentinel::telemetry
