// Checking Ed25519 signatures (signature.cc, OpenSSL) in every build: against
// a signature made outside SentinelD (Python's `cryptography`, with the key of
// RFC 8032 §7.1 TEST 1, over the 32 bytes 00 01 .. 1f), so the check does
// not depend on the audit-signing feature's signer.
#include <gtest/gtest.h>

#include "sentinel/audit/signer.h"
#include "sentinel/base/hex.h"

namespace sentinel::audit {
namespace {

constexpr const char* kPublicKeyHex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr const char* kSignatureHex =
    "00c1db988bb12fd7351a6054ae3fac90fab7e4fc56b1651c7181f5f55f896f66"
    "3933d3a90605d9058e9d0ac45950ee2d3c9c9b14857415587179fe0ccac35f09";

crypto::Blake3Digest Message() {
  crypto::Blake3Digest m{};
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<uint8_t>(i);
  return m;
}

TEST(SignatureTest, VerifiesASignatureMadeElsewhere) {
  PublicKey key;
  Signature sig;
  ASSERT_TRUE(ParsePublicKeyHex(kPublicKeyHex, &key));
  ASSERT_TRUE(ParseSignatureHex(kSignatureHex, &sig));
  EXPECT_TRUE(VerifySignature(key, Message(), sig));
}

TEST(SignatureTest, RefusesAnyChangeOfMessageSignatureOrKey) {
  PublicKey key;
  Signature sig;
  ASSERT_TRUE(ParsePublicKeyHex(kPublicKeyHex, &key));
  ASSERT_TRUE(ParseSignatureHex(kSignatureHex, &sig));
  crypto::Blake3Digest other = Message();
  other[31] ^= 1;
  EXPECT_FALSE(VerifySignature(key, other, sig));
  for (size_t at : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    Signature bad = sig;
    bad[at] ^= 0x40;
    EXPECT_FALSE(VerifySignature(key, Message(), bad)) << "signature byte " << at;
  }
  PublicKey wrong = key;
  wrong[0] ^= 1;
  EXPECT_FALSE(VerifySignature(wrong, Message(), sig));
  EXPECT_FALSE(VerifySignature(PublicKey{}, Message(), sig));
}

TEST(SignatureTest, StrictHexParsing) {
  PublicKey key;
  EXPECT_FALSE(ParsePublicKeyHex(std::string(kPublicKeyHex).substr(2), &key));
  EXPECT_FALSE(ParsePublicKeyHex("D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A", &key));
  Signature sig;
  EXPECT_FALSE(ParseSignatureHex(std::string(kSignatureHex) + "00", &sig));
}

}  // namespace
}  // namespace sentinel::audit
