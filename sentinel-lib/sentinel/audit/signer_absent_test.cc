// A build without the audit-signing feature (SENTINEL_AUDIT_SIGNING=OFF):
// no key is loaded or made, and each refusal names the option.
#include <gtest/gtest.h>

#include "sentinel/audit/signer.h"
#include "sentinel/base/features.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {
namespace {

TEST(SignerAbsentTest, KeysAreRefusedNamingTheOption) {
  static_assert(!Built(Feature::kAuditSigning));
  testing::TempDir dir;
  const std::string key = dir.File("audit.key");
  auto made = GenerateSigningKeyFile(key);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(made.status().message().find("SENTINEL_AUDIT_SIGNING"), std::string::npos)
      << made.status().message();
  EXPECT_FALSE(testing::FileExists(key));

  testing::WriteFile(key, std::string(64, 'a') + "\n");
  auto loaded = Signer::LoadPrivateKeyFile(key);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("SENTINEL_AUDIT_SIGNING"), std::string::npos);
  EXPECT_FALSE(Signer::FromSeed({}).ok());
}

}  // namespace
}  // namespace sentinel::audit
