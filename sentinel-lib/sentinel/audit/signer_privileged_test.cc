// Signer tests that need root (label "privileged"); each skips with the
// reason otherwise.
#include <unistd.h>

#include <gtest/gtest.h>

#include "sentinel/audit/signer.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {
namespace {

TEST(SignerTest, RefusesKeyOwnedByAnotherUser) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to give the key file to another user";
  testing::TempDir dir;
  const std::string path = dir.File("audit.key");
  ASSERT_TRUE(GenerateSigningKeyFile(path).ok());
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto s = Signer::LoadPrivateKeyFile(path);
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.status().message().find("owned by uid 65534"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace sentinel::audit
