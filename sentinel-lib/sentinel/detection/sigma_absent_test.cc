// A build without the sigma feature (SENTINEL_SIGMA=OFF): a Sigma file is
// refused as such, naming the option, wherever rules are loaded; native
// rules load beside it.
#include <gtest/gtest.h>

#include "sentinel/base/features.h"
#include "sentinel/detection/regexp_function.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

constexpr const char* kSigma =
    "title: Netcat listener\n"
    "id: 7C1D0B4E-0000-4000-8000-000000000001\n"
    "logsource:\n  product: linux\n  category: process_creation\n"
    "detection:\n  sel:\n    Image|endswith: /nc\n  condition: sel\nlevel: medium\n";

TEST(SigmaAbsentTest, ASigmaFileIsRefusedNamingTheOption) {
  static_assert(!Built(Feature::kSigma));
  ASSERT_TRUE(IsSigmaDocument(kSigma));
  auto r = ConvertSigmaRule(kSigma, "nc.yml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "nc.yml: Sigma rule: the sigma feature is not in this build (rebuild with -DSENTINEL_SIGMA=ON)");
  EXPECT_FALSE(CompileRegexp("a+").ok());
}

TEST(SigmaAbsentTest, ARulesDirWithASigmaFileLoadsItsNativeRules) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("nc.yml"), kSigma);
  testing::WriteFile(dir.File("native.yaml"),
                     "id: local-x\nname: x\nseverity: low\nquery: SELECT pid FROM processes\n");
  RuleSet set = LoadRuleSet(false, {dir.path()});
  ASSERT_EQ(set.rules.size(), 1u);
  EXPECT_EQ(set.rules[0].id, "local-x");
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_NE(set.problems[0].status.message().find(dir.File("nc.yml") + ": Sigma rule:"), std::string::npos)
      << set.problems[0].status.message();
  EXPECT_NE(set.problems[0].status.message().find("SENTINEL_SIGMA"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::detection
