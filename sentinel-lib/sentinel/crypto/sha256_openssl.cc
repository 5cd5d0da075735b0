// Sha256 through OpenSSL's libcrypto (Linux; hardware-accelerated where the
// CPU has SHA extensions). The Windows build uses sha256_cng.cc instead.
#include <openssl/evp.h>

#include "sentinel/crypto/sha256.h"

namespace sentinel::crypto {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::Update(const void* data, size_t len) {
  EVP_DigestUpdate(impl_->ctx, data, len);
}

Sha256Digest Sha256::Finish() {
  Sha256Digest d{};
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, d.data(), &n);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  return d;
}

}  // namespace sentinel::crypto
