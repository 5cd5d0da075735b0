// Sha256 through the Windows API: CNG (bcrypt.dll), the platform's own
// FIPS-validated provider. The Linux build uses sha256_openssl.cc instead.
//
// The algorithm provider is opened once per process (BCryptOpenAlgorithmProvider
// is the expensive call) and shared: CNG allows one provider handle to create
// hash objects on any thread. Each Sha256 owns a reusable hash object
// (BCRYPT_HASH_REUSABLE_FLAG): Finish() hands back the digest and leaves the
// object ready for the next message.
#include <windows.h>
// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>

#include <cstdlib>

#include "sentinel/crypto/sha256.h"

namespace sentinel::crypto {
namespace {

BCRYPT_ALG_HANDLE Provider() {
  static const BCRYPT_ALG_HANDLE provider = [] {
    BCRYPT_ALG_HANDLE h = nullptr;
    if (!BCRYPT_SUCCESS(
            BCryptOpenAlgorithmProvider(&h, BCRYPT_SHA256_ALGORITHM, nullptr, BCRYPT_HASH_REUSABLE_FLAG))) {
      // No SHA-256 in the platform's crypto provider: nothing can be hashed
      // and a wrong digest would be worse than stopping.
      std::abort();
    }
    return h;
  }();
  return provider;
}

}  // namespace

struct Sha256::Impl {
  BCRYPT_HASH_HANDLE hash = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  if (!BCRYPT_SUCCESS(
          BCryptCreateHash(Provider(), &impl_->hash, nullptr, 0, nullptr, 0, BCRYPT_HASH_REUSABLE_FLAG))) {
    std::abort();
  }
}

Sha256::~Sha256() {
  BCryptDestroyHash(impl_->hash);
}

void Sha256::Update(const void* data, size_t len) {
  // BCryptHashData takes a ULONG length: feed larger buffers in pieces.
  auto* p = static_cast<PUCHAR>(const_cast<void*>(data));
  while (len > 0) {
    const ULONG n = len > 0x40000000 ? 0x40000000UL : static_cast<ULONG>(len);
    BCryptHashData(impl_->hash, p, n, 0);
    p += n;
    len -= n;
  }
}

Sha256Digest Sha256::Finish() {
  Sha256Digest d{};
  BCryptFinishHash(impl_->hash, d.data(), static_cast<ULONG>(d.size()), 0);
  return d;
}

}  // namespace sentinel::crypto
