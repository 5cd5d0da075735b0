// The Signer of a build without SENTINEL_AUDIT_SIGNING (no libsodium): no key
// can be loaded or made, so no Signer exists and no entry is signed. The
// configuration already refuses database.audit_signing_key in such a build
// (config.h); these refusals name the feature for any other caller
// (`sentinelcli audit keygen`). Verifying signatures is signature.cc, in
// every build.
#include <cstdlib>

#include "sentinel/audit/signer.h"
#include "sentinel/base/features.h"
#include "sentinel/base/hex.h"

namespace sentinel::audit {
namespace {

Status NotBuilt(std::string_view what) {
  return UnimplementedError(std::string(what) + ": " + NotBuiltReason(Feature::kAuditSigning));
}

}  // namespace

Result<std::unique_ptr<Signer>> Signer::LoadPrivateKeyFile(const std::string& path) {
  return NotBuilt("audit signing key " + path);
}

Result<std::unique_ptr<Signer>> Signer::FromSeed(const std::array<uint8_t, kSeedLen>&) {
  return NotBuilt("audit signing");
}

Signer::~Signer() {
  secret_key_.fill(0);  // as signer.cc does; never set here
}

Signature Signer::Sign(const crypto::Blake3Digest&) const {
  std::abort();  // no Signer can be made in this build
}

std::string Signer::PublicKeyHex() const {
  return ToHex(public_key_);
}

Result<std::string> GenerateSigningKeyFile(const std::string& path) {
  return NotBuilt("audit signing key " + path);
}

}  // namespace sentinel::audit
