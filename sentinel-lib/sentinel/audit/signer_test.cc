#include "sentinel/audit/signer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "sentinel/base/files.h"
#include "sentinel/base/hex.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::audit {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(SignerTest, Rfc8032PublicKeyFromSeed) {
  // RFC 8032 §7.1, TEST 1.
  auto seed_bytes = FromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::array<uint8_t, kSeedLen> seed;
  std::copy(seed_bytes->begin(), seed_bytes->end(), seed.begin());
  auto signer = Signer::FromSeed(seed);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ((*signer)->PublicKeyHex(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
}

TEST(SignerTest, SignAndVerify) {
  std::array<uint8_t, kSeedLen> seed;
  seed.fill(0x42);
  auto signer = Signer::FromSeed(seed);
  ASSERT_TRUE(signer.ok());
  const crypto::Blake3Digest h = crypto::Blake3(std::string_view("entry"));
  const Signature sig = (*signer)->Sign(h);
  EXPECT_TRUE(VerifySignature((*signer)->public_key(), h, sig));
  crypto::Blake3Digest other = h;
  other[0] ^= 1;
  EXPECT_FALSE(VerifySignature((*signer)->public_key(), other, sig));
  Signature bad = sig;
  bad[63] ^= 0x80;
  EXPECT_FALSE(VerifySignature((*signer)->public_key(), h, bad));
  PublicKey wrong = (*signer)->public_key();
  wrong[5] ^= 1;
  EXPECT_FALSE(VerifySignature(wrong, h, sig));
}

TEST(SignerTest, StrictHexParsing) {
  PublicKey k;
  EXPECT_TRUE(ParsePublicKeyHex(std::string(64, 'a'), &k));
  EXPECT_FALSE(ParsePublicKeyHex(std::string(64, 'A'), &k));  // one spelling only
  EXPECT_FALSE(ParsePublicKeyHex(std::string(62, 'a'), &k));
  EXPECT_FALSE(ParsePublicKeyHex(std::string(63, 'a') + "g", &k));
  Signature s;
  EXPECT_TRUE(ParseSignatureHex(std::string(128, '0'), &s));
  EXPECT_FALSE(ParseSignatureHex(std::string(64, '0'), &s));
}

TEST(SignerTest, GeneratedKeyFileIsPrivateAndLoads) {
  testing::TempDir dir;
  const std::string path = dir.File("audit.key");
  const mode_t old_umask = ::umask(0);  // even a permissive umask must not widen the file
  auto pub = GenerateSigningKeyFile(path);
  ::umask(old_umask);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(pub->size(), 64u);
  EXPECT_EQ(ModeOf(path), 0600u);
  const std::string content = testing::ReadFile(path);
  EXPECT_EQ(content.size(), 65u);
  EXPECT_EQ(content.back(), '\n');

  auto signer = Signer::LoadPrivateKeyFile(path);
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ((*signer)->PublicKeyHex(), *pub);

  // Never overwrites an existing key.
  auto again = GenerateSigningKeyFile(path);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(testing::ReadFile(path), content);

  // Two generated keys differ.
  auto pub2 = GenerateSigningKeyFile(dir.File("second.key"));
  ASSERT_TRUE(pub2.ok());
  EXPECT_NE(*pub2, *pub);
}

TEST(SignerTest, RefusesGroupOrWorldAccessibleKey) {
  testing::TempDir dir;
  const std::string path = dir.File("audit.key");
  ASSERT_TRUE(GenerateSigningKeyFile(path).ok());
  for (mode_t mode : {0640, 0604, 0660, 0610, 0644}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto s = Signer::LoadPrivateKeyFile(path);
    EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(s.status().message().find(path), std::string::npos) << s.status().message();
    EXPECT_NE(s.status().message().find(mode_text), std::string::npos) << s.status().message();
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(Signer::LoadPrivateKeyFile(path).ok());
}

TEST(SignerTest, RefusesSymlinksAndBadContent) {
  testing::TempDir dir;
  const std::string real = dir.File("real.key");
  ASSERT_TRUE(GenerateSigningKeyFile(real).ok());
  const std::string link = dir.File("link.key");
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  auto refused = Signer::LoadPrivateKeyFile(link);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsRefusedPath(refused.status())) << refused.status().message();
  EXPECT_NE(
      refused.status().message().find("refusing " + link + ": the audit signing key is a symbolic link"),
      std::string::npos)
      << refused.status().message();
  const std::string fifo = dir.File("fifo.key");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(Signer::LoadPrivateKeyFile(fifo).status().code(), StatusCode::kInvalidArgument);  // and no hang

  EXPECT_EQ(Signer::LoadPrivateKeyFile(dir.File("missing.key")).status().code(), StatusCode::kNotFound);

  const std::string bad = dir.File("bad.key");
  testing::WriteFile(bad, "not a key\n");
  ASSERT_EQ(::chmod(bad.c_str(), 0600), 0);
  auto s = Signer::LoadPrivateKeyFile(bad);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find(bad), std::string::npos);

  EXPECT_EQ(Signer::LoadPrivateKeyFile(dir.path()).status().code(),
            StatusCode::kInvalidArgument);  // a directory
}

}  // namespace
}  // namespace sentinel::audit
