// Optional Ed25519 signatures over audit ledger entries.
//
// Signing (Signer, GenerateSigningKeyFile) is the audit-signing feature
// (libsodium, signer.cc); a build without it (SENTINEL_AUDIT_SIGNING=OFF)
// links signer_absent.cc instead, whose functions fail with Unimplemented
// naming the feature, so no Signer exists there. Checking signatures
// (VerifySignature, the parsers) is in every build (OpenSSL, signature.cc).
//
// A signature is Ed25519 (RFC 8032, crypto_sign_detached) over the 32 bytes
// of an entry's entry_hash; the ledger stores it as lowercase hex (128
// characters). The public key goes into the audit database's system_metadata
// under `audit_public_key` (lowercase hex, 64 characters). See
// docs/audit-format.md.
//
// The private key file holds the 32-byte Ed25519 seed as 64 lowercase hex
// characters and a newline, nothing else. It is created with mode 0600 and
// is only loaded when it is a regular file (not a symlink) owned by the
// effective user with no group or other permission bits.
//
// The key file is named by `database.audit_signing_key` (created with
// `sentinelcli audit keygen`); the writer loads a Signer from it and passes it
// to AuditLedger.
//
// Thread-safety: a Signer is immutable after construction; Sign() and the
// free functions may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sentinel/base/status.h"
#include "sentinel/crypto/blake3.h"

namespace sentinel::audit {

inline constexpr size_t kPublicKeyLen = 32;
inline constexpr size_t kSignatureLen = 64;
inline constexpr size_t kSeedLen = 32;

using PublicKey = std::array<uint8_t, kPublicKeyLen>;
using Signature = std::array<uint8_t, kSignatureLen>;

class Signer {
 public:
  // Loads a private key file written by GenerateSigningKeyFile. Errors:
  // NotFound (missing), PermissionDenied (group/world-accessible, owned by
  // another user, or unreadable; the message names the file and its mode),
  // FailedPrecondition (a symbolic link: refused, never followed, see
  // base/files.h), InvalidArgument (not a regular file, or not 64 hex characters),
  // Internal (libsodium could not initialise), Unimplemented (a build without
  // the audit-signing feature).
  static Result<std::unique_ptr<Signer>> LoadPrivateKeyFile(const std::string& path);
  // From a seed held in memory (tests, or a key from a secrets manager).
  static Result<std::unique_ptr<Signer>> FromSeed(const std::array<uint8_t, kSeedLen>& seed);

  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  Signature Sign(const crypto::Blake3Digest& entry_hash) const;
  const PublicKey& public_key() const { return public_key_; }
  std::string PublicKeyHex() const;

 private:
  Signer() = default;
  PublicKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};  // libsodium's seed || public key form; wiped on destruction
};

// Creates `path` (which must not exist: AlreadyExists otherwise) with mode
// 0600, writes a fresh random seed, syncs it, and returns the public key as
// lowercase hex. The parent directory must exist.
Result<std::string> GenerateSigningKeyFile(const std::string& path);

// True when `signature` is a valid Ed25519 signature of `entry_hash` by `key`.
bool VerifySignature(const PublicKey& key, const crypto::Blake3Digest& entry_hash,
                     const Signature& signature);

// Strict parsing of the stored forms: exactly 2*N lowercase hex characters.
bool ParsePublicKeyHex(std::string_view hex, PublicKey* out);
bool ParseSignatureHex(std::string_view hex, Signature* out);

}  // namespace sentinel::audit
