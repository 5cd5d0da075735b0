// Keyed 128-bit digests for in-memory tables: SipHash-2-4 with a 128-bit
// output (the reference algorithm, as libsodium's crypto_shorthash_siphashx24;
// written here so that every build has it, libsodium or not: decision 81).
// Fast and, without the key, unforgeable: an attacker who controls the input
// cannot aim for a collision. Not a cryptographic hash for anything stored or
// signed.
//
// Thread-safety: pure functions; SipHashKey::Random() reads getrandom(2) and
// aborts when the system has no random source at all.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace sentinel::crypto {

struct SipHashKey {
  std::array<unsigned char, 16> bytes{};
  // A key from the system's random source.
  static SipHashKey Random();
};

// The 16 output bytes as two little-endian 64-bit halves.
struct SipHash128Digest {
  uint64_t lo = 0, hi = 0;
  bool operator==(const SipHash128Digest&) const = default;
};

SipHash128Digest SipHash128(const SipHashKey& key, std::string_view data);

}  // namespace sentinel::crypto
