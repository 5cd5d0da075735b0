// Checking signatures needs no private key and no libsodium: OpenSSL's
// Ed25519 (RFC 8032), so that every build verifies a signed ledger, with or
// without SENTINEL_AUDIT_SIGNING (decision 81). Signing is signer.cc.
#include <openssl/evp.h>

#include <memory>

#include "sentinel/audit/signer.h"
#include "sentinel/base/hex.h"

namespace sentinel::audit {

bool VerifySignature(const PublicKey& key, const crypto::Blake3Digest& entry_hash,
                     const Signature& signature) {
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()), &EVP_PKEY_free);
  if (!pkey) return false;  // not a point of the curve
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), entry_hash.data(),
                          entry_hash.size()) == 1;
}

bool ParsePublicKeyHex(std::string_view hex, PublicKey* out) {
  return FromLowerHex(hex, *out);
}

bool ParseSignatureHex(std::string_view hex, Signature* out) {
  return FromLowerHex(hex, *out);
}

}  // namespace sentinel::audit
