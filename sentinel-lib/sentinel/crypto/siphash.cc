#include "sentinel/crypto/siphash.h"

#include <sodium.h>

namespace sentinel::crypto {
namespace {

uint64_t LoadLe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

static_assert(crypto_shorthash_siphashx24_KEYBYTES == sizeof(SipHashKey::bytes));
static_assert(crypto_shorthash_siphashx24_BYTES == 16);

SipHashKey SipHashKey::Random() {
  // sodium_init() makes randombytes safe to use from any thread. It fails
  // only without a random source, and randombytes_buf then aborts rather
  // than hand out a guessable key.
  [[maybe_unused]] const int ready = sodium_init();
  SipHashKey k;
  randombytes_buf(k.bytes.data(), k.bytes.size());
  return k;
}

SipHash128Digest SipHash128(const SipHashKey& key, std::string_view data) {
  unsigned char out[crypto_shorthash_siphashx24_BYTES];
  crypto_shorthash_siphashx24(out, reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                              key.bytes.data());
  return {LoadLe64(out), LoadLe64(out + 8)};
}

}  // namespace sentinel::crypto
