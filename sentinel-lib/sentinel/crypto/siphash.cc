#include "sentinel/crypto/siphash.h"

#ifdef _WIN32
#include <windows.h>
// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>
#else
#include <sys/random.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sentinel::crypto {
namespace {

uint64_t LoadLe64(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

inline uint64_t Rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  // Two compression rounds over one message word (SipHash-2-4).
  void Absorb(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
  uint64_t Finish() {
    for (int i = 0; i < 4; ++i) Round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

}  // namespace

SipHashKey SipHashKey::Random() {
  SipHashKey k;
#ifdef _WIN32
  // The system's preferred generator (CNG); like getrandom(), no handle to keep.
  if (!BCRYPT_SUCCESS(BCryptGenRandom(nullptr, k.bytes.data(), static_cast<ULONG>(k.bytes.size()),
                                      BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
    std::abort();  // no random source: see below
  }
#else
  size_t got = 0;
  while (got < k.bytes.size()) {
    const ssize_t n = ::getrandom(k.bytes.data() + got, k.bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No random source at all: a guessable key would let an attacker aim
      // for collisions, so there is none.
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
#endif
  return k;
}

// SipHash-2-4 with the 128-bit output (Aumasson & Bernstein; the reference
// implementation's algorithm, libsodium's crypto_shorthash_siphashx24).
SipHash128Digest SipHash128(const SipHashKey& key, std::string_view data) {
  const uint64_t k0 = LoadLe64(key.bytes.data(), 8);
  const uint64_t k1 = LoadLe64(key.bytes.data() + 8, 8);
  SipState s{0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1 ^ 0xee, 0x6c7967656e657261ULL ^ k0,
             0x7465646279746573ULL ^ k1};
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  const size_t full = len - len % 8;
  for (size_t i = 0; i < full; i += 8) s.Absorb(LoadLe64(in + i, 8));
  s.Absorb((static_cast<uint64_t>(len) << 56) | LoadLe64(in + full, len - full));
  s.v2 ^= 0xee;
  const uint64_t lo = s.Finish();
  s.v1 ^= 0xdd;
  const uint64_t hi = s.Finish();
  return {lo, hi};
}

}  // namespace sentinel::crypto
