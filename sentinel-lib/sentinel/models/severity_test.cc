#include "sentinel/models/severity.h"

#include <gtest/gtest.h>

namespace sentinel::models {
namespace {

TEST(SeverityTest, NamesRoundTripInOrder) {
  const Severity all[] = {Severity::kLow, Severity::kMedium, Severity::kHigh, Severity::kCritical};
  for (Severity s : all) EXPECT_EQ(ParseSeverity(SeverityName(s)), s) << SeverityName(s);
  EXPECT_LT(Severity::kLow, Severity::kMedium);
  EXPECT_LT(Severity::kHigh, Severity::kCritical);
}

TEST(SeverityTest, RefusesOtherNames) {
  for (std::string_view bad : {"", "urgent", "HIGH", "high ", "critical\n"})
    EXPECT_EQ(ParseSeverity(bad), std::nullopt) << bad;
}

}  // namespace
}  // namespace sentinel::models
